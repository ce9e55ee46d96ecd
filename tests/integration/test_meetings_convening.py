"""Convening on a real nats-server: consent gating from the referral service's events, the referrer
at the first assessment meeting, proposals, RSVP with substitutes, no double booking under concurrent
requests (SQLite and PostgreSQL), the meeting held and statistics. Staff call with tokens: a worker
of the team the routing assigns the case to (published here as the referral service would)."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from uuid import uuid4

import asyncpg
import pytest

from infra.ops import rebuild_and_store
from services.meetings.projections import MeetingStatisticsRebuild
from shared.client import call
from shared.clock import HELSINKI, FixedClock
from shared.contracts.plans import FollowupMeetingRequested
from shared.contracts.referral import AssessmentStarted, ConsentGiven, ConsentWithdrawn, ReferralReceived
from tests.conftest import POSTGRES_URL, postgres_reachable, wait_for
from tests.support.staff import CHILD_WELFARE_TEAM, publish, relation_known, team_of
from tests.support.system import EventLog, running

pytestmark = [pytest.mark.integration]

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)  # a Friday; the next working day is Mon 23.11.


def received(statutory: bool = False, consent: bool = False, **kw) -> ReferralReceived:  # type: ignore[no-untyped-def]
    body = dict(
        producer="referral",
        case_id=uuid4(),
        referral_id=uuid4(),
        submission_id=f"s-{uuid4().hex[:6]}",
        channel="child_protection_notification" if statutory else "concern_with_family",
        municipality="Testilä",
        received_at=NOW - timedelta(days=1),
        language="fi",
        interpreter_needed=False,
        urgent=False,
        statutory=statutory,
        child_count=1,
        consent_to_convene=consent,
        referrer_type="early_childhood_education",
        decision_due_by=date(2026, 11, 30) if statutory else None,
        contacts=[
            {"contact_id": "guardian-1", "role": "guardian", "email": "g1@example.com"},
            {"contact_id": "referrer", "role": "referrer", "email": "ref@example.com"},
        ],
    )
    body.update(kw)
    return ReferralReceived(**body)


async def publish_case(nc, ev: ReferralReceived) -> None:  # type: ignore[no-untyped-def]
    """The referral service's event of a new case: received, with the routing's team in it."""
    await publish(nc, ev.model_copy(update={"team_id": ev.team_id or team_of(ev.municipality, ev.channel)}))


def convene_cmd(case_id, starts: datetime, pros=(("staff-psy", "psychologist"),), room="Room 1") -> dict:  # type: ignore[no-untyped-def]
    return {
        "command_id": str(uuid4()),
        "case_id": str(case_id),
        "starts_at": starts.isoformat(),
        "ends_at": (starts + timedelta(hours=1)).isoformat(),
        "room": room,
        "participants": [{"participant_id": "guardian-1", "kind": "family", "role": "guardian"}]
        + [{"participant_id": p, "kind": "professional", "role": r} for p, r in pros],
    }


def case_query(case_id) -> dict:  # type: ignore[no-untyped-def]
    return {"case_id": str(case_id), "purpose": "meeting_preparation"}


async def opened(nc, case_id, token: str) -> None:  # type: ignore[no-untyped-def]
    """Wait until the meetings service knows the case and the token's worker reaches it."""

    async def ok():  # type: ignore[no-untyped-def]
        return (await call(nc, "query.meetings.case.v2", case_query(case_id), token=token)).ok

    await wait_for(ok)


def codes(reply) -> list[str]:  # type: ignore[no-untyped-def]
    return [e.code for e in reply.errors]


MON9 = datetime(2026, 11, 23, 9, 0, tzinfo=HELSINKI)


