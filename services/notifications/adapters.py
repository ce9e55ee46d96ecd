"""Notifications persistence: the contact directory (fed by events), the notifications with their
state, consent withdrawals, the case's team and the meetings' latest revision."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import TypeAdapter
from sqlalchemy import (
    Boolean,
    Column,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    bindparam,
    delete,
    func,
    insert,
    select,
    update,
)

from shared.audit import AuditLog, audit_table
from shared.storage.columns import JSONText, UTCDateTime
from shared.storage.engine import dialect_insert
from shared.storage.fastpath.declare import hot_all, hot_once
from shared.storage.tables import messaging_tables
from shared.storage.uow import UnitOfWork

from .domain import Notification

metadata = MetaData()
messaging_tables(metadata)
audit_log = audit_table(metadata)  # append-only (shared.audit)

contacts = Table(
    "contacts",
    metadata,
    Column("case_id", String(36), primary_key=True),
    Column("contact_id", String(100), primary_key=True),
    Column("role", String(100), nullable=False),
    Column("language", String(10), nullable=False),
    Column("email", String(254), nullable=True),
    Column("phone", String(32), nullable=True),
    Column("preferred_channel", String(20), nullable=True),
    Column("updated_at", UTCDateTime, nullable=False),
    info={"erasure": "delete"},  # the family's addresses (shared/erasure.py)
)

notifications = Table(
    "notifications",
    metadata,
    Column("notification_id", String(36), primary_key=True),
    Column("case_id", String(36), nullable=False, index=True),
    Column("source_event_id", String(36), nullable=False),
    Column("recipient_id", String(100), nullable=False),
    Column("status", String(20), nullable=False, index=True),
    Column("channel", String(20), nullable=True),
    Column("urgent", Boolean, nullable=False, default=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("failure", String(100), nullable=True),
    Column("dedupe_key", String(200), nullable=True, index=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=True),
    Column("not_before", UTCDateTime, nullable=True),
    Column("sent_at", UTCDateTime, nullable=True),
    Column("receipt", String(20), nullable=True),
    Column("state", JSONText, nullable=False),
    # Never twice: one notification per event and recipient.
    UniqueConstraint("source_event_id", "recipient_id", name="uq_notification_event_recipient"),
)

consent_withdrawals = Table(
    "consent_withdrawals",
    metadata,
    Column("case_id", String(36), primary_key=True),
    Column("purpose", String(40), primary_key=True),
    Column("recipient", String(100), primary_key=True),  # "" = every recipient of the purpose
    Column("consent_id", String(36), nullable=False),
    Column("withdrawn_at", UTCDateTime, nullable=False),
)

case_teams = Table(
    "case_teams",
    metadata,
    Column("case_id", String(36), primary_key=True),
    Column("team_id", String(100), nullable=False),
    Column("municipality", String(100), nullable=True),
)

meetings = Table(
    "meetings",
    metadata,
    Column("meeting_id", String(36), primary_key=True),
    Column("case_id", String(36), nullable=False),
    Column("sequence", Integer, nullable=False),
    Column("cancelled", Boolean, nullable=False, default=False),
)

# The inbox of the organizer mailbox: each calendar reply (by its Message-ID digest) is recorded
# once, in the transaction that emits its answer; ``outcome`` says what became of it (a code).
calendar_replies = Table(
    "calendar_replies",
    metadata,
    Column("message_key", String(64), primary_key=True),
    Column("received_at", UTCDateTime, nullable=False),
    Column("meeting_id", String(36), nullable=True),
    Column("outcome", String(40), nullable=False),
)

# The family's copy of a plan version (plan.copy_prepared), kept only until the plan messages are
# out: purged ``plan_copy_retention_hours`` after it came (data minimisation).
plan_copies = Table(
    "plan_copies",
    metadata,
    Column("plan_id", String(36), primary_key=True),
    Column("plan_version", Integer, primary_key=True),
    Column("case_id", String(36), nullable=False),
    Column("language", String(10), nullable=False),
    Column("html", Text, nullable=False),
    Column("pdf_base64", Text, nullable=False),
    Column("received_at", UTCDateTime, nullable=False, index=True),
    info={"erasure": "delete"},  # the family's copy of its plan (shared/erasure.py)
)

# Organisation data from the meetings service's roster (roster.*_changed): rooms and professionals,
# by kind ("room" | "person") and id, so that messages name places and people instead of ids.
roster = Table(
    "roster",
    metadata,
    Column("kind", String(10), primary_key=True),
    Column("key", String(200), primary_key=True),
    Column("occurred_at", UTCDateTime, nullable=False),
    Column("data", JSONText, nullable=False),
)

# What a meeting's later messages (reminder, cancellation) repeat: its time, place and contact person.
meeting_details = Table(
    "meeting_details",
    metadata,
    Column("meeting_id", String(36), primary_key=True),
    Column("data", JSONText, nullable=False),
)

_notification = TypeAdapter(Notification)
_N = notifications.c

# Statements built once (with bind parameters): building a statement per call and computing its
# cache key cost several times more than running it on SQLite (see bench/).
_INSERT_NOTIFICATION = insert(notifications)
_STATE_BY_ID = select(_N.state).where(_N.notification_id == bindparam("id"))
_STATES_BY_IDS = select(_N.notification_id, _N.state).where(_N.notification_id.in_(bindparam("ids", expanding=True)))
_STATUS_BY_ID = select(_N.status).where(_N.notification_id == bindparam("id"))
_STATUSES_BY_IDS = select(_N.notification_id, _N.status).where(_N.notification_id.in_(bindparam("ids", expanding=True)))
_BY_DEDUPE_KEY = select(_N.notification_id).where(_N.dedupe_key == bindparam("dedupe_key")).limit(1)
_DUE = (
    select(_N.state)
    .where(_N.status == "pending")
    .where((_N.not_before.is_(None)) | (_N.not_before <= bindparam("now")))
    .order_by(_N.urgent.desc(), _N.created_at)
    .limit(bindparam("limit", type_=Integer))
)
_PENDING = select(_N.state).where(_N.status == "pending").order_by(_N.created_at).limit(bindparam("limit", type_=Integer))
_SENDING = select(_N.state).where(_N.status == "sending").order_by(_N.created_at).limit(bindparam("limit", type_=Integer))
_SENDING_BEFORE = (
    select(_N.state)
    .where(_N.status == "sending", _N.updated_at <= bindparam("before"))
    .order_by(_N.created_at)
    .limit(bindparam("limit", type_=Integer))
)
_AWAITING_RECEIPT = (
    select(_N.state)
    .where(_N.status == "sent", _N.channel == bindparam("channel"), _N.receipt.is_(None), _N.sent_at >= bindparam("after"))
    .order_by(_N.sent_at)
    .limit(bindparam("limit", type_=Integer))
)
_PENDING_OF_CASE = select(_N.state).where(_N.case_id == bindparam("case_id"), _N.status == "pending")
_SAVE = (
    update(notifications)
    .where(_N.notification_id == bindparam("id"))
    .values(
        status=bindparam("status"),
        channel=bindparam("channel"),
        attempts=bindparam("attempts"),
        failure=bindparam("failure"),
        not_before=bindparam("not_before"),
        sent_at=bindparam("sent_at"),
        receipt=bindparam("receipt"),
        updated_at=bindparam("updated_at"),
        state=bindparam("state"),
    )
)
_CLAIM_SENDING = (
    update(notifications)
    .where(_N.notification_id == bindparam("id"), _N.status == "pending")
    .values(
        status="sending",
        channel=bindparam("channel"),
        attempts=bindparam("attempts"),
        updated_at=bindparam("updated_at"),
        state=bindparam("state"),
    )
)
# A batch's claims: the status change of them all in one statement, which returns the ones that
# were still pending; their states are then written as held writes, under the row locks it took.
_CLAIM_ALL_SENDING = (
    update(notifications)
    .where(_N.notification_id.in_(bindparam("ids", expanding=True)), _N.status == "pending")
    .values(status="sending", updated_at=bindparam("updated_at"))
    .returning(_N.notification_id)
)
_CLAIMED_STATE = (
    update(notifications)
    .where(_N.notification_id == bindparam("id"))
    .values(channel=bindparam("channel"), attempts=bindparam("attempts"), state=bindparam("state"))
)
_OF_CASE = (
    select(_N.notification_id, _N.recipient_id, _N.status, _N.failure, _N.state)
    .where(_N.case_id == bindparam("case_id"))
    .order_by(_N.created_at)
)

_CONTACT = select(contacts).where(contacts.c.case_id == bindparam("case_id"), contacts.c.contact_id == bindparam("contact_id"))
_CONTACTS_OF_CASE = select(contacts).where(contacts.c.case_id == bindparam("case_id"))
_CONTACTS_OF_CASES = select(contacts).where(contacts.c.case_id.in_(bindparam("case_ids", expanding=True)))
_LANGUAGES = select(contacts.c.contact_id, contacts.c.language).where(contacts.c.case_id == bindparam("case_id"))

_WITHDRAWAL_KEY = (
    (consent_withdrawals.c.case_id == bindparam("case_id"))
    & (consent_withdrawals.c.purpose == bindparam("purpose"))
    & (consent_withdrawals.c.recipient == bindparam("recipient"))
)
_DELETE_WITHDRAWAL = delete(consent_withdrawals).where(_WITHDRAWAL_KEY)
_INSERT_WITHDRAWAL = insert(consent_withdrawals)
_WITHDRAWALS = select(consent_withdrawals.c.recipient, consent_withdrawals.c.consent_id).where(
    consent_withdrawals.c.case_id == bindparam("case_id"), consent_withdrawals.c.purpose == bindparam("purpose")
)
_TEAM = select(case_teams.c.team_id).where(case_teams.c.case_id == bindparam("case_id"))
_MEETING = select(meetings).where(meetings.c.meeting_id == bindparam("meeting_id"))
_INSERT_MEETING = insert(meetings)
_UPDATE_MEETING = (
    update(meetings)
    .where(meetings.c.meeting_id == bindparam("id"))
    .values(sequence=bindparam("sequence"), cancelled=bindparam("cancelled"))
)
_UPDATE_PREFERENCE = {
    with_language: update(contacts)
    .where(contacts.c.case_id == bindparam("w_case_id"), contacts.c.contact_id == bindparam("w_contact_id"))
    .values(
        preferred_channel=bindparam("channel"),
        updated_at=bindparam("updated_at"),
        **({"language": bindparam("language")} if with_language else {}),
    )
    for with_language in (False, True)
}
hot_all(
    _INSERT_NOTIFICATION,
    _STATE_BY_ID,
    _STATES_BY_IDS,
    _STATUS_BY_ID,
    _STATUSES_BY_IDS,
    _BY_DEDUPE_KEY,
    _DUE,
    _PENDING,
    _SENDING,
    _SENDING_BEFORE,
    _AWAITING_RECEIPT,
    _PENDING_OF_CASE,
    _SAVE,
    _CLAIM_SENDING,
    _CLAIM_ALL_SENDING,
    _CLAIMED_STATE,
    _OF_CASE,
    _CONTACT,
    _CONTACTS_OF_CASE,
    _CONTACTS_OF_CASES,
    _LANGUAGES,
    _DELETE_WITHDRAWAL,
    _INSERT_WITHDRAWAL,
    _WITHDRAWALS,
    _TEAM,
    _MEETING,
    _INSERT_MEETING,
    _UPDATE_MEETING,
    _UPDATE_PREFERENCE,
)  # the driver fast path (shared/storage/fastpath/)


class _Upserts:
    """INSERT ... ON CONFLICT statements, built once per dialect (SQLite and PostgreSQL spell them alike)."""

    def __init__(self, dialect: str) -> None:
        self.contact = hot_once(("notifications.contact", dialect), lambda: self._contact(dialect))
        self.team = hot_once(("notifications.team", dialect), lambda: self._team(dialect))

    @staticmethod
    def _contact(dialect: str) -> Any:
        c = dialect_insert(dialect)(contacts)
        # A detail missing from this event (NULL) keeps the one already known.
        return c.on_conflict_do_update(
            index_elements=[contacts.c.case_id, contacts.c.contact_id],
            set_={
                "role": c.excluded.role,
                "language": c.excluded.language,
                "email": func.coalesce(c.excluded.email, contacts.c.email),
                "phone": func.coalesce(c.excluded.phone, contacts.c.phone),
                "preferred_channel": func.coalesce(c.excluded.preferred_channel, contacts.c.preferred_channel),
                "updated_at": c.excluded.updated_at,
            },
        )

    @staticmethod
    def _team(dialect: str) -> Any:
        t = dialect_insert(dialect)(case_teams)
        return t.on_conflict_do_update(
            index_elements=[case_teams.c.case_id], set_={"team_id": t.excluded.team_id, "municipality": t.excluded.municipality}
        )


_UPSERTS: dict[str, _Upserts] = {}


def _upserts(dialect: str) -> _Upserts:
    u = _UPSERTS.get(dialect)
    if u is None:
        u = _UPSERTS[dialect] = _Upserts(dialect)
    return u


def _load(state: Any) -> Notification:
    return _notification.validate_python(state)


def _dump(n: Notification) -> Any:
    return _notification.dump_python(n, mode="json")


class ClaimLost(Exception):
    """Some notifications of a batch were claimed by someone else meanwhile."""


class NotificationRepository:
    def __init__(self, uow: UnitOfWork) -> None:
        self.s = uow  # its execute/scalars take the driver fast path (shared/storage/fastpath/)
        self.now = uow.now
        self._upsert = _upserts(uow.db.engine.dialect.name)
        self._saves: list[dict[str, Any]] | None = None
        self._claims: list[dict[str, Any]] | None = None

    # -- directory -------------------------------------------------------------------------------
    async def upsert_contact(self, case_id: UUID, c: dict[str, Any]) -> None:
        """Add or update a person's contact point; a detail missing from this event keeps the known one."""
        await self.upsert_contacts(case_id, [c])

    async def upsert_contacts(self, case_id: UUID, cs: list[dict[str, Any]]) -> None:
        """:meth:`upsert_contact` for several people, in one statement when each appears once."""
        now, case = self.now(), str(case_id)
        rows = [
            {
                "case_id": case,
                "contact_id": c["contact_id"],
                "role": c["role"],
                "language": c.get("language") or "fi",
                "email": c.get("email") or None,
                "phone": c.get("phone") or None,
                "preferred_channel": c.get("preferred_channel") or None,
                "updated_at": now,
            }
            for c in cs
        ]
        for r in rows:  # held; sent one after the other, as the event lists them (deferred.py)
            self.s.later(self._upsert.contact, r)

    async def set_preference(self, case_id: UUID, contact_id: str, channel: str, language: str | None) -> bool:
        params: dict[str, Any] = {
            "w_case_id": str(case_id),
            "w_contact_id": contact_id,
            "channel": channel,
            "updated_at": self.now(),
        }
        if language:
            params["language"] = language
        result = await self.s.execute(_UPDATE_PREFERENCE[bool(language)], params)
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def contact(self, case_id: UUID, contact_id: str) -> Any:
        return (await self.s.execute(_CONTACT, {"case_id": str(case_id), "contact_id": contact_id})).first()

    async def contacts_of_cases(self, case_ids: set[str]) -> dict[tuple[str, str], Any]:
        """The directory rows of several cases at once, by (case id, contact id)."""
        if not case_ids:
            return {}
        rows = await self.s.execute(_CONTACTS_OF_CASES, {"case_ids": sorted(case_ids)})
        return {(r.case_id, r.contact_id): r for r in rows}

    async def contacts_of_case(self, case_id: UUID) -> list[Any]:
        return list((await self.s.execute(_CONTACTS_OF_CASE, {"case_id": str(case_id)})).all())

    async def languages(self, case_id: UUID) -> dict[str, str]:
        rows = await self.s.execute(_LANGUAGES, {"case_id": str(case_id)})
        return {r.contact_id: r.language for r in rows}

    # -- notifications ---------------------------------------------------------------------------
    async def add(self, n: Notification) -> bool:
        """Store a new notification; False when one with the same dedupe key exists (already told)."""
        return bool(await self.add_all([n]))

    async def add_all(self, ns: list[Notification]) -> int:
        """Store new notifications (one statement); those whose dedupe key exists are skipped.
        Returns how many were stored."""
        rows = []
        for n in ns:
            if (
                n.dedupe_key is not None
                and (await self.s.execute(_BY_DEDUPE_KEY, {"dedupe_key": n.dedupe_key})).first() is not None
            ):
                continue
            rows.append(
                {
                    "notification_id": str(n.notification_id),
                    "case_id": str(n.case_id),
                    "source_event_id": str(n.source_event_id),
                    "recipient_id": n.recipient_id,
                    "status": n.status,
                    "channel": None,
                    "urgent": n.urgent,
                    "attempts": n.attempts,
                    "failure": None,
                    "dedupe_key": n.dedupe_key,
                    "created_at": n.created_at,
                    "updated_at": n.created_at,
                    "not_before": n.not_before,
                    "sent_at": None,
                    "receipt": None,
                    "state": _dump(n),
                }
            )
        for row in rows:
            self.s.later(_INSERT_NOTIFICATION, row)  # held: sent with the batch's others (deferred.py)
        return len(rows)

    async def get(self, notification_id: UUID) -> Notification | None:
        state = (await self.s.execute(_STATE_BY_ID, {"id": str(notification_id)})).scalar()
        return None if state is None else _load(state)

    async def get_many(self, notification_ids: list[UUID]) -> dict[str, Notification]:
        """Several notifications in one query, by id (as a string); missing ones are left out."""
        if not notification_ids:
            return {}
        rows = await self.s.execute(_STATES_BY_IDS, {"ids": [str(i) for i in notification_ids]})
        return {r.notification_id: _load(r.state) for r in rows}

    async def status(self, notification_id: UUID) -> str | None:
        return (await self.s.execute(_STATUS_BY_ID, {"id": str(notification_id)})).scalar()

    async def statuses(self, notification_ids: list[UUID]) -> dict[str, str]:
        if not notification_ids:
            return {}
        rows = await self.s.execute(_STATUSES_BY_IDS, {"ids": [str(i) for i in notification_ids]})
        return {r.notification_id: r.status for r in rows}

    async def due(self, now: datetime, limit: int = 100) -> list[Notification]:
        """Pending notifications whose time has come: urgent ones first, then oldest first."""
        return [_load(s) for s in await self.s.scalars(_DUE, {"now": now, "limit": limit})]

    async def pending(self, limit: int = 100) -> list[Notification]:
        return [_load(s) for s in await self.s.scalars(_PENDING, {"limit": limit})]

    async def sending(self, updated_before: datetime | None = None, limit: int = 100) -> list[Notification]:
        if updated_before is None:
            states = await self.s.scalars(_SENDING, {"limit": limit})
        else:
            states = await self.s.scalars(_SENDING_BEFORE, {"before": updated_before, "limit": limit})
        return [_load(s) for s in states]

    async def awaiting_receipt(self, channel: str, sent_after: datetime, limit: int = 100) -> list[Notification]:
        """Sent on a channel that gives delivery receipts, receipt not in yet."""
        states = await self.s.scalars(_AWAITING_RECEIPT, {"channel": channel, "after": sent_after, "limit": limit})
        return [_load(s) for s in states]

    async def pending_of_case(self, case_id: UUID) -> list[Notification]:
        return [_load(s) for s in await self.s.scalars(_PENDING_OF_CASE, {"case_id": str(case_id)})]

    @asynccontextmanager
    async def saves_together(self) -> AsyncIterator[None]:
        """Within this block, :meth:`save` only collects; at its end the rows are held writes
        (shared/storage/deferred.py): sent with the transaction's other writes and its outbox rows
        at commit (one statement on PostgreSQL), or before a read of the table."""
        self._saves = []
        try:
            yield
            for params in self._saves:
                self.s.later(_SAVE, params, scope={"notification_id": params["id"]})
        finally:
            self._saves = None

    async def save(self, n: Notification) -> None:
        params = {
            "id": str(n.notification_id),
            "status": n.status,
            "channel": n.channel,
            "attempts": n.attempts,
            "failure": n.failure,
            "not_before": n.not_before,
            "sent_at": n.sent_at,
            "receipt": n.receipt,
            "updated_at": self.now(),
            "state": _dump(n),
        }
        if self._saves is not None:
            self._saves.append(params)
        else:
            await self.s.execute(_SAVE, params)

    async def claim_sending(self, n: Notification) -> bool:
        """pending -> sending, only if still pending: of two dispatchers (replicas) only one wins."""
        params = {
            "id": str(n.notification_id),
            "channel": n.channel,
            "attempts": n.attempts,
            "updated_at": self.now(),
            "state": _dump(n),
        }
        if self._claims is not None:
            self._claims.append(params)
            return True  # checked for all of them at the end of claims_together()
        result = await self.s.execute(_CLAIM_SENDING, params)
        return bool(result.rowcount)  # type: ignore[attr-defined]

    @asynccontextmanager
    async def claims_together(self) -> AsyncIterator[None]:
        """Within this block, :meth:`claim_sending` only collects; at its end the claims are made
        with one statement that returns the notifications still pending (and locks them), then
        their states are written in one more (one round trip each on PostgreSQL, whatever the batch
        size). If any was no longer pending (another replica took it), :class:`ClaimLost` is
        raised: the caller rolls back and goes one by one."""
        self._claims = []
        try:
            yield
            claims = self._claims
            if claims:
                ids = {c["id"] for c in claims}
                claimed = set(await self.s.scalars(_CLAIM_ALL_SENDING, {"ids": sorted(ids), "updated_at": self.now()}))
                if claimed != ids:
                    raise ClaimLost(len(ids - claimed))
                for c in claims:
                    params = {k: c[k] for k in ("id", "channel", "attempts", "state")}
                    self.s.later(_CLAIMED_STATE, params, scope={"notification_id": c["id"]})
        finally:
            self._claims = None

    async def mark(self, n: Notification, status: str, at: datetime, failure: str | None = None) -> None:
        n.status = status
        if status == "sent":
            n.sent_at = at
        n.failure = failure if failure is not None else n.failure
        await self.save(n)

    async def of_case(self, case_id: UUID) -> list[Any]:
        return list((await self.s.execute(_OF_CASE, {"case_id": str(case_id)})).all())

    async def failed(self, case_id: UUID | None, limit: int) -> list[Any]:
        q = select(_N.case_id, _N.notification_id, _N.recipient_id, _N.failure, _N.updated_at, _N.state).where(
            _N.status == "failed"
        )
        if case_id is not None:
            q = q.where(_N.case_id == str(case_id))
        return list((await self.s.execute(q.order_by(_N.updated_at.desc()).limit(limit))).all())

    # -- consent, team, meetings -------------------------------------------------------------------
    async def record_withdrawal(self, case_id: UUID, purpose: str, recipient: str | None, consent_id: UUID) -> None:
        key = {"case_id": str(case_id), "purpose": purpose, "recipient": recipient or ""}
        self.s.later(_DELETE_WITHDRAWAL, key, scope=key)
        self.s.later(_INSERT_WITHDRAWAL, key | {"consent_id": str(consent_id), "withdrawn_at": self.now()})

    async def clear_withdrawal(self, case_id: UUID, purpose: str, recipient: str | None) -> None:
        key = {"case_id": str(case_id), "purpose": purpose, "recipient": recipient or ""}
        self.s.later(_DELETE_WITHDRAWAL, key, scope=key)

    async def consent_withdrawn(self, case_id: UUID, purpose: str, recipient: str, consent_id: str | None) -> bool:
        rows = (await self.s.execute(_WITHDRAWALS, {"case_id": str(case_id), "purpose": purpose})).all()
        return any(r.recipient in ("", recipient) or (consent_id and r.consent_id == consent_id) for r in rows)

    async def set_team(self, case_id: UUID, team_id: str, municipality: str | None) -> None:
        self.s.later(self._upsert.team, {"case_id": str(case_id), "team_id": team_id, "municipality": municipality})

    async def team(self, case_id: UUID) -> str | None:
        return (await self.s.execute(_TEAM, {"case_id": str(case_id)})).scalar()

    async def meeting_revision(self, meeting_id: str, case_id: UUID, sequence: int, cancelled: bool = False) -> None:
        """Remember the newest revision of a meeting (an older event never overrides a newer one)."""
        row = await self.meeting(meeting_id)
        if row is None:
            await self.s.execute(
                _INSERT_MEETING, {"meeting_id": meeting_id, "case_id": str(case_id), "sequence": sequence, "cancelled": cancelled}
            )
        elif sequence >= row.sequence:
            await self.s.execute(
                _UPDATE_MEETING, {"id": meeting_id, "sequence": sequence, "cancelled": cancelled or row.cancelled}
            )

    async def meeting(self, meeting_id: str) -> Any:
        return (await self.s.execute(_MEETING, {"meeting_id": meeting_id})).first()

    async def add_plan_copy(self, case_id: UUID, plan_id: UUID, version: int, language: str, html: str, pdf_base64: str) -> None:
        await self.s.insert_new(
            plan_copies,
            {
                "plan_id": str(plan_id),
                "plan_version": version,
                "case_id": str(case_id),
                "language": language,
                "html": html,
                "pdf_base64": pdf_base64,
                "received_at": self.now(),
            },
        )

    async def plan_copy(self, plan_id: str, version: int) -> Any:
        t = plan_copies
        q = select(t.c.language, t.c.html, t.c.pdf_base64).where(t.c.plan_id == plan_id, t.c.plan_version == version)
        return (await self.s.execute(q)).first()

    async def purge_plan_copies(self, before: datetime) -> None:
        await self.s.execute(delete(plan_copies).where(plan_copies.c.received_at < before))

    async def calendar_reply_seen(self, message_key: str) -> bool:
        t = calendar_replies
        return (await self.s.execute(select(t.c.outcome).where(t.c.message_key == message_key))).first() is not None

    async def record_calendar_reply(self, message_key: str, meeting_id: str | None, outcome: str) -> bool:
        """True when this reply was not recorded before."""
        return await self.s.insert_new(  # type: ignore[attr-defined]
            calendar_replies,
            {"message_key": message_key, "received_at": self.now(), "meeting_id": meeting_id, "outcome": outcome},
        )

    async def set_meeting_details(self, meeting_id: str, data: dict[str, Any]) -> None:
        t = meeting_details
        if (await self.s.execute(select(t.c.meeting_id).where(t.c.meeting_id == meeting_id))).first() is None:
            await self.s.execute(insert(t).values(meeting_id=meeting_id, data=data))
        else:
            await self.s.execute(update(t).where(t.c.meeting_id == meeting_id).values(data=data))

    async def meeting_details(self, meeting_id: str) -> dict[str, Any]:
        t = meeting_details
        return dict((await self.s.execute(select(t.c.data).where(t.c.meeting_id == meeting_id))).scalar() or {})

    # -- the roster's rooms and people ------------------------------------------------------------
    async def set_roster_entry(self, kind: str, key: str, occurred_at: datetime, data: dict[str, Any]) -> None:
        """Keep the newest announcement of a room or a person (an older one arriving late is ignored)."""
        t = roster
        where = (t.c.kind == kind) & (t.c.key == key)
        known = (await self.s.execute(select(t.c.occurred_at).where(where))).scalar()
        if known is None:
            await self.s.execute(insert(t).values(kind=kind, key=key, occurred_at=occurred_at, data=data))
        elif known <= occurred_at:
            await self.s.execute(update(t).where(where).values(occurred_at=occurred_at, data=data))

    async def roster_entries(self, kind: str, keys: list[str]) -> dict[str, dict[str, Any]]:
        if not keys:
            return {}
        t = roster
        rows = await self.s.execute(select(t.c.key, t.c.data).where(t.c.kind == kind, t.c.key.in_(keys)))
        return {r.key: dict(r.data) for r in rows.all()}


class NotificationsUnitOfWork(UnitOfWork):
    producer = "notifications"
    audit: AuditLog
    notifications: NotificationRepository

    def _attach(self, session: Any) -> None:
        self.notifications = NotificationRepository(self)
        self.audit = AuditLog(self, "notifications")
