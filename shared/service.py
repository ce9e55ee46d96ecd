"""The runtime every service shares: one ``bootstrap()`` builds a :class:`Service`, entrypoints
register on it, and :meth:`Service.run` starts and stops it cleanly.

A service = its own database (outbox, inbox, command log), a FastStream NATS broker for
request/reply commands and queries, reliable JetStream consumers for events, and the outbox relay.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import signal
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, timedelta
from typing import Any, TypeVar

from faststream.nats import NatsBroker
from faststream.nats.annotations import NatsMessage
from nats.js.errors import NotFoundError
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from pydantic import ValidationError
from sqlalchemy import MetaData, text

from shared import pseudonyms
from shared.case_access import PROJECTION, CaseAccess, case_access_table
from shared.client import PlaintextRefused, refuse_plaintext, uses_tls
from shared.clock import Clock
from shared.contracts import (
    STREAMS,
    CaseErased,
    Contract,
    Event,
    FieldError,
    RefusalDetail,
    Reply,
    build,
    field_errors,
    produced_by,
)
from shared.contracts.directory import DIRECTORY_READERS
from shared.erasure import erase_case_rows
from shared.errors import DomainError, message
from shared.gc_pause import collector_after_start_up
from shared.identity import TokenVerifier, Unauthenticated, authorization_header, verifier_from_settings
from shared.key_reserve import KeyReserve
from shared.messaging.batches import BatchOrder
from shared.messaging.consumer import EventConsumer
from shared.messaging.deadletters import DeadLetters
from shared.messaging.redelivery import answer_replay, replay_subject
from shared.messaging.relay import OutboxRelay
from shared.messaging.streams import STREAM_NOT_FOUND, StreamsNotDeclared, ensure_streams
from shared.messaging.subscription import Consumed, Subscription, consumed_by_stream
from shared.messaging.timers import fired_subscription
from shared.observability import PORT_OFFSETS, HttpEndpoint, JsonFormatter, ServiceMetrics
from shared.outage import DependencyUnavailable
from shared.policy import PURPOSE_REQUIRED, RETIRED, UNAUTHENTICATED, Access, decide
from shared.private_files import owner_only
from shared.requests import (
    RETIRED_TEXT,
    UNAUTHENTICATED_TEXT,
    audit_actor,
    caller_of,
    invalid_request,
    record_refusal,
    refusal,
    requested_cases,
)
from shared.sealing import CaseKeys, Sealer, opens_personal_data, personal_fields
from shared.settings import Settings
from shared.storage.commandlog import request_digest
from shared.storage.database import Database
from shared.storage.uow import UnitOfWork
from shared.telemetry import extract_context, setup_tracing

log = logging.getLogger("koolle.service")

C = TypeVar("C", bound=Contract)
U = TypeVar("U", bound=UnitOfWork)


class Service:
    def __init__(
        self,
        name: str,
        settings: Settings,
        metadata: MetaData,
        uow_class: type[UnitOfWork] = UnitOfWork,
        clock: Clock | None = None,
        verifier: Any = None,
    ) -> None:
        self.name = name
        self.settings = settings
        pseudonyms.use_key_file(pseudonyms.key_file_of(settings))
        self.clock = clock or Clock()
        case_access_table(metadata)  # every service decides requests from its own copy of the case relations
        self.db = Database(settings.database_url(name), metadata, busy_timeout_ms=settings.sqlite_busy_timeout_ms)
        self.uow_class = uow_class
        # Who is asking: verifies the requests' access tokens (None: no issuer configured, and
        # every request is refused as unauthenticated).
        self.verifier: TokenVerifier | None = verifier if verifier is not None else verifier_from_settings(settings)
        self.broker = NatsBroker(
            settings.nats_servers(),  # a cluster: several URLs
            name=f"koolle-{name}",
            security=settings.nats_security(),  # identity and TLS; the relay and consumers share this connection
            reconnected_cb=refuse_plaintext(lambda: self.broker.config.connection_state.connection)
            if settings.nats_tls_wanted()
            else None,
            inbox_prefix=settings.nats_inbox_prefix,
            max_reconnect_attempts=-1,
            reconnect_time_wait=1,
            logger=logging.getLogger(f"koolle.{name}.broker"),
        )
        self.subscriptions: list[Subscription] = []
        # subject -> (model, handler) of every request/reply command and query (fuzzing, docs)
        self.handlers: dict[str, tuple[type[Contract], Callable[[Any, Any], Awaitable[Reply]]]] = {}
        self.consumers: list[EventConsumer] = []
        self.consumed_events: list[type[Event]] = []  # the models its consumers parse
        self.relay: OutboxRelay | None = None
        self._checkpoint_task: asyncio.Task[None] | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self.tracer = trace.get_tracer(f"koolle.{name}")
        self.started = False
        self._extra_tasks: list[Callable[[], Coroutine[Any, Any, None]]] = []
        # One-off data migrations, run at start after the tables exist and before any consumer or
        # request handler can touch the data (each records itself and does nothing a second time).
        self.migrations: list[Callable[[], Awaitable[Any]]] = []
        self.metrics = ServiceMetrics(name)
        self.db.on_commit = self.metrics.observe_commit
        self.metrics.on_scrape(self._refresh_metrics)
        self.http: HttpEndpoint | None = None
        self._register_health()
        # Seals personal fields at emit, opens them at consume (shared/sealing.py); set at start.
        self.sealer: Sealer | None = None
        # How many case ids with keys made ahead a service that opens cases keeps (shared/key_reserve.py).
        self.case_key_reserve = 0
        self.key_reserve: KeyReserve | None = None
        for event, apply in PROJECTION:
            self.project(event)(apply)
        self.on_event(CaseErased)(self._erase_case)

    # -- composition ------------------------------------------------------------------------------
    def uow(self) -> UnitOfWork:
        uow = self.uow_class(self.db, self.clock.now)
        uow.producer = self.name
        return uow

    def consumed(self) -> list[Subscription]:
        """Every durable consumer the service runs: its entrypoints' subscriptions, then its own fired
        timers where it owns a stream of durable timers (shared/messaging/timers.py)."""
        timers = [fired_subscription(self.name, s.name) for s in STREAMS.values() if s.owner == self.name and s.schedules]
        return self.subscriptions + timers

    def durable_consumers(self) -> list[Consumed]:
        """The JetStream durable consumers it runs: its subscriptions, one consumer per stream."""
        return consumed_by_stream(self.name, self.consumed())

    def on_event(self, event: type[Event]) -> Callable[[Callable[[Any, Any], Awaitable[None]]], Any]:
        """Register a handler for an event: ``async def handle(event, uow) -> None``. Several
        handlers of one event share its consumer and run in registration order, in one transaction."""

        # A retired version with contact details: the notifications service reads its private
        # directory copy, every other service its public successor (shared/contracts/directory.py).
        private = event.directory_form if self.name in DIRECTORY_READERS else None
        event = private or event.public_form or event
        self.consumed_events.append(event)

        def deco(fn: Callable[[Any, Any], Awaitable[None]]) -> Any:
            # Its keys fetched ahead and its fields opened only for a handler that reads them.
            opens = bool(personal_fields(event)) and opens_personal_data(fn)
            handler = self._opening(fn) if opens else fn
            prepare = self._prefetch_keys if opens else None
            preload = getattr(fn, "preload", None)  # a batch's read (Subscription.preload; fields still sealed)
            for i, sub in enumerate(self.subscriptions):
                if sub.subject == event.filter_subject():
                    both = _chain(sub.preload, preload) if sub.preload and preload else sub.preload or preload
                    self.subscriptions[i] = dataclasses.replace(
                        sub, handler=_chain(sub.handler, handler), preload=both, prepare=sub.prepare or prepare
                    )
                    return fn
            sub = dataclasses.replace(Subscription.for_event(self.name, event, handler), preload=preload, prepare=prepare)
            self.subscriptions.append(sub)
            return fn

        return deco

    def project(self, event: type[Event]) -> Callable[[Callable[[Any, Any], Awaitable[None]]], Any]:
        """Register a read model's handler of an event: ``async def apply(event, uow) -> None``, which
        only writes the service's own read-model rows and emits nothing. Of an event another service
        produces it is consumed like :meth:`on_event`; of one this service produces it runs in the
        transaction that emits the event, before commit, on the event as published (personal fields
        plain): the service does not consume its own stream back, and the model is never behind."""

        def deco(fn: Callable[[Any, Any], Awaitable[None]]) -> Any:
            published = event.public_form or event
            if STREAMS[published.stream].owner != self.name:
                return self.on_event(event)(fn)
            self.db.own_projections.setdefault(published, []).append(fn)
            return fn

        return deco

    def _opening(self, fn: Callable[[Any, Any], Awaitable[None]]) -> Callable[[Any, Any], Awaitable[None]]:
        """The handler, given the event with its sealed personal fields opened (or, for an erased
        case, holding their erased values)."""

        async def opened(ev: Any, uow: Any) -> None:
            await fn(await self.sealer.open(ev) if self.sealer is not None else ev, uow)

        return opened

    async def _prefetch_keys(self, events: list[Any]) -> None:
        if self.sealer is not None:
            await self.sealer.prefetch(events)

    async def _erase_case(self, ev: CaseErased, uow: UnitOfWork) -> None:
        """Every service, on ``referral.case_erased``: forget the case's key, and blank or delete the
        family's personal data in its own database (in this event's inbox transaction)."""
        if self.sealer is not None:
            self.sealer.keys.forget(str(ev.case_id))
        touched = await erase_case_rows(uow, self.db.metadata, str(ev.case_id))
        log.info("case %s erased in %s: %s", ev.case_id, self.name, touched)

    def request(self, subject: str, model: type[C]) -> Callable[[Callable[[C, Any], Awaitable[Reply]]], Any]:
        """Register a request/reply command or query: ``async def handle(cmd, uow) -> Reply``.

        The runtime owns the request's lifecycle (:meth:`_call`); the handler only loads, decides,
        saves and emits. A retired version (its model names ``retired_by``) is refused with a
        pointer to its successor.
        """

        def deco(fn: Callable[[C, Any], Awaitable[Reply]]) -> Any:
            self.handlers[subject] = (model, fn)

            async def entry(msg: NatsMessage) -> dict[str, Any]:
                with self.tracer.start_as_current_span(
                    f"{subject} handle",
                    context=extract_context(msg.headers),
                    kind=SpanKind.SERVER,
                    attributes={"messaging.system": "nats", "koolle.command": subject},
                ):
                    reply = await self._call(subject, model, fn, msg.body, authorization_header(msg.headers))
                    outcome = "ok" if reply.ok else (reply.errors[0].code if reply.errors else "refused")
                    self.metrics.requests.labels(subject, outcome).inc()
                    return reply.model_dump(mode="json")

            self.broker.subscriber(subject, queue=f"koolle-{self.name}", title=subject, description=model.__doc__)(entry)
            return fn

        return deco

    def retired(self, subject: str, model: type[Contract]) -> None:
        """Keep answering a retired request version: every call is refused (``version_retired``)
        with the subject to use instead; nothing in its payload is read or trusted."""

        async def refuse(cmd: Any, uow: Any) -> Reply:  # never called: _call refuses first
            raise AssertionError("retired")

        self.request(subject, model)(refuse)

    async def _call(
        self, subject: str, model: type[C], fn: Callable[[C, Any], Awaitable[Reply]], body: bytes, authorization: str | None
    ) -> Reply:
        """validate → authenticate → the caller's own earlier reply to this command id → authorize →
        another caller's earlier reply → handle → store the reply → commit → reply."""
        successor = getattr(model, "retired_by", None)
        if successor:
            return refusal(RETIRED, "$", {"successor": successor}, **RETIRED_TEXT)
        try:
            cmd = model.model_validate_json(body)
        except ValidationError as exc:
            return invalid_request(field_errors(exc), reads=model.access.needs_purpose)
        access: Access = model.access
        case_ids = requested_cases(cmd, access)
        try:
            principal = await self._verify(authorization)
        except Unauthenticated as exc:
            await self._audit_refusal(None, subject, case_ids, f"unauthenticated:{exc.reason}"[:60])
            return refusal(UNAUTHENTICATED, "Authorization", {"reason": exc.reason}, **UNAUTHENTICATED_TEXT)
        command_id = getattr(cmd, "command_id", None)
        try:
            async with self.uow() as uow:
                uow.cause, uow.principal, uow.actor = cmd, principal, audit_actor(principal)
                earlier = await uow.recall_reply(str(command_id)) if command_id is not None else None
                digest = request_digest(subject, cmd.model_dump_json()) if command_id is not None else None
                if earlier is not None and earlier[2] is not None and earlier[2] != digest:
                    # the same id with other content: refused, so no caller takes it for carried out
                    return refusal("command_id_reused", "command_id")
                if earlier is not None and earlier[1] == uow.actor:
                    # the caller's own retry: the first reply, even if the command took their access away
                    return Reply.model_validate(earlier[0])
                relations = await CaseAccess(uow).relations(case_ids)
                decision = decide(
                    caller_of(principal),
                    access,
                    cases=relations,
                    team=getattr(cmd, access.team) if access.team else None,
                    purpose=getattr(cmd, "purpose", None),
                )
                if decision.refused:
                    await record_refusal(uow, uow.actor, subject, case_ids, decision.reason)
                    await uow.commit()
                    return refusal(
                        decision.code, "purpose" if decision.code == PURPOSE_REQUIRED else "$", {"reason": decision.reason}
                    )
                if earlier is not None:  # given by another caller who may act on the same cases
                    return Reply.model_validate(earlier[0])
                try:
                    reply = await fn(cmd, uow)
                except DomainError:
                    if access.action in ("read", "operate"):
                        await uow.commit()  # a refused read is audited: its record stays
                    raise
                if command_id is not None and reply.ok:
                    await uow.remember_reply(str(command_id), subject, reply.model_dump(mode="json"), uow.actor, digest)
                await uow.commit()
                return reply
        except DomainError as exc:
            return Reply(ok=False, errors=[FieldError(field=exc.field, code=exc.code, message=exc.message)])
        except DependencyUnavailable as exc:  # e.g. the case key bucket while a cluster elects its leader
            log.warning("request %s: %s, nothing changed", subject, type(exc).__name__)
            code = "temporarily_unavailable"
            return Reply(ok=False, errors=[FieldError(field="$", code=code, message=message(code))])
        except Exception as exc:  # noqa: BLE001 - the caller gets an answer, the process lives on
            log.error("request %s failed (%s)", subject, type(exc).__name__)
            return Reply(
                ok=False,
                errors=[
                    FieldError(
                        field="$",
                        code="internal_error",
                        message=message("internal_error"),
                    )
                ],
            )

    async def _verify(self, header: str | None) -> Any:
        if self.verifier is None:
            raise Unauthenticated("unavailable")  # no issuer configured: nobody can be verified
        return await self.verifier.verify(header)

    async def _audit_refusal(self, actor: str | None, subject: str, case_ids: list[str], reason: str) -> None:
        """An unauthenticated request that named a case: audited (who is unknown, so the actor
        says so), in a transaction of its own."""
        if not case_ids:
            return
        try:
            async with self.uow() as uow:
                await record_refusal(uow, actor or "unauthenticated", subject, case_ids, reason)
                await uow.commit()
        except Exception as exc:  # noqa: BLE001 - the refusal is answered even if its record failed
            log.error("refusal of %s not audited (%s)", subject, type(exc).__name__)

    def _register_health(self) -> None:
        async def health(msg: NatsMessage) -> dict[str, Any]:
            return await self.health()

        self.broker.subscriber(f"ops.health.{self.name}", title="health")(health)

        async def replay(msg: NatsMessage) -> dict[str, Any]:
            js = self.broker.config.connection_state.stream
            return await answer_replay(self.consumers, js, msg.body)

        # Only ops may publish here (infra/auth.py); the service still trusts nothing in the request.
        self.broker.subscriber(replay_subject(self.name), title="dead-letter replay")(replay)

    async def health(self) -> dict[str, Any]:
        db_ok = True
        try:
            async with self.db.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception:  # noqa: BLE001
            db_ok = False
        nc = self.broker.config.connection_state
        broker_ok = bool(nc) and nc.connection.is_connected
        consumers_ok = all(c.bound for c in self.consumers)
        return {
            "service": self.name,
            "pid": os.getpid(),
            "live": True,
            "ready": self.started and db_ok and broker_ok and consumers_ok,
            "db": db_ok,
            "broker": broker_ok,
            "consumers": {c.durable: c.handled for c in self.consumers},
            "dead_letters": sum(c.dead_letters.count for c in self.consumers[:1]),
            "outbox_published": self.relay.published if self.relay else 0,
        }

    async def _refresh_metrics(self) -> None:
        from sqlalchemy import func, select

        outbox = self.db.outbox
        async with self.db.read_sessionmaker() as session:
            row = (
                await session.execute(select(func.count(), func.min(outbox.c.created_at)).where(outbox.c.sent_at.is_(None)))
            ).one()
        self.metrics.outbox_backlog.set(row[0])
        oldest = row[1]
        if oldest is not None and oldest.tzinfo is None:
            oldest = oldest.replace(tzinfo=UTC)
        self.metrics.outbox_oldest_age.set((self.clock.now() - oldest).total_seconds() if oldest else 0)
        js = self.broker.config.connection_state.stream
        for c in self.consumers:
            try:
                info = await js.consumer_info(c.stream, c.durable)
            except Exception:  # noqa: BLE001 - NATS unreachable: leave the last values
                continue
            self.metrics.consumer_pending.labels(c.durable).set(info.num_pending or 0)
            self.metrics.consumer_ack_pending.labels(c.durable).set(info.num_ack_pending or 0)
        self.metrics.ready.set(1 if (await self.health())["ready"] else 0)

    # -- lifecycle --------------------------------------------------------------------------------
    def contracts(self) -> list[type[Contract]]:
        """The contracts this service parses and builds: what it consumes, answers and emits."""
        requests = [m for m, _ in self.handlers.values()]
        replies = [r for r in (getattr(m, "reply_data", None) for m in requests) if r is not None]
        return [Reply, FieldError, RefusalDetail, *self.consumed_events, *requests, *replies, *produced_by(self.name)]

    async def start(self) -> None:
        # The catalogue's validators are built at first use (shared/contracts/base.py); this
        # service's own before any request or event arrives.
        build(self.contracts())
        setup_tracing(self.name, self.settings.otel_exporter)
        await self.db.create_all()
        for migrate in self.migrations:
            await migrate()
        self._checkpoint_task = await self.db.start_checkpointer()
        await self.broker.connect()
        if self.settings.nats_tls_wanted() and not uses_tls(self.broker.config.connection_state.connection):
            await self.broker.stop()
            raise PlaintextRefused("TLS is configured but the NATS server did not use it")
        js = self.broker.config.connection_state.stream
        if self.settings.manage_streams:
            await ensure_streams(
                js, self.settings.duplicate_window_seconds, self.settings.stream_replicas, self.settings.stream_max_ages()
            )
        keys = CaseKeys(js, atomic=self.settings.outbox_atomic_batches)
        self.sealer = Sealer(keys)
        self.db.sealer = self.sealer
        if self.case_key_reserve > 0:
            self.key_reserve = KeyReserve(keys, self.case_key_reserve)
            self.db.key_reserve = self.key_reserve
        dead = DeadLetters(js, self.name)
        order = BatchOrder()  # this process's consumers take turns by their batches' first events
        for consumed in self.durable_consumers():
            consumer = EventConsumer(
                self.db,
                js,
                consumed,
                self.uow,
                dead,
                batch=self.settings.fetch_batch,
                ack_wait=self.settings.ack_wait_seconds,
                max_deliver=self.settings.max_deliver,
                retry_delays=self.settings.retry_delays,
                metrics=self.metrics,
                linger=self.settings.fetch_linger_seconds,
                order=order,
            )
            try:
                await consumer.bind()
            except NotFoundError as exc:
                if exc.err_code != STREAM_NOT_FOUND or self.settings.manage_streams:
                    raise
                raise StreamsNotDeclared(
                    f"stream {consumed.stream} does not exist and this service does not declare streams "
                    "(KOOLLE_MANAGE_STREAMS=false): declare them first, python -m infra.ops declare-streams"
                ) from None
            self.consumers.append(consumer)
        self.relay = OutboxRelay(
            self.db,
            js,
            batch=self.settings.outbox_batch,
            poll_seconds=self.settings.outbox_poll_seconds,
            metrics=self.metrics,
            atomic=self.settings.outbox_atomic_batches,
            keep=timedelta(hours=self.settings.outbox_retention_hours) if self.settings.outbox_retention_hours > 0 else None,
            now=self.clock.now,
        )
        await self.broker.start()
        self._relay_task = asyncio.create_task(self.relay.run(), name=f"{self.name}-relay")
        if self.key_reserve is not None:
            self.key_reserve.top_up()
        for c in self.consumers:
            c.start()
        self._tasks = []
        if self.verifier is not None:  # the keys before the first request, without delaying the start
            self._tasks.append(asyncio.create_task(self.verifier.prefetch(), name=f"{self.name}-jwks"))
        for extra in self._extra_tasks:
            self._tasks.append(asyncio.create_task(extra(), name=f"{self.name}-{extra.__name__}"))
        if self.settings.http_port_base >= 0:
            port = self.settings.http_port_base + PORT_OFFSETS.get(self.name, 9) if self.settings.http_port_base else 0
            self.http = HttpEndpoint(self.settings.http_host, port, self.health, self.metrics)
            try:
                await self.http.start()
            except OSError as exc:  # port taken: keep serving NATS; probes are then unavailable
                log.warning("http endpoint not started on port %d (%s)", port, type(exc).__name__)
                self.http = None
        self.started = True
        log.info("%s started", self.name)

    def background(self, fn: Callable[[], Coroutine[Any, Any, None]]) -> Callable[[], Coroutine[Any, Any, None]]:
        """Run ``fn`` as a task while the service runs (e.g. a dispatcher)."""
        self._extra_tasks.append(fn)
        return fn

    async def stop(self) -> None:
        self.started = False
        # Stop taking work and let batches in hand finish and ack; stop answering requests; give the
        # relay a moment to publish what was just committed (anything left goes out at next start).
        await asyncio.gather(*(c.stop() for c in self.consumers))
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.key_reserve is not None:
            await self.key_reserve.close()
        if self.relay is not None:
            self.relay.stop()
            try:
                await asyncio.wait_for(asyncio.shield(self._relay_task), 5.0)
            except (TimeoutError, asyncio.CancelledError):
                self._relay_task.cancel()
                await asyncio.gather(self._relay_task, return_exceptions=True)
        try:
            await self.broker.stop()
        except Exception as exc:  # noqa: BLE001 - a connection already closed (refused plaintext) cannot unsubscribe
            log.warning("broker stop incomplete (%s)", type(exc).__name__)
        if self.http is not None:
            await self.http.stop()
        if self.verifier is not None:
            await self.verifier.aclose()
        await self.db.dispose()
        if self._checkpoint_task is not None:
            await asyncio.gather(self._checkpoint_task, return_exceptions=True)
        log.info("%s stopped", self.name)

    async def run(self) -> None:
        """Run until SIGTERM or SIGINT, then stop cleanly."""
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await self.start()
        collector_after_start_up()
        print(json.dumps({"service": self.name, "ready": True}), flush=True)
        await stop.wait()
        await self.stop()


def _chain(first: Callable[[Any, Any], Awaitable[None]], then: Callable[[Any, Any], Awaitable[None]]) -> Any:
    async def both(ev: Any, uow: Any) -> None:
        await first(ev, uow)
        await then(ev, uow)

    return both


# Database drivers log statements with their parameters at DEBUG: never below WARNING, even when
# KOOLLE_LOG_LEVEL=DEBUG, so personal data cannot reach a log.
QUIET_LOGGERS = ("aiosqlite", "asyncpg", "sqlalchemy.engine", "sqlalchemy.pool")


def configure_logging() -> None:
    """JSON logs on stderr with trace ids. Messages carry ids and codes only."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    logging.basicConfig(level=os.environ.get("KOOLLE_LOG_LEVEL", "INFO"), handlers=[handler], force=True)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def run_service(build: Callable[[], Service]) -> None:
    owner_only()  # databases, spool and logs it creates: readable by the owner only
    configure_logging()
    try:
        asyncio.run(build().run())
    except (StreamsNotDeclared, PlaintextRefused) as exc:  # the deployment's to fix: one line, no traceback
        logging.getLogger("koolle.service").error("not started: %s", exc)
        raise SystemExit(2) from None