async def test_consent_gates_convening_and_withdrawal_cancels(staff_settings, nc, clean_streams, worker_token):  # type: ignore[no-untyped-def]
    log = await EventLog().attach(nc)
    w = worker_token
    async with running(staff_settings, "meetings", clock=FixedClock(NOW)):
        ev = received(consent=False)
        await publish_case(nc, ev)
        await opened(nc, ev.case_id, w)
        refused = await call(nc, "cmd.meetings.convene.v2", convene_cmd(ev.case_id, MON9), token=w)
        assert codes(refused) == ["consent_missing"]
        proposal = await call(
            nc,
            "cmd.meetings.propose.v2",
            {"command_id": str(uuid4()), "case_id": str(ev.case_id), "roles": ["psychologist"]},
            token=w,
        )
        assert codes(proposal) == ["consent_missing"]

        given = ConsentGiven(
            producer="referral",
            case_id=ev.case_id,
            consent_id=uuid4(),
            purpose="convene_team",
            given_by="guardian-1",
            recorded_by="staff-close",
        )
        await publish(nc, given)

        async def convened():  # type: ignore[no-untyped-def]
            r = await call(nc, "cmd.meetings.convene.v2", convene_cmd(ev.case_id, MON9), token=w)
            return r if r.ok else None

        reply = await wait_for(convened)
        meeting_id = reply.id

        await publish(
            nc,
            ConsentWithdrawn(
                producer="referral",
                case_id=ev.case_id,
                consent_id=given.consent_id,
                purpose="convene_team",
                withdrawn_by="guardian-1",
                recorded_by="staff-close",
            ),
        )
        cancelled = await wait_for(lambda: log.of("meeting.cancelled"))
        assert cancelled[0]["meeting_id"] == meeting_id and cancelled[0]["reason"] == "consent_withdrawn"
        again = await call(nc, "cmd.meetings.convene.v2", convene_cmd(ev.case_id, MON9 + timedelta(hours=2)), token=w)
        assert codes(again) == ["consent_missing"]
        # the cancelled meeting's people and room are free again
        other = received(consent=True)
        await publish_case(nc, other)
        await opened(nc, other.case_id, w)
        assert (await call(nc, "cmd.meetings.convene.v2", convene_cmd(other.case_id, MON9), token=w)).ok


async def test_statutory_case_and_the_referrer_at_the_first_assessment_meeting(staff_settings, nc, clean_streams, identity):  # type: ignore[no-untyped-def]
    log = await EventLog().attach(nc, ("meeting.>",))
    sw = identity.social_worker("staff-1", CHILD_WELFARE_TEAM)  # a child protection notification goes to child welfare
    async with running(staff_settings, "meetings", clock=FixedClock(NOW)):
        ev = received(statutory=True, consent=False)  # child protection: no consent needed to convene
        await publish_case(nc, ev)
        await opened(nc, ev.case_id, sw)
        await publish(
            nc,
            AssessmentStarted(
                producer="referral",
                case_id=ev.case_id,
                started_on=date(2026, 11, 20),
                complete_by=date(2027, 2, 19),
                social_worker_id="staff-1",
            ),
        )
        # without invite_referrer consent the referrer may not be invited
        with_ref = convene_cmd(ev.case_id, MON9)
        with_ref["participants"].append({"participant_id": "referrer", "kind": "referrer", "role": "referrer"})

        async def refused_for_referrer():  # type: ignore[no-untyped-def]
            q = await call(nc, "query.meetings.case.v2", case_query(ev.case_id), token=sw)
            return q.data["convening"]["assessment_started_on"] is not None

        await wait_for(refused_for_referrer)
        assert codes(await call(nc, "cmd.meetings.convene.v2", with_ref, token=sw)) == ["referrer_consent_missing"]

        invite = ConsentGiven(
            producer="referral",
            case_id=ev.case_id,
            consent_id=uuid4(),
            purpose="invite_referrer",
            recipient="referrer",
            given_by="guardian-1",
            recorded_by="staff-1",
        )
        await publish(nc, invite)

        async def consent_seen():  # type: ignore[no-untyped-def]
            q = await call(nc, "query.meetings.case.v2", case_query(ev.case_id), token=sw)
            return q.data["convening"]["invite_referrer"]

        await wait_for(consent_seen)
        first = await call(
            nc, "cmd.meetings.convene.v2", convene_cmd(ev.case_id, MON9, pros=[("staff-1", "social_worker")]), token=sw
        )
        assert first.ok, first.errors
        second = await call(
            nc,
            "cmd.meetings.convene.v2",
            convene_cmd(ev.case_id, MON9 + timedelta(days=7), pros=[("staff-1", "social_worker")]),
            token=sw,
        )
        assert second.ok
        events = await wait_for(lambda: len(log.of("meeting.convened")) == 2 and log.of("meeting.convened"))
        by_id = {e["meeting_id"]: e for e in events}
        f, s = by_id[first.id], by_id[second.id]
        assert f["first_assessment_meeting"] and "referrer" in {p["participant_id"] for p in f["participants"]}
        assert not s["first_assessment_meeting"] and "referrer" not in {p["participant_id"] for p in s["participants"]}
        assert f["municipality"] == "Testilä"
        # the family withdraws the consent to invite the referrer: the referrer is taken off the meeting
        await publish(
            nc,
            ConsentWithdrawn(
                producer="referral",
                case_id=ev.case_id,
                consent_id=invite.consent_id,
                purpose="invite_referrer",
                withdrawn_by="guardian-1",
                recorded_by="staff-1",
            ),
        )
        changed = (await wait_for(lambda: log.of("meeting.rescheduled")))[0]
        assert changed["meeting_id"] == first.id and changed["reason"] == "referrer_consent_withdrawn"
        assert "referrer" not in {p["participant_id"] for p in changed["participants"]} and changed["sequence"] == 1
        assert not log.of("meeting.cancelled")  # statutory work goes on


