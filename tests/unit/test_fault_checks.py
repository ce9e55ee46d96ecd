"""The fault suite's own checker counts notifications per recipient (issue 18, finding 9): a
referral whose referrer was told but whose team of four was not is four lost notifications, not a
notified referral."""

from __future__ import annotations

from pathlib import Path
from uuid import uuid4

from tests.faults.test_faults import RECIPIENTS_PER_REFERRAL, STAFF, all_done, check_outcome
from tests.support.system import EventLog

TEAM = "testila-family-centre"


def flow(body: dict, told: int) -> EventLog:
    """The events of one referral; ``told`` of its recipients have a notification.sent."""
    log = EventLog()
    case, received, assigned = str(uuid4()), str(uuid4()), str(uuid4())
    referrer = {"contact_id": "c-ref", "role": "referrer"}
    log.events.append(
        (
            "referral.received.v1",
            {
                "event_id": received,
                "case_id": case,
                "submission_id": body["submission_id"],
                "contacts": [referrer],
                "team_id": TEAM,
            },
        )
    )
    log.events.append(("referral.assigned.v1", {"event_id": assigned, "case_id": case, "team_id": TEAM}))
    owed = [(received, "c-ref")] + [(received, s) for s in STAFF.team_members(TEAM)]  # the team told of referral.received
    for source, recipient in owed[:told]:
        log.events.append(("notification.sent.v1", {"source_event_id": source, "recipient_id": recipient}))
    return log


def test_a_referral_with_one_of_five_recipients_told_is_four_lost_notifications(tmp_path: Path) -> None:
    body = {"submission_id": "fd-1"}
    assert RECIPIENTS_PER_REFERRAL == 5
    out = check_outcome(flow(body, told=1), [body], tmp_path, effects=((1, 1), 1))
    assert out["notifications_owed"] == 5 and out["notifications_sent"] == 1 and out["lost_notifications"] == 4
    assert not all_done(out)
    out = check_outcome(flow(body, told=5), [body], tmp_path, effects=((5, 5), 1))
    assert out["lost_notifications"] == 0 and all_done(out)
