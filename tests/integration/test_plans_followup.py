"""Follow-up timers on a real nats-server (JetStream message schedules, a few seconds ahead):
reminder + due + overdue fire once; rescheduling moves them; revising moves them; closing cancels
them; they survive a NATS restart while the plans service runs. The close worker (on the case's
team, from referral.assigned) calls with a token; the team lead reads the team's overdue list."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import nats
import pytest

from infra.natsserver import EmbeddedNats, free_port
from services.plans.bootstrap import bootstrap
from services.plans.domain import FollowupPolicy
from shared.client import call
from shared.contracts.routes import event_type_of, routed_subject
from shared.messaging.streams import ensure_streams
from shared.service import Service
from shared.settings import Settings
from tests.conftest import wait_for
from tests.support.staff import MUNICIPALITY, TEAM, assign, relation_known
from tests.support.system import EventLog, fed

pytestmark = [pytest.mark.integration]


def now() -> datetime:
    return datetime.now(UTC)


def whole_second(seconds: float) -> datetime:
    """A time ``seconds`` ahead on a whole second (message schedules have second resolution)."""
    return (now() + timedelta(seconds=seconds)).replace(microsecond=0)


def plan_cmd(case_id: str, next_contact: datetime) -> dict[str, Any]:
    return {
        "command_id": str(uuid4()),
        "case_id": case_id,
        "changes_needed": ["Mornings run smoothly"],
        "actions_at_home": [{"what": "Picture schedule", "who": "parent"}],
        "worker_contacts_family": "Phone call on Mondays",
        "family_contacts_worker": "Text message on weekdays",
        "responsible_workers": [{"worker_id": "staff-close", "organisation": "City ECEC", "public_service": True}],
        "next_contact_at": next_contact.isoformat(),
        "family_contacts": [{"contact_id": "guardian-1", "role": "guardian", "language": "fi"}],
    }


@asynccontextmanager
async def plans_service(settings: Settings, policy: FollowupPolicy) -> AsyncIterator[Service]:
    svc = bootstrap(settings, None, policy=policy)
    await svc.start()
    try:
        yield svc
    finally:
        await svc.stop()


def of_plan(log: EventLog, subject: str, plan_id: str) -> list[dict[str, Any]]:
    return [e for e in log.of(subject) if e.get("plan_id") == plan_id]


async def new_case(nc: Any, svc: Service) -> str:
    """A case the referral service routed to the close worker's team, known to the plans service."""
    case_id = str(uuid4())
    await assign(nc, case_id, TEAM)
    await relation_known([svc], case_id)
    return case_id


DUE = routed_subject("followup.due.v2", MUNICIPALITY, TEAM)  # the case's route (assign)


def case_query(case_id: str) -> dict[str, Any]:
    return {"case_id": case_id, "purpose": "plan_follow_up"}


OVERDUE = {"purpose": "supervision"}


