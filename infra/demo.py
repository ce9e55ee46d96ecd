"""The demo: a front door and a staff app walk one invented family through the whole flow.

Referral -> convening -> joint meeting held -> joint plan -> follow-up due, with notifications.
The family gives feedback on the meeting, a team lead records Porvoo's adoption stage of the model,
and a statistician reads the joint-work statistics. Then a second walk, the statutory process: a
child-protection notification -> its urgency assessed by a social worker (signed in) -> the
7-working-day decision recorded (start the assessment), the guardians told that the notification was
received -> the assessment started and completed (the referrer told) -> a plan with an onward
service whose agreed start day has passed -> the late-start alert to the responsible worker and the
family -> the responsible worker leaves the roster and hands over to a colleague, the family told its
new contact.
Everything goes through NATS exactly as real front-door and staff systems would use it.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import nats
from nats.js.api import DeliverPolicy

from infra.identity_provider import LocalIssuer
from infra.token import staff_token
from services.referral.hetu import make_test_hetu
from shared.client import call, submit_referral
from shared.clock import local

WATCHED = ("referral.>", "assessment.>", "meeting.>", "plan.>", "followup.>", "notification.>", "deadletter.>")
_seen: dict[str, list[dict[str, Any]]] = {}


def _summary(subject: str, ev: dict[str, Any]) -> str:
    keys = (
        "case_id",
        "meeting_id",
        "plan_id",
        "notification_id",
        "recipient_role",
        "template",
        "channel",
        "escalation",
        "outcome",
        "within_time",
        "due_at",
        "next_contact_at",
    )
    parts = [f"{k}={str(ev[k])[:36]}" for k in keys if ev.get(k) is not None and ev.get(k) != ""]
    if "reasons" in ev:
        parts.append("reasons=" + ",".join(f"{r['field']}:{r['code']}" for r in ev["reasons"]))
    return " ".join(parts)


async def print_events(nc: nats.NATS) -> None:
    """Print every new event on the bus (ids and codes only: no personal data on screen)."""
    js = nc.jetstream()

    async def cb(msg: Any) -> None:
        try:
            ev = json.loads(msg.data)
        except ValueError:
            ev = {}
        stem = re.sub(r"\.v[0-9]+(\..*)?$", "", msg.subject)  # the event type, without version and route
        _seen.setdefault(stem, []).append(ev)
        now = local(datetime.now(UTC)).strftime("%H:%M:%S")
        print(f"  {now}  {msg.subject:<28} {_summary(msg.subject, ev)}", flush=True)

    for subject in WATCHED:
        await js.subscribe(subject, cb=cb, ordered_consumer=True, deliver_policy=DeliverPolicy.NEW)


async def _wait(stem: str, pred: Any, timeout: float = 30.0) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        for ev in _seen.get(stem, []):
            if pred(ev):
                return ev
        await asyncio.sleep(0.05)
    raise TimeoutError(f"no {stem} event in {timeout:.0f}s")


async def _wait_any(stems: tuple[str, ...], pred: Any, timeout: float = 30.0) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        for stem in stems:
            for ev in _seen.get(stem, []):
                if pred(ev):
                    return ev
        await asyncio.sleep(0.05)
    raise TimeoutError(f"no {' or '.join(stems)} event in {timeout:.0f}s")


def say(text: str) -> None:
    print(f"\n> {text}", flush=True)


CLOSE_WORKER = "staff-close-1"  # in services/meetings/roster.json: a worker of the Porvoo family centre
SOCIAL_WORKER = "cw-sw-1"  # invented: a social worker of the child-welfare intake team (no roster lists that team)
CHILD_WELFARE_TEAM = "child-welfare-intake"  # where services/referral/routing.json sends every notification
GUARDIAN_HETU = make_test_hetu(date(1988, 6, 2), 934)  # invented: individual number 900-999
TEAM_LEAD = "demo-lead-1"  # invented: the lead of the Porvoo family centre (keeps the roster)
FAMILY_CENTRE = "porvoo-family-centre"
LEAVING, TAKING_OVER = "pv-fw-2", "pv-fw-1"  # family workers in services/meetings/roster.json
ROSTER = Path(__file__).resolve().parents[1] / "services" / "meetings" / "roster.json"


async def _until_case_reached(staff: nats.NATS, subject: str, payload: dict[str, Any], token: str) -> Any:
    """A staff app's first command on a new case: each service learns who may reach the case from
    the case's events, a moment after referral.received, so a refusal at once is retried briefly."""
    for _ in range(50):
        reply = await call(staff, subject, payload, token=token)
        if reply.ok or reply.errors[0].code not in ("unknown_case", "forbidden"):
            return reply
        await asyncio.sleep(0.1)
    return reply