async def test_propose_accept_rsvp_substitute_held_and_statistics(staff_settings, nc, clean_streams, identity, worker_token):  # type: ignore[no-untyped-def]
    log = await EventLog().attach(nc, ("meeting.>",))
    clock = FixedClock(NOW)
    w = worker_token  # the close worker, on the case's team
    async with running(staff_settings, "meetings", clock=clock) as svcs:
        ev = received(consent=True)
        await publish_case(nc, ev)
        await opened(nc, ev.case_id, w)
        # a second psychologist, added by a team lead (who keeps the roster), can stand in
        upsert = {
            "command_id": str(uuid4()),
            "professional_id": "staff-psy-2",
            "municipality": "Testilä",
            "roles": ["psychologist"],
            "languages": ["fi"],
            "unit": "Testilän perheneuvola",
            "team": "perhekeskus-testila",
            "working_hours": [{"day": d, "start": "08:00", "end": "16:00"} for d in ("mon", "tue", "wed", "thu", "fri")],
        }
        assert codes(await call(nc, "cmd.meetings.upsert_professional.v2", upsert, token=w)) == ["forbidden"]
        up = await call(nc, "cmd.meetings.upsert_professional.v2", upsert, token=identity.team_lead("lead-1", team_of()))
        assert up.ok, up.errors
        roster = await call(nc, "query.meetings.roster.v2", {"municipality": "Testilä"}, token=w)
        assert "staff-psy-2" in {p["professional_id"] for p in roster.data["professionals"]}

        p = await call(
            nc,
            "cmd.meetings.propose.v2",
            {
                "command_id": str(uuid4()),
                "case_id": str(ev.case_id),
                "roles": ["psychologist", "family_worker"],
                "family_availability": [{"starts_at": "2026-11-24T12:00:00+02:00", "ends_at": "2026-11-24T15:00:00+02:00"}],
            },
            token=w,
        )
        assert p.ok, p.errors
        assert p.data["starts_at"] == datetime(2026, 11, 24, 10, 0, tzinfo=UTC).isoformat()
        assigned = {a["role"]: a["professional_id"] for a in p.data["assignments"]}
        # the requester (the token's worker) is in the proposal as the close worker
        assert assigned == {"close_worker": "staff-close", "psychologist": "staff-psy", "family_worker": "staff-fw"}
        case = str(ev.case_id)
        accepted = await call(
            nc, "cmd.meetings.accept_proposal.v2", {"command_id": str(uuid4()), "case_id": case, "proposal_id": p.id}, token=w
        )
        assert accepted.ok, accepted.errors
        meeting_id = accepted.id
        closed = await call(
            nc, "cmd.meetings.accept_proposal.v2", {"command_id": str(uuid4()), "case_id": case, "proposal_id": p.id}, token=w
        )
        assert codes(closed) == ["proposal_closed"]

        # RSVP: the family accepts, the psychologist declines -> substitute proposal -> accepted
        def respond(participant: str, answer: str) -> dict:  # type: ignore[type-arg]
            return {
                "command_id": str(uuid4()),
                "case_id": case,
                "meeting_id": meeting_id,
                "participant_id": participant,
                "answer": answer,
            }

        ok = await call(nc, "cmd.meetings.respond.v2", respond("guardian-1", "accepted"), token=w)
        assert ok.ok
        no = await call(nc, "cmd.meetings.respond.v2", respond("staff-psy", "declined"), token=w)
        assert no.ok and no.data["kind"] == "substitute" and no.data["substitute"] == "staff-psy-2"
        sub = await call(
            nc,
            "cmd.meetings.accept_proposal.v2",
            {"command_id": str(uuid4()), "case_id": case, "proposal_id": no.data["proposal_id"]},
            token=w,
        )
        assert sub.ok, sub.errors
        stranger = await call(nc, "cmd.meetings.respond.v2", respond("staff-psy", "accepted"), token=w)
        assert codes(stranger) == ["unknown_participant"]
        resched = await wait_for(lambda: log.of("meeting.rescheduled"))
        assert resched[0]["reason"] == "substitute" and resched[0]["sequence"] == 1
        assert "staff-psy-2" in {x["participant_id"] for x in resched[0]["participants"]}
        answers = await wait_for(
            lambda: len(log.of("meeting.response_recorded.v2")) == 2 and log.of("meeting.response_recorded.v2")
        )
        assert {(a["participant_id"], a["answer"]) for a in answers} == {
            ("guardian-1", "accepted"),
            ("staff-psy", "declined"),
        }
        assert not log.of("meeting.response_recorded.v1")  # retired: v2 on routed subjects replaces it

        # the meeting held
        clock.at = datetime(2026, 11, 24, 11, 5, tzinfo=UTC)
        held = await call(
            nc,
            "cmd.meetings.record_held.v2",
            {
                "command_id": str(uuid4()),
                "case_id": case,
                "meeting_id": meeting_id,
                "attendance": [
                    {"participant_id": x, "present": True} for x in ("guardian-1", "staff-close", "staff-psy-2", "staff-fw")
                ],
                "child_heard": True,
                "responsible_worker_ids": ["staff-fw"],
                "wellbeing": [
                    {"area": "child_self_view", "score": 4, "note": "Lapsi kertoi itse."},
                    {"area": "parenting_relationship_with_child", "score": 7},
                ],
                "feedback": {"rating": 5, "comment": "Kaikki samassa pöydässä."},
            },
            token=w,
        )
        assert held.ok, held.errors
        ev_held = (await wait_for(lambda: log.of("meeting.held")))[0]
        assert ev_held["wellbeing_scores"] == {"child_self_view": 4, "parenting_relationship_with_child": 7}
        assert ev_held["municipality"] == "Testilä" and "Lapsi kertoi" not in str(log.events)

        stats = identity.statistician()  # aggregates: the statistician's own role

        async def counted():  # type: ignore[no-untyped-def]
            # The statistics read model follows the events a moment later.
            r = await call(nc, "query.meetings.statistics.v2", {"municipality": "Testilä"}, token=stats)
            return r if r.ok and r.data["meetings_held"] == 1 else None

        st = await wait_for(counted)
        assert {r["unit"] for r in st.data["per_unit_month"]} == {
            "Testilän varhaiskasvatus",
            "Testilän perheneuvola",
            "Testilän perhetyö",
        }
        assert st.data["separate_meetings_avoided"] == 2
        csv = await call(nc, "query.meetings.statistics.v2", {"format": "csv"}, token=stats)
        assert "unit_meetings,Testilä,2026-11,Testilän perhetyö,1" in csv.data["csv"]
        # Rebuilt from the streams, the read model equals the live one; stored in the meetings
        # database in place of the live rows (as `infra.ops rebuild meeting-statistics` does), the
        # same query answers the same.
        async with svcs["meetings"].uow() as uow:
            live = await uow.meetings.all_statistics_facts("meetings")  # type: ignore[attr-defined]
        built = await MeetingStatisticsRebuild.rebuild(nc.jetstream())
        assert built.model.facts == live and built.unreadable == 0
        async with svcs["meetings"].uow() as uow:
            await uow.meetings.replace_statistics_facts({}, "meetings")  # type: ignore[attr-defined]
            await uow.commit()
        empty = await call(nc, "query.meetings.statistics.v2", {"municipality": "Testilä"}, token=stats)
        assert empty.data["meetings_held"] == 0
        assert (await rebuild_and_store("meeting-statistics", nc, staff_settings)).model.facts == live
        again = await call(nc, "query.meetings.statistics.v2", {"municipality": "Testilä"}, token=stats)
        assert again.data == st.data

        # a follow-up meeting asked from a plan opens a proposal the staff can accept
        await publish(
            nc,
            FollowupMeetingRequested(
                producer="plans",
                case_id=ev.case_id,
                plan_id=uuid4(),
                plan_version=1,
                requested_by="staff-fw",
                roles_needed=["psychologist"],
            ),
        )

        async def followup_proposal():  # type: ignore[no-untyped-def]
            q = await call(nc, "query.meetings.case.v2", case_query(ev.case_id), token=w)
            return [x for x in q.data["proposals"] if (x["source"] or "").startswith("followup:")]

        fp = (await wait_for(followup_proposal))[0]
        assert fp["status"] == "open" and {a["professional_id"] for a in fp["proposal"]["assignments"]} >= {"staff-fw"}
        # the family worker, on another team, reaches the case as its responsible worker (from meeting.held)
        await relation_known([svcs["meetings"]], ev.case_id, "responsible")
        fw = identity.worker("staff-fw", "testila-family-work")
        fa = await call(
            nc,
            "cmd.meetings.accept_proposal.v2",
            {"command_id": str(uuid4()), "case_id": case, "proposal_id": fp["proposal_id"]},
            token=fw,
        )
        assert fa.ok, fa.errors


