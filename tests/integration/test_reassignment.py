"""Reassignment, handover and onward services on a real nats-server and SQLite, with tokens from a
real identity provider: a case transferred to another team (the old team loses access, the new team
is told), a responsible worker deactivated in the roster (the plan is handed over, the timers move,
the family is told its new contact in its language), and an onward service followed until it starts,
with a late start told to the worker and the family."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from nats.js.errors import NotFoundError

from services.notifications.templates import LANGUAGES, TEMPLATES, gettext
from shared.calendar import helsinki_date
from shared.case_access import CaseAccess
from shared.client import call, submit_referral
from shared.service import Service
from shared.settings import Settings
from tests.conftest import wait_for
from tests.support.data import submission
from tests.support.identity import TestIdentity
from tests.support.system import EventLog, running

pytestmark = [pytest.mark.integration]

TIMERS = "TIMERS_PLANS"  # the plans service's durable timers (shared/contracts: STREAMS)
OLD_TEAM, NEW_TEAM = "testila-family-centre", "porvoo-family-centre"

STAFF = {
    "staff": {
        "w-old": {"role": "family_worker", "language": "fi", "email": "old@testila.example"},
        "w-new-sv": {"role": "social_worker", "language": "sv", "email": "ny@porvoo.example"},
        "lead-new-en": {"role": "team_lead", "language": "en", "email": "lead@porvoo.example"},
        "lead-old": {"role": "team_lead", "language": "fi", "email": "lead@testila.example"},
    },
    "teams": {
        OLD_TEAM: {"lead": "lead-old", "members": ["w-old"]},
        NEW_TEAM: {"lead": "lead-new-en", "social_workers": ["w-new-sv"]},
    },
    "on_duty": {},
}


@pytest.fixture
def settings(settings: Settings, identity: TestIdentity) -> Settings:
    return identity.settings(settings)


@pytest.fixture
def staff_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "staff.json"
    path.write_text(json.dumps(STAFF), encoding="utf-8")
    monkeypatch.setenv("KOOLLE_NOTIFICATIONS_STAFF_FILE", str(path))
    return path


def delivered(settings: Any, recipient: str) -> list[dict[str, Any]]:
    path = settings.data_dir / "notifications" / "delivered.jsonl"
    if not path.exists():
        return []
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [m for m in rows if m["recipient_id"] == recipient]


def sent(settings: Any, recipient: str, template: str) -> list[dict[str, Any]]:
    """What the recipient got of one template (known by its subject in any language)."""
    subjects = {gettext(language, TEMPLATES[template].subject) for language in LANGUAGES}
    return [m for m in delivered(settings, recipient) if m["subject"] in subjects]


def cmd(**kw: Any) -> dict[str, Any]:
    return {"command_id": str(uuid4()), **kw}


async def teams_everywhere(svcs: dict[str, Service], case_id: str, teams: set[str]) -> bool:
    for svc in svcs.values():
        async with svc.uow() as uow:
            (rel,) = await CaseAccess(uow).relations([case_id])
        if set(rel.teams) != teams:
            return False
    return True


async def responsible_everywhere(svcs: dict[str, Service], case_id: str, worker: str) -> bool:
    for svc in svcs.values():
        async with svc.uow() as uow:
            (rel,) = await CaseAccess(uow).relations([case_id])
        if worker not in rel.responsible:
            return False
    return True


async def test_a_case_transferred_to_another_team_leaves_the_old_team_without_access_and_tells_the_new_team(  # type: ignore[no-untyped-def]
    settings, nc, clean_streams, staff_file, identity
):
    log = await EventLog().attach(nc, ("referral.>", "notification.>"))
    old = identity.worker("w-old", OLD_TEAM, "Testilä")
    new = identity.social_worker("w-new-sv", NEW_TEAM)
    async with running(settings, "referral", "plans", "notifications") as svcs:
        await submit_referral(nc, submission())
        (received,) = await wait_for(lambda: log.of("referral.received"))
        case_id = received["case_id"]
        await wait_for(lambda: teams_everywhere(svcs, case_id, {OLD_TEAM}))
        read = {"case_id": case_id, "purpose": "case_work"}
        assert (await call(nc, "query.referral.case.v2", read, token=old)).ok
        assert not (await call(nc, "query.referral.case.v2", read, token=new)).ok

        body = cmd(case_id=case_id, team_id=NEW_TEAM, municipality="Porvoo", reason="Perhe muutti Porvooseen")
        # Only the case's own team transfers it: not another team's worker.
        refused = await call(nc, "cmd.referral.transfer_case.v1", body, token=new)
        assert not refused.ok and refused.errors[0].code == "forbidden"
        unknown = await call(nc, "cmd.referral.transfer_case.v1", cmd(case_id=case_id, team_id="no-such-team"), token=old)
        assert not unknown.ok and (unknown.errors[0].field, unknown.errors[0].code) == ("team_id", "unknown_team")
        reply = await call(nc, "cmd.referral.transfer_case.v1", body, token=old)
        assert reply.ok, reply.errors
        assert reply.data == {"team_id": NEW_TEAM, "previous_team_id": OLD_TEAM, "municipality": "Porvoo"}
        assert await call(nc, "cmd.referral.transfer_case.v1", body, token=old) == reply  # a retry: the same reply

        (moved,) = await wait_for(lambda: log.of("referral.case_transferred"))
        assert (moved["team_id"], moved["previous_team_id"], moved["municipality"], moved["previous_municipality"]) == (
            NEW_TEAM,
            OLD_TEAM,
            "Porvoo",
            "Testilä",
        )
        assert moved["transferred_by"] == "w-old" and "reason" not in moved
        await wait_for(lambda: teams_everywhere(svcs, case_id, {NEW_TEAM}))
        gone = await call(nc, "query.referral.case.v2", read, token=old)
        assert not gone.ok and gone.errors[0].code == "forbidden"
        case = await call(nc, "query.referral.case.v2", read, token=new)
        assert case.data is not None and (case.data["team_id"], case.data["municipality"]) == (NEW_TEAM, "Porvoo")
        (entry,) = [h for h in case.data["history"] if h["what"] == "case_transferred"]
        assert (entry["by"], entry["from_team"], entry["reason"]) == ("w-old", OLD_TEAM, "Perhe muutti Porvooseen")
        plans_now = await call(nc, "query.plans.case.v2", read, token=old)
        assert not plans_now.ok and plans_now.errors[0].code == "forbidden"  # the plans service follows too

        (sv,) = await wait_for(lambda: delivered(settings, "w-new-sv") or None)
        (en,) = await wait_for(lambda: delivered(settings, "lead-new-en") or None)
        assert (sv["language"], sv["subject"]) == ("sv", "Ett ärende har överförts till ert team")
        assert (en["language"], en["subject"]) == ("en", "A case was transferred to your team")
        assert case_id[:8] in en["body"] and "Porvoo" in en["body"]
        again = await call(nc, "cmd.referral.transfer_case.v1", cmd(case_id=case_id, team_id=NEW_TEAM), token=new)
        assert not again.ok and again.errors[0].code == "already_on_team"


async def test_the_services_take_a_new_cases_team_from_referral_received_and_an_unlinked_referrals_from_referral_unlinked(  # type: ignore[no-untyped-def]
    settings, nc, clean_streams, staff_file, identity
):
    """``referral.assigned`` is published for staff apps' team feeds; no service reads it any more."""
    log = await EventLog().attach(nc, ("referral.>",))
    sw = identity.social_worker("sw-old", OLD_TEAM)
    async with running(settings, "referral", "meetings", "plans", "notifications") as svcs:
        for name, svc in svcs.items():
            for consumer in svc.durable_consumers():
                assert not [s for s in consumer.subjects if s.startswith("referral.assigned")], (name, consumer.subjects)
        first = submission()
        await submit_referral(nc, first)
        (received,) = await wait_for(lambda: log.of("referral.received"))
        case_id = received["case_id"]
        (assigned,) = await wait_for(lambda: log.of("referral.assigned"))
        assert received["team_id"] == assigned["team_id"] == OLD_TEAM  # the same team, in both
        await wait_for(lambda: teams_everywhere(svcs, case_id, {OLD_TEAM}))
        await wait_for(lambda: len(sent(settings, "w-old", "referral_assigned")) == 1)  # the team is told once

        await submit_referral(nc, submission(children=first["children"]))  # the same child: linked
        (linked,) = await wait_for(lambda: log.of("referral.linked"))
        body = cmd(case_id=case_id, referral_id=linked["referral_id"], reason="eri lapsi")
        undo = await call(nc, "cmd.referral.unlink.v2", body, token=sw)
        assert undo.ok, undo.errors
        (unlinked,) = await wait_for(lambda: log.of("referral.unlinked"))
        assert (unlinked["case_id"], unlinked["team_id"], unlinked["municipality"]) == (undo.id, OLD_TEAM, "Testilä")
        await wait_for(lambda: teams_everywhere(svcs, undo.id, {OLD_TEAM}))
        await wait_for(lambda: len(sent(settings, "w-old", "referral_assigned")) == 2)  # and told of the new case
        plans = await call(nc, "query.plans.case.v2", {"case_id": undo.id, "purpose": "case_work"}, token=sw)
        assert plans.ok or plans.errors[0].code == "not_found", plans.errors  # reached: the team's case there too