async def run_demo(
    nc: nats.NATS,
    issuer: LocalIssuer,
    followup_after: float = 6.0,
    frontdoor: nats.NATS | None = None,
    staff: nats.NATS | None = None,
) -> dict[str, str]:
    """``nc`` watches events; ``frontdoor`` and ``staff`` are the front door's and the staff app's own
    connections (their own NATS identities when the server enforces them). ``issuer`` signs the
    staff member's and the guardian's access tokens (the embedded identity provider)."""
    frontdoor = frontdoor or nc
    staff = staff or nc
    token = staff_token(issuer, CLOSE_WORKER)
    sub_id = f"demo-{uuid4().hex[:12]}"
    say("Front door: the family's e-contact form arrives (an invented family).")
    await submit_referral(
        frontdoor,
        {
            "submission_id": sub_id,
            "channel": "concern_with_family",
            "municipality": "Porvoo",
            "submitted_at": datetime.now(UTC).isoformat(),
            "children": [
                {"given_name": "Testi", "family_name": "Esimerkki", "personal_id": make_test_hetu(date(2018, 3, 14), 912)}
            ],
            "guardians": [
                {
                    "name": "Demo Vanhempi",
                    "personal_id": GUARDIAN_HETU,  # stored only as a keyed hash: the guardian's own sign-in finds the case
                    "email": "vanhempi@example.com",
                    "phone": "040 000 0000",
                    "language": "sv",
                }
            ],
            "language": "sv",
            "concern": "Arjen sujuminen on vaikeaa.",
            "referrer": {
                "organisation_type": "early_childhood_education",
                "organisation": "Demo-päiväkoti",
                "email": "paivakoti@example.com",
            },
            "consent_to_convene": True,
        },
    )
    # The demo family is the same every run: from the second run on, the child already has an open
    # case, so the new referral is linked to it (referral.linked) instead of opening another.
    received = await _wait_any(("referral.received", "referral.linked"), lambda e: e.get("submission_id") == sub_id)
    case_id = received["case_id"]

    say(f"Close worker ({CLOSE_WORKER}, signed in: a bearer token): convene a joint meeting with the family and a psychologist.")
    starts = datetime.now(UTC) + timedelta(seconds=3)
    convene = {
        "command_id": str(uuid4()),
        "case_id": case_id,
        "starts_at": starts.isoformat(),
        "ends_at": (starts + timedelta(minutes=15)).isoformat(),
        "room": "pv-neuvotteluhuone-1",  # from services/meetings/roster.json
        "participants": [
            {
                "participant_id": "guardian-1",
                "kind": "family",
                "role": "guardian",
                "contact": {"contact_id": "guardian-1", "role": "guardian", "language": "sv", "email": "vanhempi@example.com"},
            },
            {
                "participant_id": "staff-close-1",
                "kind": "professional",
                "role": "close_worker",
                "contact": {"contact_id": "staff-close-1", "role": "close_worker", "email": "lahityontekija@example.com"},
            },
            {
                "participant_id": "pv-psy-1",
                "kind": "professional",
                "role": "psychologist",
                "contact": {"contact_id": "pv-psy-1", "role": "psychologist", "email": "psykologi@example.com"},
            },
        ],
    }
    reply = await _until_case_reached(staff, "cmd.meetings.convene.v2", convene, token)
    if not reply.ok:
        raise RuntimeError(f"convene refused: {[e.code for e in reply.errors]}")
    meeting_id = reply.id
    await _wait("meeting.convened", lambda e: e["meeting_id"] == meeting_id)

    say("The joint meeting takes place; the family names the close worker as responsible worker.")
    await asyncio.sleep(max(0.0, (starts - datetime.now(UTC)).total_seconds()) + 0.2)
    reply = await call(
        staff,
        "cmd.meetings.record_held.v2",
        {
            "command_id": str(uuid4()),
            "case_id": case_id,
            "meeting_id": meeting_id,
            "attendance": [{"participant_id": p["participant_id"], "present": True} for p in convene["participants"]],
            "child_heard": True,
            "responsible_worker_ids": [CLOSE_WORKER],
        },
        token=token,
    )
    if not reply.ok:
        raise RuntimeError(f"record_held refused: {[e.code for e in reply.errors]}")
    await _wait("meeting.held", lambda e: e["meeting_id"] == meeting_id)

    say(f"Close worker records the joint plan; next contact agreed in {followup_after:.0f} seconds (demo time).")
    reply = await _until_case_reached(
        staff,
        "cmd.plans.agree.v2",
        {
            "command_id": str(uuid4()),
            "case_id": case_id,
            "meeting_id": meeting_id,
            "changes_needed": ["Aamut sujuvat ilman riitaa"],
            "actions_at_home": [{"what": "Aamurutiini kuvina", "who": "vanhempi"}],
            "actions_in_everyday_environment": [{"what": "Rauhallinen aloitus päiväkodissa", "who": "päiväkoti"}],
            "worker_contacts_family": "Puhelu maanantaisin",
            "family_contacts_worker": "Tekstiviesti tai puhelu arkisin",
            "responsible_workers": [
                {
                    "worker_id": "staff-close-1",
                    "organisation": "Porvoon varhaiskasvatus",
                    "public_service": True,
                    "contact": {
                        "contact_id": "staff-close-1",
                        "role": "responsible_worker",
                        "email": "lahityontekija@example.com",
                    },
                }
            ],
            "next_contact_at": (datetime.now(UTC) + timedelta(seconds=followup_after)).isoformat(),
            "family_contacts": [
                {"contact_id": "guardian-1", "role": "guardian", "language": "sv", "email": "vanhempi@example.com"}
            ],
        },
        token,
    )
    if not reply.ok:
        raise RuntimeError(f"agree plan refused: {[e.code for e in reply.errors]}")
    plan_id = reply.id

    say("The guardian signs in with strong identification and reads the family's plan (and nothing else).")
    guardian = issuer.mint_guardian(GUARDIAN_HETU)
    reply = await _until_case_reached(staff, "query.plans.case.v2", {"case_id": case_id, "purpose": "own_data"}, guardian)
    if not reply.ok:
        raise RuntimeError(f"the guardian's read refused: {[e.code for e in reply.errors]}")
    print(f"  the guardian sees {len(reply.data['plans'])} plan(s) of case {case_id}")

    say("Waiting for the durable follow-up timer (a JetStream message schedule) to fire...")
    due = await _wait("followup.due", lambda e: e["plan_id"] == plan_id, timeout=followup_after + 30)
    await _wait("notification.sent", lambda e: e["source_event_id"] == due["event_id"], timeout=30)
    say(f"Case {case_id}: referral -> meeting -> plan -> follow-up due, every step notified.")
    await joint_work_statistics_demo(issuer, staff, case_id, str(meeting_id), guardian)
    statutory = await run_statutory_demo(issuer, frontdoor, staff)
    return {"case_id": case_id, "meeting_id": str(meeting_id), "plan_id": str(plan_id), **statutory}