async def test_clear_refusals(staff_settings, nc, clean_streams, identity, worker_token):  # type: ignore[no-untyped-def]
    w = worker_token
    async with running(staff_settings, "meetings", clock=FixedClock(NOW)):
        ev = received(consent=True)
        await publish_case(nc, ev)
        await opened(nc, ev.case_id, w)
        past = await call(nc, "cmd.meetings.convene.v2", convene_cmd(ev.case_id, NOW - timedelta(hours=1)), token=w)
        assert codes(past) == ["in_past"] and past.errors[0].message["fi"]
        no_family = convene_cmd(ev.case_id, MON9)
        no_family["participants"] = no_family["participants"][1:]
        assert codes(await call(nc, "cmd.meetings.convene.v2", no_family, token=w)) == ["family_missing"]
        assert codes(
            await call(
                nc,
                "cmd.meetings.convene.v2",
                convene_cmd(ev.case_id, MON9, pros=[("staff-nobody", "psychologist")]),
                token=w,
            )
        ) == ["unknown_participant"]
        assert codes(
            await call(nc, "cmd.meetings.convene.v2", convene_cmd(ev.case_id, MON9, room="Broom cupboard"), token=w)
        ) == ["unknown_room"]
        no_slot = await call(
            nc,
            "cmd.meetings.propose.v2",
            {"command_id": str(uuid4()), "case_id": str(ev.case_id), "roles": ["astrologer"]},
            token=w,
        )
        assert codes(no_slot) == ["unknown_role"]
        statutory = received(statutory=True)  # deadline 30.11.: only weekend availability -> no slot before it
        sw = identity.social_worker("staff-1", CHILD_WELFARE_TEAM)
        await publish_case(nc, statutory)
        await opened(nc, statutory.case_id, sw)
        r = await call(
            nc,
            "cmd.meetings.propose.v2",
            {
                "command_id": str(uuid4()),
                "case_id": str(statutory.case_id),
                "roles": ["psychologist"],
                "family_availability": [
                    {"starts_at": "2026-11-28T10:00:00+02:00", "ends_at": "2026-11-28T12:00:00+02:00"},
                    {"starts_at": "2026-12-01T10:00:00+02:00", "ends_at": "2026-12-01T12:00:00+02:00"},
                ],
            },
            token=sw,
        )
        assert codes(r) == ["no_slot_before_deadline"]
        assert r.data["earliest_after_deadline"]["starts_at"] == datetime(2026, 12, 1, 8, 0, tzinfo=UTC).isoformat()