async def test_reminder_due_and_overdue_each_fire_once(staff_settings, nc, clean_streams, identity, worker_token):  # type: ignore[no-untyped-def]
    log = await EventLog().attach(nc)
    w, lead = worker_token, identity.team_lead("lead-1", TEAM)
    policy = FollowupPolicy(reminder_lead=timedelta(seconds=2), overdue_grace=timedelta(seconds=1))
    async with plans_service(staff_settings, policy) as svc:
        case_id = await new_case(nc, svc)
        due_at = whole_second(4)
        reply = await call(nc, "cmd.plans.agree.v2", plan_cmd(case_id, due_at), token=w)
        assert reply.ok, reply.errors
        plan_id = reply.id
        assert plan_id is not None
        shared = await wait_for(lambda: len(log.of("plan.shared")) >= 2 and log.of("plan.shared"))
        assert sorted((e["recipient_id"], e["basis"]) for e in shared) == [
            ("guardian-1", "family"),
            ("staff-close", "responsible_worker"),
        ]

        reminder = await wait_for(lambda: of_plan(log, "followup.reminder_due", plan_id), timeout=10)
        overdue = await wait_for(lambda: of_plan(log, "followup.overdue", plan_id), timeout=10)
        # The reminder comes before the due time: in the stream's order, not by when this test looked.
        fired = [event_type_of(s) for s, e in log.events if s.startswith("followup.") and e.get("plan_id") == plan_id]
        assert fired.index("followup.reminder_due") < fired.index("followup.due") < fired.index("followup.overdue")
        due = of_plan(log, "followup.due", plan_id)
        assert datetime.fromisoformat(due[0]["due_at"]) == due_at
        assert datetime.fromisoformat(overdue[0]["due_at"]) == due_at and overdue[0]["responsible_worker_ids"] == ["staff-close"]

        team = await call(nc, "query.plans.overdue.v2", OVERDUE, token=lead)
        assert [o["plan_id"] for o in team.data["overdue"]] == [plan_id]  # type: ignore[index]
        case = await call(nc, "query.plans.case.v2", case_query(due[0]["case_id"]), token=w)
        assert case.data["plans"][0]["followup_due_fired_at"] and case.data["plans"][0]["overdue"]  # type: ignore[index]

        await asyncio.sleep(1.5)  # nothing more arrives
        assert [len(x) for x in (reminder, of_plan(log, "followup.due", plan_id), of_plan(log, "followup.overdue", plan_id))] == [
            1,
            1,
            1,
        ]

        # Recording the follow-up opens the next round (new timers) and clears the overdue list.
        nxt = whole_second(60)
        rec = await call(
            nc,
            "cmd.plans.record_followup.v2",
            {
                "command_id": str(uuid4()),
                "case_id": case_id,
                "plan_id": plan_id,
                "what_happened": "Phoned.",
                "wellbeing_scores": {"child_self_view": 6},
                "next_contact_at": nxt.isoformat(),
            },
            token=w,
        )
        assert rec.ok, rec.errors
        recorded = await wait_for(lambda: of_plan(log, "followup.recorded", plan_id))
        assert datetime.fromisoformat(recorded[0]["next_contact_at"]) == nxt
        assert recorded[0]["recorded_by"] == "staff-close"
        team = await call(nc, "query.plans.overdue.v2", OVERDUE, token=lead)
        assert team.data["overdue"] == []  # type: ignore[index]


async def test_rescheduling_and_revising_move_the_timer_and_closing_cancels_it(staff_settings, nc, clean_streams, worker_token):  # type: ignore[no-untyped-def]
    log = await EventLog().attach(nc)
    w = worker_token
    policy = FollowupPolicy(reminder_lead=timedelta(0), overdue_grace=timedelta(hours=1))
    async with plans_service(staff_settings, policy) as svc:
        cases = [await new_case(nc, svc) for _ in range(3)]
        first = whole_second(4)
        ids = []
        for case_id in cases:
            r = await call(nc, "cmd.plans.agree.v2", plan_cmd(case_id, first), token=w)
            assert r.ok, r.errors
            ids.append(r.id)
        moved, revised, closed = ids
        later = whole_second(7)
        r = await call(
            nc,
            "cmd.plans.reschedule_followup.v2",
            {"command_id": str(uuid4()), "case_id": cases[0], "plan_id": moved, "next_contact_at": later.isoformat()},
            token=w,
        )
        assert r.ok, r.errors
        r = await call(
            nc, "cmd.plans.revise.v2", {**plan_cmd(cases[1], later), "plan_id": revised, "expected_version": 1}, token=w
        )
        assert r.ok and r.data == {"version": 2}
        r = await call(
            nc,
            "cmd.plans.close.v2",
            {"command_id": str(uuid4()), "case_id": cases[2], "plan_id": closed, "outcome": "family_ended"},
            token=w,
        )
        assert r.ok, r.errors
        assert of_plan(log, "followup.rescheduled", moved) or await wait_for(lambda: of_plan(log, "followup.rescheduled", moved))

        await asyncio.sleep(max(0.0, (first - now()).total_seconds()) + 1.5)
        assert log.of("followup.due") == [], "nothing fires at the old time"
        await wait_for(lambda: len(log.of("followup.due")) >= 2, timeout=10)
        await asyncio.sleep(1.5)
        due = log.of("followup.due")
        assert sorted(e["plan_id"] for e in due) == sorted([moved, revised]), "once each; the closed plan's timer is gone"
        assert {e["plan_id"]: e["plan_version"] for e in due} == {moved: 1, revised: 2}
        assert all(datetime.fromisoformat(e["due_at"]) == later for e in due)