async def run_statutory_demo(issuer: LocalIssuer, frontdoor: nats.NATS, staff: nats.NATS) -> dict[str, str]:
    """The second walk: a child-protection notification, its urgency assessed at once and the
    7-working-day decision recorded, both by a social worker of the case's team (their token: the
    request names nobody). A new invented child each run, so each run opens a new case."""
    token = staff_token(
        issuer, SOCIAL_WORKER, roles=["worker", "social_worker"], teams=[CHILD_WELFARE_TEAM], municipality="Porvoo"
    )
    sub_id = f"demo-cpn-{uuid4().hex[:12]}"
    born = date(2015, 1, 1) + timedelta(days=random.randrange(5 * 365))
    say("Front door: the police make a child-protection notification (another invented family).")
    await submit_referral(
        frontdoor,
        {
            "submission_id": sub_id,
            "channel": "child_protection_notification",
            "municipality": "Porvoo",
            "submitted_at": datetime.now(UTC).isoformat(),  # the receipt: every statutory clock starts here
            "children": [
                {"given_name": "Demo", "family_name": "Ilmoitus", "personal_id": make_test_hetu(born, random.randint(900, 999))}
            ],
            "guardians": [{"name": "Demo Huoltaja", "email": "huoltaja@example.com", "language": "fi"}],
            "language": "fi",
            "concern": "Kotihälytys: lapsi kotona yksin yöllä.",
            "referrer": {"organisation_type": "police", "organisation": "Demo-poliisi", "email": "poliisi@example.com"},
        },
    )
    received = await _wait_any(("referral.received", "referral.linked"), lambda e: e.get("submission_id") == sub_id)
    case_id, referral_id = received["case_id"], received["referral_id"]

    say(f"Social worker ({SOCIAL_WORKER}, signed in): the urgency is assessed at once; the guardians may be told.")
    reply = await _until_case_reached(
        staff,
        "cmd.referral.assess_urgency.v1",
        {"command_id": str(uuid4()), "case_id": case_id, "referral_id": referral_id, "urgent_protection_needed": False},
        token,
    )
    if not reply.ok:
        raise RuntimeError(f"assess_urgency refused: {[e.code for e in reply.errors]}")
    await _wait("referral.urgency_assessed", lambda e: e["referral_id"] == referral_id)

    say("Social worker records the 7-working-day decision: start the service-need assessment.")
    reply = await call(
        staff,
        "cmd.referral.record_decision.v1",
        {"command_id": str(uuid4()), "case_id": case_id, "outcome": "start_assessment"},
        token=token,
    )
    if not reply.ok:
        raise RuntimeError(f"record_decision refused: {[e.code for e in reply.errors]}")
    await _wait("referral.decision_recorded", lambda e: e["case_id"] == case_id)
    await _wait("notification.sent", lambda e: e["case_id"] == case_id and e.get("template") == "notification_received")
    say(f"Case {case_id}: notification -> urgency assessed -> decision recorded, the guardian told.")

    say("Social worker starts the service-need assessment, and completes it: the referrer is told.")
    for subject, extra in (
        ("cmd.referral.start_assessment.v2", {}),
        ("cmd.referral.complete_assessment.v2", {"outcome": "services_started"}),
    ):
        body = {"command_id": str(uuid4()), "case_id": case_id, **extra}
        reply = await call(staff, subject, body, token=token)
        if not reply.ok:
            raise RuntimeError(f"{subject} refused: {[e.code for e in reply.errors]}")
    await _wait("assessment.completed", lambda e: e["case_id"] == case_id)
    handover = await onward_service_and_handover_demo(issuer, staff, token, case_id, "huoltaja@example.com")
    return {"statutory_case_id": case_id, **handover}