async def _concurrent_convenings(nc, case_id, token: str) -> None:  # type: ignore[no-untyped-def]
    # 12 requests at once for the same psychologist at overlapping times, in different rooms...
    same_person = [convene_cmd(case_id, MON9 + timedelta(minutes=5 * i), room=("Room 1", "Room 2")[i % 2]) for i in range(12)]
    # ...and 12 for the same room with different people
    pros = ["staff-fw", "staff-hh", "staff-fc", "staff-sc", "staff-nurse", "staff-ssw", "staff-1", "staff-close"]
    same_room = [
        convene_cmd(case_id, MON9 + timedelta(days=1, minutes=5 * i), pros=[(pros[i % len(pros)], "x")]) for i in range(12)
    ]
    replies = await asyncio.gather(
        *(call(nc, "cmd.meetings.convene.v2", c, timeout=20, token=token) for c in same_person + same_room)
    )
    a, b = replies[:12], replies[12:]
    assert sum(r.ok for r in a) == 1 and all(codes(r) == ["double_booked"] for r in a if not r.ok)
    assert sum(r.ok for r in b) == 1 and all(codes(r) == ["double_booked"] for r in b if not r.ok)


async def test_no_double_booking_under_concurrent_requests(staff_settings, nc, clean_streams, worker_token):  # type: ignore[no-untyped-def]
    async with running(staff_settings, "meetings", clock=FixedClock(NOW)):
        ev = received(consent=True)
        await publish_case(nc, ev)
        await opened(nc, ev.case_id, worker_token)
        await _concurrent_convenings(nc, ev.case_id, worker_token)