async def test_followup_timer_survives_a_nats_restart_while_the_service_runs(tmp_path, identity, worker_token):  # type: ignore[no-untyped-def]
    server = EmbeddedNats(tmp_path / "nats", free_port()).start()
    base = Settings(
        nats_url=server.url,
        data_dir=tmp_path,
        ack_wait_seconds=2.0,
        retry_delays=(0.2, 0.4, 0.8),
        max_deliver=4,
        outbox_poll_seconds=0.2,
    )
    settings = identity.settings(base)
    nc = await nats.connect(server.url, max_reconnect_attempts=-1, reconnect_time_wait=0.2)
    js = nc.jetstream()
    await ensure_streams(js)
    try:
        async with plans_service(settings, FollowupPolicy(reminder_lead=timedelta(0), overdue_grace=timedelta(hours=1))) as svc:
            case_id = await new_case(nc, svc)
            reply = await call(nc, "cmd.plans.agree.v2", plan_cmd(case_id, whole_second(5)), token=worker_token)
            assert reply.ok, reply.errors
            await wait_for(lambda: svc.relay is not None and svc.relay.published >= 2)  # plan.agreed + schedules stored

            server.stop()
            await asyncio.sleep(0.5)
            server.start()  # same store: the schedule is durable

            async def fired() -> bool:
                try:
                    r = await call(nc, "query.plans.case.v2", case_query(case_id), timeout=1, token=worker_token)
                except TimeoutError:
                    return False
                return bool(r.ok and r.data and r.data["plans"][0]["followup_due_fired_at"])

            await wait_for(fired, timeout=20, interval=0.3)
            await asyncio.sleep(1.5)
            info = await js.stream_info("PLANS", subjects_filter="followup.due.v2.>")
            assert info.state.subjects == {DUE: 1}, "fired exactly once"
            consumer = fed(svc, subject="followup.due.v2.>")
            assert consumer.handled == 1
    finally:
        await nc.close()
        server.stop()


async def test_a_timer_that_fires_while_the_service_is_down_is_handled_once_after_restart(
    staff_settings, nc, clean_streams, worker_token
):  # type: ignore[no-untyped-def]
    log = await EventLog().attach(nc)
    policy = FollowupPolicy(reminder_lead=timedelta(0), overdue_grace=timedelta(hours=1))
    async with plans_service(staff_settings, policy) as svc:
        case_id = await new_case(nc, svc)
        reply = await call(nc, "cmd.plans.agree.v2", plan_cmd(case_id, whole_second(3)), token=worker_token)
        assert reply.ok, reply.errors
        await wait_for(lambda: svc.relay is not None and svc.relay.published >= 3)  # plan.agreed + due + grace schedules
    # The service is down when the follow-up falls due: JetStream still fires the schedule and keeps
    # the fired timer; the service emits followup.due once it is back.
    js = nc.jetstream()

    async def timer_fired() -> bool:
        try:
            await js.get_last_msg("TIMERS_PLANS", "timers.plans.fired")
        except nats.js.errors.NotFoundError:
            return False
        return True

    await wait_for(timer_fired, timeout=10, interval=0.2)
    assert not of_plan(log, "followup.due", reply.id)  # type: ignore[arg-type]
    async with plans_service(staff_settings, policy) as svc:

        async def fired() -> bool:
            r = await call(nc, "query.plans.case.v2", case_query(case_id), token=worker_token)
            return bool(r.ok and r.data and r.data["plans"][0]["followup_due_fired_at"])

        await wait_for(fired, timeout=10, interval=0.2)
        consumer = fed(svc, subject="followup.due.v2.>")
        assert consumer.handled == 1 and consumer.duplicates == 0
    assert len(of_plan(log, "followup.due", reply.id)) == 1  # type: ignore[arg-type]


async def test_followup_due_is_never_stored_before_its_due_time_and_says_when_it_fired(  # type: ignore[no-untyped-def]
    staff_settings, nc, clean_streams, worker_token
):
    # A due time just short of the next whole second: a schedule's @at has whole seconds, and rounding
    # down had the event stored up to 0.9 s early.
    policy = FollowupPolicy(reminder_lead=timedelta(0), overdue_grace=timedelta(hours=1))
    js = nc.jetstream()
    async with plans_service(staff_settings, policy) as svc:
        case_id = await new_case(nc, svc)
        due_at = whole_second(2) + timedelta(milliseconds=900)
        reply = await call(nc, "cmd.plans.agree.v2", plan_cmd(case_id, due_at), token=worker_token)
        assert reply.ok, reply.errors

        async def stored() -> Any:
            try:
                return await js.get_last_msg("PLANS", DUE)
            except nats.js.errors.NotFoundError:
                return None

        await wait_for(stored, timeout=10, interval=0.1)
        msg = await stored()
    event = json.loads(msg.data)
    assert event["plan_id"] == reply.id
    occurred_at = datetime.fromisoformat(event["occurred_at"])
    assert datetime.fromisoformat(event["due_at"]) == due_at
    assert msg.time >= due_at, "stored before it was due"
    assert due_at <= occurred_at <= msg.time, "occurred_at is when the timer fired"