async def joint_work_statistics_demo(issuer: LocalIssuer, staff: nats.NATS, case_id: str, meeting_id: str, guardian: str) -> None:
    """The family's feedback on the meeting, the municipality's adoption stage, and the figures."""
    say("The guardian gives feedback on the joint meeting: 5 of 5, and the family felt heard.")
    feedback = {"command_id": str(uuid4()), "case_id": case_id, "meeting_id": meeting_id, "rating": 5, "felt_heard": True}
    reply = await call(staff, "cmd.meetings.record_feedback.v1", feedback, token=guardian)
    if not reply.ok:
        raise RuntimeError(f"record_feedback refused: {[e.code for e in reply.errors]}")
    await _wait("meeting.feedback_recorded", lambda e: e["meeting_id"] == meeting_id)
    lead = staff_token(issuer, TEAM_LEAD, roles=["team_lead"], teams=[FAMILY_CENTRE], municipality="Porvoo")
    say(f"Team lead ({TEAM_LEAD}): Porvoo's adoption stage of the model is recorded: a trial is running.")
    stage = {"command_id": str(uuid4()), "municipality": "Porvoo", "stage": "trial"}
    reply = await call(staff, "cmd.meetings.record_adoption_stage.v1", stage, token=lead)
    if not reply.ok:
        raise RuntimeError(f"record_adoption_stage refused: {[e.code for e in reply.errors]}")
    await _wait("meeting.adoption_stage_recorded", lambda e: e["municipality"] == "Porvoo")
    stats = staff_token(issuer, "demo-stats-1", roles=["statistician"], teams=[], municipality="Porvoo")
    for _ in range(50):  # the read model follows the events a moment later
        reply = await call(staff, "query.meetings.joint_work_statistics.v1", {"municipality": "Porvoo"}, token=stats)
        rows = (reply.data or {}).get("rows", []) if reply.ok else []
        if any(r["feedback_given"] and r["adoption_stage"] for r in rows):
            break
        await asyncio.sleep(0.1)
    for r in rows[-1:]:
        print(
            f"  Porvoo {r['month']}: {r['meetings_held']} meeting(s) held, attended {r['attended']}/{r['invited']},"
            f" contact to first meeting median {r['contact_to_first_meeting_median_days']} d,"
            f" feedback {r['feedback_mean_rating']}/5, adoption stage {r['adoption_stage']},"
            f" practice indicator {r['practice_indicator']}"
        )