@pytest.mark.postgres
@pytest.mark.skipif(not postgres_reachable(), reason="no PostgreSQL at 127.0.0.1:5432")
async def test_no_double_booking_under_concurrent_requests_on_postgres(staff_settings, nc, clean_streams, worker_token):  # type: ignore[no-untyped-def]
    raw = POSTGRES_URL.replace("+asyncpg", "")
    admin = await asyncpg.connect(raw)
    name = f"koolle_t_{uuid4().hex[:10]}_meetings"
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        pg = staff_settings.model_copy(update={"meetings_database_url": f"{POSTGRES_URL.rsplit('/', 1)[0]}/{name}"})
        async with running(pg, "meetings", clock=FixedClock(NOW)) as svcs:
            assert svcs["meetings"].db.engine.dialect.name == "postgresql"
            ev = received(consent=True)
            await publish_case(nc, ev)
            await opened(nc, ev.case_id, worker_token)
            await _concurrent_convenings(nc, ev.case_id, worker_token)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def _racing_transactions(svc, case_id, monkeypatch, token: str) -> None:  # type: ignore[no-untyped-def]
    """Transactions side by side, past the request subscriber (which takes one request at a time):
    first as they come, then with the overlap check blinded so that only the database's own guard
    (one row per booked 5-minute cell, unique per resource) stands between them and a double booking."""
    import json

    from services.meetings.adapters import MeetingRepository

    subject = "cmd.meetings.convene.v2"
    model, handler = svc.handlers[subject]

    async def race(cmds):  # type: ignore[no-untyped-def]
        return await asyncio.gather(
            *(svc._call(subject, model, handler, json.dumps(c).encode(), f"Bearer {token}") for c in cmds)
        )

    replies = await race(
        [convene_cmd(case_id, MON9 + timedelta(days=2, minutes=5 * i), room=("Room 1", "Room 2")[i % 2]) for i in range(8)]
    )
    assert sum(r.ok for r in replies) == 1 and all(codes(r) == ["double_booked"] for r in replies if not r.ok)

    async def blind(self, resources, starts_at, ends_at):  # type: ignore[no-untyped-def]
        return set()

    monkeypatch.setattr(MeetingRepository, "busy_resources", blind)
    replies = await race(
        [convene_cmd(case_id, MON9 + timedelta(days=3, minutes=5 * i), room=("Room 1", "Room 2")[i % 2]) for i in range(8)]
    )
    assert sum(r.ok for r in replies) == 1 and all(codes(r) == ["double_booked"] for r in replies if not r.ok)