def plan_body(
    case_id: str, worker: str, *, family_language: str, elsewhere: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return cmd(
        case_id=case_id,
        changes_needed=["Aamut sujuvat"],
        actions_at_home=[{"what": "Kuvalukujärjestys", "who": "vanhempi"}],
        actions_elsewhere=elsewhere or [],
        worker_contacts_family="Puhelu maanantaisin",
        family_contacts_worker="Tekstiviesti arkisin",
        responsible_workers=[
            {
                "worker_id": worker,
                "organisation": "Perhetyö",
                "public_service": True,
                "contact": {"contact_id": worker, "role": "family_worker", "email": f"{worker}@testila.example"},
            }
        ],
        next_contact_at=(datetime.now(UTC) + timedelta(days=10)).replace(microsecond=0).isoformat(),
        family_contacts=[
            {"contact_id": "guardian-1", "role": "guardian", "language": family_language, "email": "huoltaja@example.com"}
        ],
    )


def professional(pid: str, **kw: Any) -> dict[str, Any]:
    return cmd(
        professional_id=pid,
        municipality="Testilä",
        roles=["family_worker"],
        languages=["fi", "sv"],
        unit="Perhetyö Testilä",
        team=OLD_TEAM,
        contact={"contact_id": pid, "role": "family_worker", "email": f"{pid}@testila.example", "phone": "+358401110077"},
        **kw,
    )


async def last_timer(nc: Any, subject: str) -> dict[str, Any]:
    msg = await nc.jetstream().get_last_msg(TIMERS, subject)
    return json.loads(msg.data)  # type: ignore[no-any-return]


async def test_a_deactivated_responsible_worker_hands_the_plan_over_moves_the_timers_and_the_family_hears_the_new_contact(  # type: ignore[no-untyped-def]
    settings, nc, clean_streams, staff_file, identity
):
    log = await EventLog().attach(nc, ("meeting.>", "plan.>", "notification.>"))
    worker = identity.worker("w-old", OLD_TEAM, "Testilä")
    lead = identity.team_lead("lead-old", OLD_TEAM, "Testilä")
    async with running(settings) as svcs:
        for pid in ("pw-leaving", "pw-next", "pw-third"):
            assert (await call(nc, "cmd.meetings.upsert_professional.v2", professional(pid), token=lead)).ok
        await submit_referral(nc, submission())
        await submit_referral(nc, submission())
        # Two families; the leaving worker is responsible for both plans (Swedish- and English-speaking).
        ids = await referral_case_ids(svcs["referral"])
        for cid in ids:
            await wait_for(lambda c=cid: teams_everywhere(svcs, c, {OLD_TEAM}))
        sv_plan = await call(nc, "cmd.plans.agree.v2", plan_body(ids[0], "pw-leaving", family_language="sv"), token=worker)
        en_plan = await call(nc, "cmd.plans.agree.v2", plan_body(ids[1], "pw-leaving", family_language="en"), token=worker)
        assert sv_plan.ok and en_plan.ok, (sv_plan.errors, en_plan.errors)
        for cid in ids:
            await wait_for(lambda c=cid: responsible_everywhere(svcs, c, "pw-leaving"))
        followup = f"timers.plans.followup.{sv_plan.id}"
        assert (await last_timer(nc, followup))["responsible_worker_ids"] == ["pw-leaving"]

        # A successor must be an active professional.
        bad = await call(
            nc, "cmd.meetings.upsert_professional.v2", professional("pw-leaving", active=False, successor_id="nobody"), token=lead
        )
        assert not bad.ok and (bad.errors[0].field, bad.errors[0].code) == ("successor_id", "unknown_successor")
        # The first family's worker leaves with a successor named: the handover completes at once.
        left = await call(
            nc,
            "cmd.meetings.upsert_professional.v2",
            professional("pw-leaving", active=False, successor_id="pw-next"),
            token=lead,
        )
        assert left.ok, left.errors
        deactivated = await wait_for(lambda: d if len(d := log.of("meeting.responsible_worker_deactivated")) == 2 else None)
        assert {d["case_id"] for d in deactivated} == set(ids)
        assert all(d["successor"]["worker_id"] == "pw-next" and d["recorded_by"] == "lead-old" for d in deactivated)
        handed = await wait_for(lambda: h if len(h := log.of("plan.handed_over")) == 2 else None)
        assert {h["plan_id"] for h in handed} == {sv_plan.id, en_plan.id}
        assert all(h["from_worker_id"] == "pw-leaving" and h["responsible_worker_ids"] == ["pw-next"] for h in handed)
        opened = log.of("plan.handover_opened")
        assert len(opened) == 2 and all(o["successor_named"] for o in opened)

        # The timers still to fire now name the new worker.
        await wait_for(lambda: _names(nc, followup, ["pw-next"]))
        for cid in ids:
            await wait_for(lambda c=cid: responsible_everywhere(svcs, c, "pw-next"))
        detail = await call(
            nc, "query.plans.plan.v2", {"case_id": ids[0], "plan_id": sv_plan.id, "purpose": "plan_follow_up"}, token=worker
        )
        assert detail.data is not None and detail.data["responsible_worker_ids"] == ["pw-next"]
        (h,) = detail.data["handovers"]
        assert (h["status"], h["from_worker_id"], h["to_worker_id"], h["completed_by"]) == (
            "completed",
            "pw-leaving",
            "pw-next",
            "lead-old",
        )

        # Each family is told its new contact, in its language; the new worker hears of it.
        def family_told() -> list[dict[str, Any]] | None:
            told = sent(settings, "guardian-1", "responsible_worker_changed")
            return told if len(told) == 2 else None

        told = {m["language"]: m for m in await wait_for(family_told)}
        assert told["sv"]["subject"] == "Ni har en ny ansvarig arbetstagare"
        assert told["en"]["subject"] == "You have a new responsible worker"
        assert "Perhetyö Testilä" in told["en"]["body"] and "pw-next@testila.example" in told["en"]["body"]
        received_by_new = await wait_for(lambda: m if len(m := sent(settings, "pw-next", "handover_received")) == 2 else None)
        assert received_by_new[0]["language"] == "fi"

        # Without a successor the handover stays open until the team names the new worker.
        gone = await call(nc, "cmd.meetings.upsert_professional.v2", professional("pw-next", active=False), token=lead)
        assert gone.ok, gone.errors
        pending = await wait_for(
            lambda: o if len(o := [x for x in log.of("plan.handover_opened") if not x["successor_named"]]) == 2 else None
        )
        (mine,) = [o for o in pending if o["plan_id"] == sv_plan.id]
        await wait_for(lambda: sent(settings, "lead-old", "handover_opened") or None)
        named = await call(
            nc,
            "cmd.plans.complete_handover.v1",
            cmd(
                case_id=ids[0],
                plan_id=sv_plan.id,
                handover_id=mine["handover_id"],
                responsible_worker={"worker_id": "pw-third", "organisation": "Perhetyö", "public_service": True},
            ),
            token=worker,
        )
        assert named.ok and named.data == {"responsible_worker_ids": ["pw-third"]}, named.errors
        twice = await call(
            nc,
            "cmd.plans.complete_handover.v1",
            cmd(
                case_id=ids[0],
                plan_id=sv_plan.id,
                handover_id=mine["handover_id"],
                responsible_worker={"worker_id": "pw-third", "organisation": "Perhetyö", "public_service": True},
            ),
            token=worker,
        )
        assert not twice.ok and twice.errors[0].code == "handover_completed"
        await wait_for(lambda: _names(nc, followup, ["pw-third"]))


async def referral_case_ids(svc: Service) -> list[str]:
    async def two() -> list[str] | None:
        async with svc.uow() as uow:
            found = await uow.referrals.open_cases()  # type: ignore[attr-defined]
        ids = sorted(str(c.case_id) for c in found)
        return ids if len(ids) == 2 else None

    return await wait_for(two)  # type: ignore[no-any-return]


async def _names(nc: Any, subject: str, workers: list[str]) -> bool:
    return (await last_timer(nc, subject)).get("responsible_worker_ids") == workers


async def test_an_onward_service_is_followed_to_its_start_and_a_late_start_is_told_to_the_worker_and_the_family(  # type: ignore[no-untyped-def]
    settings, nc, clean_streams, staff_file, identity
):
    log = await EventLog().attach(nc, ("plan.>", "notification.>"))
    worker = identity.worker("w-old", OLD_TEAM, "Testilä")
    today = helsinki_date(datetime.now(UTC))
    yesterday = today - timedelta(days=1)
    async with running(settings, "referral", "plans", "notifications") as svcs:
        await submit_referral(nc, submission())
        (case_id,) = await wait_for(lambda: _one_case(svcs["referral"]))
        await wait_for(lambda: teams_everywhere(svcs, case_id, {OLD_TEAM}))
        elsewhere = [
            {"what": "Perheneuvola", "who": "psykologi", "where": "Perheneuvola Testilä", "start_by": yesterday.isoformat()},
            {"what": "Kotipalvelu", "who": "kotipalvelu", "where": "Kotipalvelu Testilä"},
        ]
        plan = await call(
            nc, "cmd.plans.agree.v2", plan_body(case_id, "w-old", family_language="sv", elsewhere=elsewhere), token=worker
        )
        assert plan.ok, plan.errors
        read = {"case_id": case_id, "plan_id": plan.id, "purpose": "plan_follow_up"}

        # The agreed day has passed: the durable timer fires (never early) and both are told.
        (late,) = await wait_for(lambda: log.of("plan.service_start_overdue"))
        assert late["start_by"] == yesterday.isoformat() and late["responsible_worker_ids"] == ["w-old"]
        family = await wait_for(lambda: sent(settings, "guardian-1", "service_not_started"))
        assert family[0]["language"] == "sv" and family[0]["subject"] == "Den överenskomna tjänsten har inte börjat"
        assert "Perheneuvola" not in family[0]["body"]  # the service's name stays in the plan
        await wait_for(lambda: sent(settings, "w-old", "service_not_started"))

        async def services() -> list[dict[str, Any]]:
            detail = await call(nc, "query.plans.plan.v2", read, token=worker)
            assert detail.data is not None, detail.errors
            return detail.data["services"]  # type: ignore[no-any-return]

        first, second = await services()
        assert (first["status"], second["status"]) == ("planned", "planned")
        await wait_for(lambda: _overdue_marked(services))
        step = {"case_id": case_id, "plan_id": plan.id, "service_id": first["service_id"]}
        went = await call(
            nc, "cmd.plans.record_service_status.v1", cmd(**step, status="sent", on=yesterday.isoformat()), token=worker
        )
        assert went.ok and went.data == {"status": "sent", "start_by": yesterday.isoformat(), "days_late": None}, went.errors
        back = await call(nc, "cmd.plans.record_service_status.v1", cmd(**step, status="sent"), token=worker)
        assert not back.ok and back.errors[0].code == "service_step_back"
        future = await call(
            nc,
            "cmd.plans.record_service_status.v1",
            cmd(**step, status="started", on=(today + timedelta(days=1)).isoformat()),
            token=worker,
        )
        assert not future.ok and future.errors[0].code == "recorded_in_future"
        started = await call(nc, "cmd.plans.record_service_status.v1", cmd(**step, status="started"), token=worker)
        assert started.ok and started.data == {"status": "started", "start_by": yesterday.isoformat(), "days_late": 1}
        done = await call(nc, "cmd.plans.record_service_status.v1", cmd(**step, status="declined"), token=worker)
        assert not done.ok and done.errors[0].code == "service_closed"

        # The other service gets an agreed day when it accepts; declining it later cancels its timer.
        other = {"case_id": case_id, "plan_id": plan.id, "service_id": second["service_id"]}
        later = today + timedelta(days=30)
        accepted = await call(
            nc, "cmd.plans.record_service_status.v1", cmd(**other, status="accepted", start_by=later.isoformat()), token=worker
        )
        assert accepted.ok and accepted.data["start_by"] == later.isoformat()
        timer = f"timers.plans.service.{second['service_id']}"
        await wait_for(lambda: _timer_is_scheduled(nc, timer))
        assert (await call(nc, "cmd.plans.record_service_status.v1", cmd(**other, status="declined"), token=worker)).ok
        await wait_for(lambda: _not_scheduled(nc, timer))
        steps = await wait_for(lambda: s if len(s := log.of("plan.service_status_recorded")) == 4 else None)
        assert [(s["status"], s["previous_status"]) for s in steps] == [
            ("sent", "planned"),
            ("started", "sent"),
            ("accepted", "planned"),
            ("declined", "accepted"),
        ]
        assert steps[1]["days_late"] == 1 and all("what" not in s and "where" not in s for s in steps)


async def _one_case(svc: Service) -> list[str] | None:
    async with svc.uow() as uow:
        found = await uow.referrals.open_cases()  # type: ignore[attr-defined]
    return [str(c.case_id) for c in found] or None


async def _overdue_marked(services: Any) -> bool:
    first = (await services())[0]
    return bool(first.get("overdue_at"))


async def _timer_is_scheduled(nc: Any, subject: str) -> bool:
    try:
        msg = await nc.jetstream().get_last_msg(TIMERS, subject)
    except NotFoundError:  # not stored yet
        return False
    return "Nats-Schedule" in (msg.headers or {})


async def _not_scheduled(nc: Any, subject: str) -> bool:
    return not await _timer_is_scheduled(nc, subject)