def _roster_entry(professional_id: str) -> dict[str, Any]:
    entry = next(p for p in json.loads(ROSTER.read_text())["professionals"] if p["professional_id"] == professional_id)
    return dict(entry)


async def onward_service_and_handover_demo(
    issuer: LocalIssuer, staff: nats.NATS, token: str, case_id: str, guardian_email: str
) -> dict[str, str]:
    """A plan with an onward service whose agreed start day has passed (the late-start alert fires at
    once), then the responsible worker leaves the roster naming a successor (the handover)."""
    say(
        f"Social worker records the plan: intensified family work elsewhere, agreed to start by yesterday; {LEAVING} responsible."
    )
    yesterday = local(datetime.now(UTC)).date() - timedelta(days=1)
    worker = _roster_entry(LEAVING)
    family = {"contact_id": "guardian-1", "role": "guardian", "language": "fi", "email": guardian_email}
    reply = await _until_case_reached(
        staff,
        "cmd.plans.agree.v2",
        {
            "command_id": str(uuid4()),
            "case_id": case_id,
            "changes_needed": ["Lapsi ei ole öisin yksin kotona"],
            "actions_at_home": [{"what": "Iltojen hoitovuorot sovitaan", "who": "huoltaja"}],
            "actions_elsewhere": [
                {"what": "Tehostettu perhetyö", "who": "perhetyö", "where": "Porvoon perhetyö", "start_by": yesterday.isoformat()}
            ],
            "worker_contacts_family": "Puhelu tiistaisin",
            "family_contacts_worker": "Puhelu arkisin",
            "responsible_workers": [
                {
                    "worker_id": LEAVING,
                    "organisation": worker["unit"],
                    "public_service": True,
                    "contact": worker["contact"] | {"role": "responsible_worker"},
                }
            ],
            "next_contact_at": (datetime.now(UTC) + timedelta(days=7)).isoformat(),
            "family_contacts": [family],
        },
        token,
    )
    if not reply.ok:
        raise RuntimeError(f"agree plan refused: {[e.code for e in reply.errors]}")
    plan_id = reply.id
    overdue = await _wait("plan.service_start_overdue", lambda e: e["plan_id"] == plan_id)
    await _wait("notification.sent", lambda e: e["source_event_id"] == overdue["event_id"])
    say("The late-start alert: the service had not started by its day; the responsible worker and the family were told.")

    lead = staff_token(issuer, TEAM_LEAD, roles=["team_lead"], teams=[FAMILY_CENTRE], municipality="Porvoo")
    say(f"Team lead: {LEAVING} leaves the roster; {TAKING_OVER} takes over their plans (a handover).")

    async def upsert(active: bool) -> None:
        body = {k: v for k, v in worker.items() if k != "team" or v}
        body |= {"command_id": str(uuid4()), "active": active}
        if not active:
            body["successor_id"] = TAKING_OVER
        reply = await call(staff, "cmd.meetings.upsert_professional.v2", body, token=lead)
        if not reply.ok:
            raise RuntimeError(f"upsert_professional refused: {[e.code for e in reply.errors]}")

    handed: dict[str, Any] | None = None
    for _ in range(10):  # the meetings service learns who is responsible from plan.agreed, a moment later
        await upsert(False)
        try:
            handed = await _wait("plan.handed_over", lambda e: e["plan_id"] == plan_id, timeout=3)
            break
        except TimeoutError:
            await upsert(True)
    if handed is None:
        raise RuntimeError("no handover")
    await _wait("notification.sent", lambda e: e["source_event_id"] == handed["event_id"])
    await upsert(True)  # the demo worker comes back, so that the next run finds the roster as it was
    say(f"Plan {plan_id}: onward service late -> alert; handover to {TAKING_OVER}, the family told its new contact.")
    return {"statutory_plan_id": str(plan_id)}