async def test_database_guard_stops_racing_transactions(staff_settings, nc, clean_streams, monkeypatch, worker_token):  # type: ignore[no-untyped-def]
    async with running(staff_settings, "meetings", clock=FixedClock(NOW)) as svcs:
        ev = received(consent=True)
        await publish_case(nc, ev)
        await opened(nc, ev.case_id, worker_token)
        await _racing_transactions(svcs["meetings"], ev.case_id, monkeypatch, worker_token)


@pytest.mark.postgres
@pytest.mark.skipif(not postgres_reachable(), reason="no PostgreSQL at 127.0.0.1:5432")
async def test_database_guard_stops_racing_transactions_on_postgres(staff_settings, nc, clean_streams, monkeypatch, worker_token):  # type: ignore[no-untyped-def]
    raw = POSTGRES_URL.replace("+asyncpg", "")
    admin = await asyncpg.connect(raw)
    name = f"koolle_t_{uuid4().hex[:10]}_meetings"
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        pg = staff_settings.model_copy(update={"meetings_database_url": f"{POSTGRES_URL.rsplit('/', 1)[0]}/{name}"})
        async with running(pg, "meetings", clock=FixedClock(NOW)) as svcs:
            ev = received(consent=True)
            await publish_case(nc, ev)
            await opened(nc, ev.case_id, worker_token)
            await _racing_transactions(svcs["meetings"], ev.case_id, monkeypatch, worker_token)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def test_family_decline_gets_a_new_slot(staff_settings, nc, clean_streams, worker_token):  # type: ignore[no-untyped-def]
    log = await EventLog().attach(nc, ("meeting.>",))
    w = worker_token
    async with running(staff_settings, "meetings", clock=FixedClock(NOW)):
        ev = received(consent=True)
        await publish_case(nc, ev)
        await opened(nc, ev.case_id, w)
        case = str(ev.case_id)
        m = await call(
            nc,
            "cmd.meetings.convene.v2",
            convene_cmd(ev.case_id, MON9, pros=[("staff-close", "close_worker"), ("staff-psy", "psychologist")]),
            token=w,
        )
        assert m.ok
        no = await call(
            nc,
            "cmd.meetings.respond.v2",
            {
                "command_id": str(uuid4()),
                "case_id": case,
                "meeting_id": m.id,
                "participant_id": "guardian-1",
                "answer": "declined",
            },
            token=w,
        )
        assert no.ok and no.data["kind"] == "reschedule"
        # the earliest common time of the same people (the clock says Friday 12:00 in Helsinki)
        assert no.data["starts_at"] == datetime(2026, 11, 20, 10, 15, tzinfo=UTC).isoformat()
        moved = await call(
            nc,
            "cmd.meetings.accept_proposal.v2",
            {"command_id": str(uuid4()), "case_id": case, "proposal_id": no.data["proposal_id"]},
            token=w,
        )
        assert moved.ok, moved.errors
        ev_r = (await wait_for(lambda: log.of("meeting.rescheduled")))[0]
        assert ev_r["reason"] == "new_slot_after_decline" and ev_r["starts_at"].startswith("2026-11-20T10:15")
        assert {p["participant_id"] for p in ev_r["participants"]} == {"guardian-1", "staff-close", "staff-psy"}
        q = await call(nc, "query.meetings.case.v2", case_query(ev.case_id), token=w)
        assert q.data["meetings"][0]["responses"] == {}  # everyone is asked again about the new time
        # the old time is free again for the same people
        assert (
            await call(
                nc, "cmd.meetings.convene.v2", convene_cmd(ev.case_id, MON9, pros=[("staff-psy", "psychologist")]), token=w
            )
        ).ok
