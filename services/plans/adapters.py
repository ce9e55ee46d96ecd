"""Plans persistence: the plan's head, every version (never overwritten), the consent ledger as the plans
service sees it, what was shared with whom, follow-up records and wellbeing star measurements."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from uuid import UUID

from pydantic import TypeAdapter
from sqlalchemy import Column, Integer, MetaData, String, Table, Text, delete, insert, select, update

from shared.audit import AuditLog, audit_table
from shared.storage.columns import JSONText, UTCDateTime
from shared.storage.tables import messaging_tables
from shared.storage.uow import UnitOfWork

from .domain import Consent, FollowupPolicy, Measurement, Plan

metadata = MetaData()
messaging_tables(metadata)
audit_log = audit_table(metadata)  # append-only (shared.audit)

plans = Table(
    "plans",
    metadata,
    Column("plan_id", String(36), primary_key=True),
    Column("case_id", String(36), nullable=False, index=True),
    Column("version", Integer, nullable=False),
    Column("status", String(20), nullable=False),
    Column("next_contact_at", UTCDateTime, nullable=True, index=True),
    Column("state", JSONText, nullable=False),
)

plan_versions = Table(
    "plan_versions",
    metadata,
    Column("plan_id", String(36), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("case_id", String(36), nullable=False, index=True),
    Column("recorded_at", UTCDateTime, nullable=False),
    Column("recorded_by", String(100), nullable=False),
    Column("content", JSONText, nullable=False),
)

consents = Table(
    "plan_consents",
    metadata,
    Column("consent_id", String(36), primary_key=True),
    Column("case_id", String(36), nullable=False, index=True),
    Column("recipient", String(200), nullable=False),
    Column("valid_until", String(10), nullable=True),
    Column("withdrawn", Integer, nullable=False, default=0),
    Column("recorded_at", UTCDateTime, nullable=False),
)

shares = Table(
    "plan_shares",
    metadata,
    Column("plan_id", String(36), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("recipient_id", String(200), primary_key=True),
    Column("case_id", String(36), nullable=False, index=True),
    Column("recipient_role", String(200), nullable=False),
    Column("basis", String(20), nullable=False),
    Column("consent_id", String(36), nullable=True),
    Column("language", String(5), nullable=False),
    Column("shared_at", UTCDateTime, nullable=False),
)

followup_records = Table(
    "followup_records",
    metadata,
    Column("record_id", String(36), primary_key=True),
    Column("plan_id", String(36), nullable=False, index=True),
    Column("case_id", String(36), nullable=False),
    Column("plan_version", Integer, nullable=False),
    Column("recorded_by", String(100), nullable=False),
    Column("recorded_at", UTCDateTime, nullable=False),
    Column("what_happened", Text, nullable=False),
    Column("wellbeing_scores", JSONText, nullable=False),
    Column("next_contact_at", UTCDateTime, nullable=True),
    Column("meeting", JSONText, nullable=True),
    info={"personal_text": ("what_happened",)},  # blanked on erasure (shared/erasure.py)
)

wellbeing = Table(
    "wellbeing_measurements",
    metadata,
    Column("measurement_id", String(64), primary_key=True),  # meeting:<uuid> or followup:<event uuid>
    Column("case_id", String(36), nullable=False, index=True),
    Column("source", String(20), nullable=False),  # meeting | followup
    Column("measured_at", UTCDateTime, nullable=False),
    Column("scores", JSONText, nullable=False),
)

# Which case each held meeting belongs to (from meeting.held): a plan cannot cite another family's meeting.
held_meetings = Table(
    "held_meetings",
    metadata,
    Column("meeting_id", String(36), primary_key=True),
    Column("case_id", String(36), nullable=False),
)

_plan = TypeAdapter(Plan)


class PlanRepository:
    def __init__(self, uow: UnitOfWork) -> None:
        self.s = uow  # execute/scalar(s) take the driver fast path (shared/storage/fastpath/)

    def _row(self, p: Plan) -> dict[str, Any]:
        return {
            "case_id": str(p.case_id),
            "version": p.version,
            "status": p.status,
            "next_contact_at": p.next_contact_at,
            "state": _plan.dump_python(p, mode="json"),
        }

    async def add(self, p: Plan) -> None:
        await self.s.execute(insert(plans).values(plan_id=str(p.plan_id), **self._row(p)))
        await self.add_version(p)

    async def add_version(self, p: Plan) -> None:
        snap = p.snapshot()
        await self.s.execute(
            insert(plan_versions).values(
                plan_id=str(p.plan_id),
                version=p.version,
                case_id=str(p.case_id),
                recorded_at=p.version_recorded_at or p.agreed_at,
                recorded_by=snap["recorded_by"],
                content=snap,
            )
        )

    async def save(self, p: Plan) -> None:
        await self.s.execute(update(plans).where(plans.c.plan_id == str(p.plan_id)).values(**self._row(p)))

    async def get(self, plan_id: UUID) -> Plan | None:
        state = await self.s.scalar(select(plans.c.state).where(plans.c.plan_id == str(plan_id)))
        return _plan.validate_python(state) if state else None

    async def of_case(self, case_id: UUID) -> list[Plan]:
        states = await self.s.scalars(select(plans.c.state).where(plans.c.case_id == str(case_id)))
        return [_plan.validate_python(s) for s in states]

    async def version(self, plan_id: UUID, version: int) -> dict[str, Any] | None:
        return await self.s.scalar(  # type: ignore[no-any-return]
            select(plan_versions.c.content).where(plan_versions.c.plan_id == str(plan_id), plan_versions.c.version == version)
        )

    async def versions(self, plan_id: UUID) -> list[dict[str, Any]]:
        rows = await self.s.execute(
            select(plan_versions.c.version, plan_versions.c.recorded_at, plan_versions.c.recorded_by)
            .where(plan_versions.c.plan_id == str(plan_id))
            .order_by(plan_versions.c.version)
        )
        return [{"version": r.version, "recorded_at": r.recorded_at.isoformat(), "recorded_by": r.recorded_by} for r in rows]

    async def open_rounds_due_before(self, cutoff: datetime) -> list[Plan]:
        states = await self.s.scalars(
            select(plans.c.state)
            .where(plans.c.status == "active", plans.c.next_contact_at.is_not(None), plans.c.next_contact_at <= cutoff)
            .order_by(plans.c.next_contact_at)
        )
        return [_plan.validate_python(s) for s in states]

    # -- consent ledger (share_plan only) --------------------------------------------------------
    async def consent_given(
        self, consent_id: UUID, case_id: UUID, recipient: str, valid_until: date | None, now: datetime
    ) -> bool:
        """Record a consent; False when it is already known (e.g. its withdrawal arrived first)."""
        known = await self.s.scalar(select(consents.c.consent_id).where(consents.c.consent_id == str(consent_id)))
        if known:
            return False
        await self.s.execute(
            insert(consents).values(
                consent_id=str(consent_id),
                case_id=str(case_id),
                recipient=recipient,
                valid_until=valid_until.isoformat() if valid_until else None,
                withdrawn=0,
                recorded_at=now,
            )
        )
        return True

    async def consent_withdrawn(self, consent_id: UUID, case_id: UUID, recipient: str, now: datetime) -> None:
        known = await self.s.scalar(select(consents.c.consent_id).where(consents.c.consent_id == str(consent_id)))
        if known:
            await self.s.execute(update(consents).where(consents.c.consent_id == str(consent_id)).values(withdrawn=1))
        else:  # the withdrawal overtook the consent: remember it, so the late consent.given changes nothing
            await self.s.execute(
                insert(consents).values(
                    consent_id=str(consent_id), case_id=str(case_id), recipient=recipient, withdrawn=1, recorded_at=now
                )
            )

    async def consents_of_case(self, case_id: UUID) -> list[Consent]:
        rows = await self.s.execute(select(consents).where(consents.c.case_id == str(case_id)).order_by(consents.c.recorded_at))
        return [
            Consent(
                consent_id=UUID(r.consent_id),
                case_id=UUID(r.case_id),
                recipient=r.recipient,
                withdrawn=bool(r.withdrawn),
                valid_until=date.fromisoformat(r.valid_until) if r.valid_until else None,
            )
            for r in rows
        ]

    # -- shares -----------------------------------------------------------------------------------
    async def shared_with(self, plan_id: UUID, version: int) -> dict[str, dict[str, Any]]:
        rows = await self.s.execute(select(shares).where(shares.c.plan_id == str(plan_id), shares.c.version == version))
        return {
            r.recipient_id: {
                "recipient_id": r.recipient_id,
                "recipient_role": r.recipient_role,
                "basis": r.basis,
                "consent_id": r.consent_id,
                "language": r.language,
                "shared_at": r.shared_at.isoformat(),
            }
            for r in rows
        }

    async def add_share(
        self, plan: Plan, recipient_id: str, role: str, basis: str, consent_id: UUID | None, language: str, now: datetime
    ) -> None:
        await self.s.execute(
            insert(shares).values(
                plan_id=str(plan.plan_id),
                version=plan.version,
                recipient_id=recipient_id,
                case_id=str(plan.case_id),
                recipient_role=role,
                basis=basis,
                consent_id=str(consent_id) if consent_id else None,
                language=language,
                shared_at=now,
            )
        )

    # -- follow-up records and the wellbeing star -------------------------------------------------
    async def add_followup_record(self, **values: Any) -> None:
        await self.s.execute(insert(followup_records).values(**values))

    async def followup_records(self, plan_id: UUID) -> list[dict[str, Any]]:
        rows = await self.s.execute(
            select(followup_records).where(followup_records.c.plan_id == str(plan_id)).order_by(followup_records.c.recorded_at)
        )
        return [
            {
                "record_id": r.record_id,
                "plan_version": r.plan_version,
                "recorded_by": r.recorded_by,
                "recorded_at": r.recorded_at.isoformat(),
                "what_happened": r.what_happened,
                "wellbeing_scores": r.wellbeing_scores,
                "next_contact_at": r.next_contact_at.isoformat() if r.next_contact_at else None,
                "followup_meeting": r.meeting,
            }
            for r in rows
        ]

    async def remember_meeting(self, meeting_id: UUID, case_id: UUID) -> None:
        if not await self.case_of_meeting(meeting_id):
            await self.s.execute(insert(held_meetings).values(meeting_id=str(meeting_id), case_id=str(case_id)))

    async def case_of_meeting(self, meeting_id: UUID) -> str | None:
        return await self.s.scalar(select(held_meetings.c.case_id).where(held_meetings.c.meeting_id == str(meeting_id)))

    async def add_measurement(
        self, measurement_id: str, case_id: UUID, source: str, at: datetime, scores: dict[str, int]
    ) -> None:
        known = await self.s.scalar(select(wellbeing.c.measurement_id).where(wellbeing.c.measurement_id == measurement_id))
        if not known:
            await self.s.execute(
                insert(wellbeing).values(
                    measurement_id=measurement_id, case_id=str(case_id), source=source, measured_at=at, scores=scores
                )
            )

    async def all_measurements(self) -> dict[str, dict[str, Any]]:
        """The wellbeing read model as a rebuild builds it (services/plans/projections.py)."""
        rows = await self.s.execute(select(wellbeing))
        return {
            r.measurement_id: {
                "case_id": r.case_id,
                "source": r.source,
                "measured_at": r.measured_at.isoformat(),
                "scores": dict(r.scores),
            }
            for r in rows
        }

    async def replace_measurements(self, facts: dict[str, dict[str, Any]]) -> None:
        """A rebuild's result in place of the live rows, in the unit of work's one transaction."""
        await self.s.execute(delete(wellbeing))
        rows = [
            {
                "measurement_id": k,
                "case_id": f["case_id"],
                "source": f["source"],
                "measured_at": datetime.fromisoformat(f["measured_at"]),
                "scores": f["scores"],
            }
            for k, f in facts.items()
        ]
        for i in range(0, len(rows), 500):
            await self.s.insert(wellbeing, rows[i : i + 500])

    async def measurements(self, case_id: UUID) -> list[Measurement]:
        rows = await self.s.execute(
            select(wellbeing).where(wellbeing.c.case_id == str(case_id)).order_by(wellbeing.c.measured_at)
        )
        return [Measurement(r.measured_at, r.source, dict(r.scores)) for r in rows]


class PlansUnitOfWork(UnitOfWork):
    producer = "plans"
    audit: AuditLog
    plans: PlanRepository
    policy: FollowupPolicy = FollowupPolicy()

    def _attach(self, session: Any) -> None:
        self.plans = PlanRepository(self)
        self.audit = AuditLog(self, "plans")
