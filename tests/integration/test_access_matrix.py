"""Every command and query in the handler registry × every kind of caller, over a real
nats-server, real SQLite files and tokens verified against a JWKS served over real HTTP.

The subjects come from the running services' registries (``Service.handlers``): a request without
a sample here fails the test, so a new request cannot skip the matrix. What each caller may do is
written out below as the rules of ``../shared/domain.md`` ("Who may see what") say, not read from
the policy or the requests' own declarations.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest

from infra.identity_provider import JwksServer, LocalIssuer, new_key
from services.referral.hetu import make_test_hetu
from shared.audit import TABLE as AUDIT
from shared.case_access import CaseAccess
from shared.contracts import Reply
from shared.settings import Settings
from tests.conftest import wait_for
from tests.support.data import submission
from tests.support.system import running

pytestmark = [pytest.mark.integration]

TEAM = "testila-family-centre"  # where routing.json sends a Testilä referral of this channel
GUARDIAN = make_test_hetu(date(1990, 3, 1), 951)
OTHER_GUARDIAN = make_test_hetu(date(1988, 7, 9), 952)
PARTICIPANT = "staff-psy"  # invited to the case's meeting; on no team of the case

STAFF = {
    "team_worker": ("staff-close", {"worker"}, {TEAM}),
    "team_social_worker": ("staff-sw", {"worker", "social_worker"}, {TEAM}),
    "other_worker": ("staff-else", {"worker"}, {"other-team"}),
    "participant": (PARTICIPANT, {"worker"}, {"other-team"}),
    "team_lead": ("lead-1", {"team_lead"}, {TEAM}),
    "statistician": ("stats-1", {"statistician"}, set()),
    "ops": ("ops-1", {"ops"}, set()),
}
GUARDIANS = {"guardian": GUARDIAN, "other_guardian": OTHER_GUARDIAN}
BROKEN = ("no_token", "expired", "untrusted_key")
CALLERS = (*STAFF, *GUARDIANS, *BROKEN)

# What each kind of request allows (the domain's rules, written out per caller).
CASE_STAFF = {"team_worker", "team_social_worker", "participant", "team_lead"}
ALLOWED: dict[str, set[str]] = {
    "case": CASE_STAFF,  # a family's data or a change to it
    "social_work": {"team_social_worker"},  # the decision, the urgency assessment: a social worker of the case's team
    "guardian_view": CASE_STAFF | {"guardian"},  # the plan, the meetings, the access logs
    "consent": {"team_worker", "team_social_worker", "participant", "guardian"},  # a worker of the case or the guardian
    "team_list": {"team_worker", "team_social_worker", "team_lead"},  # the caller's own team
    "team_case": {"team_worker", "team_social_worker", "team_lead"},  # a transfer: the case's own team only
    "worker_list": CASE_STAFF | {"other_worker"},  # filtered to the caller's cases
    "aggregate": set(STAFF),  # statistics: counts only
    "roster": {"team_worker", "team_social_worker", "other_worker", "participant", "team_lead", "ops"},  # staff data
    "roster_admin": {"team_lead"},
    "feedback": CASE_STAFF | {"guardian"},  # feedback on a meeting: a worker of the case or the family itself
    "record_statistics": {"team_lead", "statistician"},  # the adoption stage (and roster admins)
    "operate": {"ops"},  # operators' own requests (ops.<service>.…)
}


def samples(case_id: str) -> dict[str, tuple[str, dict[str, Any]]]:
    """subject -> (kind of request, a valid payload about the case). Entity ids are new: a request
    the policy lets through is then refused as not found, and changes nothing."""
    start = (datetime.now(UTC) + timedelta(days=3)).replace(microsecond=0)

    def cmd(**fields: Any) -> dict[str, Any]:
        return {"command_id": str(uuid4()), "case_id": case_id, **fields}

    def read(**fields: Any) -> dict[str, Any]:
        return {"case_id": case_id, "purpose": "case_work", **fields}

    some = str(uuid4())
    return {
        "query.referral.case.v2": ("case", read()),
        "query.referral.team_cases.v2": ("team_list", {"team_id": TEAM, "purpose": "case_work"}),
        "query.referral.deadlines_due.v2": ("team_list", {"team_id": TEAM, "working_days": 5, "purpose": "deadline_follow_up"}),
        "query.referral.access_log.v2": ("guardian_view", read(purpose="access_request")),
        "cmd.referral.unlink.v2": ("case", cmd(referral_id=some, reason="wrong family")),
        "cmd.referral.record_consent.v2": ("consent", cmd(purpose="convene_team", given_by="guardian-1")),
        "cmd.referral.withdraw_consent.v2": ("consent", cmd(consent_id=some, withdrawn_by="guardian-1")),
        # A decision dated in the future and a referral that does not exist: let through, then
        # refused by the domain, so the case is not changed.
        "cmd.referral.record_decision.v1": ("social_work", cmd(outcome="start_assessment", decided_on="2099-01-07")),
        "cmd.referral.assess_urgency.v1": ("social_work", cmd(referral_id=some, urgent_protection_needed=False)),
        "query.referral.statistics.v1": ("aggregate", {"format": "csv"}),
        "query.referral.channel_statistics.v1": ("aggregate", {"format": "csv"}),
        # A team the routing does not know: let through, then refused by the domain.
        "cmd.referral.transfer_case.v1": ("team_case", cmd(team_id="no-such-team")),
        # A henkilötunnus that is no guardian of the case: let through, then refused by the domain.
        "cmd.referral.restrict_guardian_access.v1": (
            "social_work",
            cmd(guardian_personal_id="010190-900P", reason="non_disclosure"),
        ),
        "cmd.referral.start_assessment.v2": ("social_work", cmd(started_on="2030-01-07")),
        "cmd.referral.complete_assessment.v2": ("social_work", cmd(outcome="services_started")),
        "cmd.meetings.convene.v2": (
            "case",
            cmd(
                starts_at=start.isoformat(),
                ends_at=(start + timedelta(hours=1)).isoformat(),
                room="No such room",
                participants=[{"participant_id": "staff-close", "kind": "professional", "role": "close_worker"}],
            ),
        ),
        "cmd.meetings.record_held.v2": (
            "case",
            cmd(
                meeting_id=some,
                attendance=[{"participant_id": "staff-close", "present": True}],
                child_heard=True,
                responsible_worker_ids=["staff-close"],
            ),
        ),
        "query.meetings.case.v2": ("guardian_view", read()),
        "query.meetings.access_log.v2": ("guardian_view", {"case_ids": [case_id], "purpose": "access_request"}),
        "cmd.meetings.upsert_professional.v2": (
            "roster_admin",
            {
                "command_id": str(uuid4()),
                "professional_id": "staff-matrix",
                "municipality": "Testilä",
                "roles": ["family_worker"],
                "languages": ["fi"],
                "unit": "Perhetyö",
            },
        ),
        "cmd.meetings.upsert_room.v2": (
            "roster_admin",
            {"command_id": str(uuid4()), "room_id": "Room M", "municipality": "Testilä", "capacity": 6, "location": "Floor 2"},
        ),
        "query.meetings.roster.v2": ("roster", {"municipality": "Testilä"}),
        "cmd.meetings.propose.v2": ("case", cmd(roles=["no_such_role"])),
        "cmd.meetings.accept_proposal.v2": ("case", cmd(proposal_id=some)),
        "cmd.meetings.respond.v2": ("case", cmd(meeting_id=some, participant_id="staff-close", answer="accepted")),
        "cmd.meetings.reschedule.v2": (
            "case",
            cmd(meeting_id=some, starts_at=start.isoformat(), ends_at=(start + timedelta(hours=1)).isoformat(), reason="ill"),
        ),
        "cmd.meetings.cancel.v2": ("case", cmd(meeting_id=some, reason="ill")),
        "query.meetings.statistics.v2": ("aggregate", {}),
        "cmd.meetings.record_feedback.v1": ("feedback", cmd(meeting_id=some, rating=4, felt_heard=True)),
        # A municipality the roster does not know: let through, then refused by the domain.
        "cmd.meetings.record_adoption_stage.v1": (
            "record_statistics",
            {"command_id": str(uuid4()), "municipality": "Ei-kuntaa", "stage": "trial"},
        ),
        "query.meetings.joint_work_statistics.v1": ("aggregate", {"format": "csv"}),
        "cmd.plans.agree.v2": ("case", cmd()),
        "cmd.plans.revise.v2": ("case", cmd(plan_id=some)),
        "cmd.plans.close.v2": ("case", cmd(plan_id=some, outcome="goals_met")),
        "cmd.plans.reschedule_followup.v2": ("case", cmd(plan_id=some, next_contact_at=start.isoformat())),
        "cmd.plans.record_followup.v2": ("case", cmd(plan_id=some, what_happened="Talked on the phone")),
        "cmd.plans.complete_handover.v1": (
            "case",
            cmd(
                plan_id=some,
                handover_id=some,
                responsible_worker={"worker_id": "staff-1", "organisation": "Perhetyö", "public_service": True},
            ),
        ),
        "cmd.plans.record_service_status.v1": ("case", cmd(plan_id=some, service_id=some, status="sent")),
        "query.plans.case.v2": ("guardian_view", read()),
        "query.plans.plan.v2": ("guardian_view", read(plan_id=some)),
        "query.plans.printable.v2": ("guardian_view", read(plan_id=some)),
        "query.plans.overdue.v2": ("worker_list", {"purpose": "plan_follow_up"}),
        "query.plans.effectiveness.v2": ("case", read()),
        "query.plans.effectiveness_chart.v2": ("case", read()),
        "query.plans.access_log.v2": ("guardian_view", {"case_ids": [case_id], "purpose": "access_request"}),
        "query.notifications.case.v2": ("case", read()),
        "query.notifications.failed.v2": ("case", read(purpose="delivery_follow_up")),
        "query.notifications.access_log.v2": ("guardian_view", {"case_ids": [case_id], "purpose": "access_request"}),
        "cmd.notifications.set_preference.v2": ("case", cmd(contact_id="guardian-1", preferred_channel="email")),
        "ops.referral.rejected.v1": ("operate", {"purpose": "operations_review", "limit": 5}),
        # A case no one has: the sample must not erase the case the other samples read.
        "ops.referral.erase_family.v1": (
            "operate",
            {"command_id": str(uuid4()), "case_id": str(uuid4()), "ground": "retention_ended"},
        ),
    }


REFUSALS = {"unauthenticated", "forbidden", "purpose_required", "version_retired"}


@pytest.fixture
def identity(tmp_path: Path):  # type: ignore[no-untyped-def]
    issuer = LocalIssuer.generate()
    server = JwksServer(issuer).start()
    yield issuer, server
    server.stop()


def tokens(issuer: LocalIssuer) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name, (person, roles, teams) in STAFF.items():
        out[name] = issuer.mint_staff(person, roles, teams, municipality="Testilä")
    for name, hetu in GUARDIANS.items():
        out[name] = issuer.mint_guardian(hetu)
    out["no_token"] = None
    out["expired"] = issuer.mint_staff(
        "staff-close", {"worker"}, {TEAM}, issued_at=datetime.now(UTC).timestamp() - 7200, ttl_seconds=60
    )
    out["untrusted_key"] = issuer.mint_staff("staff-close", {"worker"}, {TEAM}, key=new_key())
    return out


async def ask(nc: Any, subject: str, payload: dict[str, Any], token: str | None) -> Reply:
    headers = {"Authorization": f"Bearer {token}"} if token else None
    msg = await nc.request(subject, json.dumps(payload).encode(), timeout=10, headers=headers)
    return Reply.model_validate_json(msg.data)


async def test_every_request_allows_and_refuses_each_kind_of_caller_as_the_rules_say(  # type: ignore[no-untyped-def]
    settings, nc, clean_streams, identity
) -> None:
    issuer, server = identity
    settings = settings.model_copy(
        update={k.removeprefix("KOOLLE_").lower(): v for k, v in issuer.settings_env(server.url).items()}
    )
    settings = Settings.model_validate(settings.model_dump())
    tok = tokens(issuer)
    async with running(settings) as svcs:
        # Two families: the one the requests name, and another child's (the other guardian's).
        mine = submission(guardians=[{"name": "Maija Testinen", "phone": "040 123 4567", "personal_id": GUARDIAN}])
        theirs = submission(guardians=[{"name": "Outi Muukalainen", "phone": "040 765 4321", "personal_id": OTHER_GUARDIAN}])
        for sub in (mine, theirs):
            await nc.jetstream().publish(
                "intake.referral.v1", json.dumps(sub).encode(), headers={"Nats-Msg-Id": sub["submission_id"]}
            )

        async def case_of(sub_id: str) -> str | None:
            async with svcs["referral"].uow() as uow:
                found = await uow.referrals.by_submission(sub_id)  # type: ignore[attr-defined]
                return str(found.case_id) if found else None

        case_id = await wait_for(lambda: case_of(mine["submission_id"]))
        other_case = await wait_for(lambda: case_of(theirs["submission_id"]))

        async def relations_everywhere(case: str, kind: str) -> bool:
            for svc in svcs.values():
                async with svc.uow() as uow:
                    (rel,) = await CaseAccess(uow).relations([case])
                if not getattr(rel, kind):
                    return False
            return True

        await wait_for(lambda: relations_everywhere(case_id, "teams"))
        await wait_for(lambda: relations_everywhere(case_id, "guardians"))
        await wait_for(lambda: relations_everywhere(other_case, "guardians"))
        # The team's worker convenes a meeting with the psychologist: now a participant of the case.
        start = (datetime.now(UTC) + timedelta(days=2)).replace(hour=9, minute=0, second=0, microsecond=0)
        convened = await ask(
            nc,
            "cmd.meetings.convene.v2",
            {
                "command_id": str(uuid4()),
                "case_id": case_id,
                "starts_at": start.isoformat(),
                "ends_at": (start + timedelta(hours=1)).isoformat(),
                "room": "Room 1",
                "participants": [
                    {"participant_id": "guardian-1", "kind": "family", "role": "guardian"},
                    {"participant_id": "staff-close", "kind": "professional", "role": "close_worker"},
                    {"participant_id": PARTICIPANT, "kind": "professional", "role": "psychologist"},
                ],
            },
            tok["team_worker"],
        )
        assert convened.ok, convened.errors
        await wait_for(lambda: relations_everywhere(case_id, "participants"))

        table = samples(case_id)
        served = {s: svc for svc in svcs.values() for s in svc.handlers}
        unsampled = [
            s for s, (model, _) in ((s, svc.handlers[s]) for s, svc in served.items()) if not model.retired_by and s not in table
        ]
        assert not unsampled, f"requests without a sample in the access matrix: {unsampled}"

        wrong: list[str] = []
        for subject, svc in sorted(served.items()):
            model, _ = svc.handlers[subject]
            for caller in CALLERS:
                if model.retired_by:
                    kind, payload, expected = "retired", {"anything": "at all"}, "version_retired"
                else:
                    kind, payload = table[subject]
                    payload = dict(payload)
                    if "purpose" in payload and caller in GUARDIANS and kind != "consent":
                        payload["purpose"] = "own_data"  # what a guardian reads, they read as their own
                    if "command_id" in payload:
                        payload["command_id"] = str(uuid4())
                    if caller in BROKEN:
                        expected = "unauthenticated"
                    else:
                        expected = "allowed" if caller in ALLOWED[kind] else "forbidden"
                reply = await ask(nc, subject, payload, tok[caller])
                code = reply.errors[0].code if reply.errors else ""
                got = code if code in REFUSALS else "allowed"
                if code and code not in REFUSALS and code in {"missing", "extra_forbidden", "uuid_parsing", "literal_error"}:
                    got = f"invalid sample ({code} at {reply.errors[0].field})"
                if got != expected:
                    wrong.append(f"{subject} as {caller}: expected {expected}, got {got} {reply.data or ''}")
        assert not wrong, "\n".join(wrong)

        # Every refusal that named a case is in that service's access log, with the verified actor.
        async with svcs["plans"].uow() as uow:
            t = uow.db.metadata.tables[AUDIT]
            rows = (await uow.session.execute(t.select().where(t.c.case_id == case_id))).all()
        actors = {r.actor for r in rows}
        assert {"staff-else", "stats-1", "ops-1"} <= actors  # refused staff, as their tokens name them
        assert "unauthenticated" in actors  # no token, expired, untrusted: who is unknown, and it says so
        assert not any(GUARDIAN in a or OTHER_GUARDIAN in a for a in actors)  # a guardian only by pseudonym
