"""Property-based fuzzing of every inbound contract, in process, through the real code paths:

- every request/reply command and query (``shared.contracts.REQUESTS``) through ``Service._call``
  (validation, idempotency, handler, real SQLite): a bad payload gets ``Reply(ok=False)`` with
  machine-readable errors (field, code, message fi/sv/en); never an internal error, never a raise;
- every event a service consumes through ``EventConsumer.process`` with a fake JetStream message:
  a payload that breaks the contract goes to the dead letters with reason ``contract_violation``
  and is acked; the handler is never reached and the worker lives on;
- the front door's intake: anything at all is stored as a rejection (``referral.rejected``) and acked.

Wrong types, huge strings, NUL characters, invalid UTF-8, unknown fields and missing fields.
Unknown fields in *events* are tolerated by design (consumers parse with ``extra="ignore"`` so a
producer may add optional fields within a version); commands and queries forbid them.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.contracts import REQUESTS, Reply
from shared.errors import ERRORS
from shared.messaging.consumer import EventConsumer
from shared.settings import Settings
from tests.support.system import BUILDERS

pytestmark = [pytest.mark.integration]

EXAMPLES = 15
HUGE = 100_000

# Values of the wrong kind for any field: huge strings, NUL, lone surrogates, numbers, containers.
bad_text = st.one_of(
    st.just("x" * HUGE),
    st.just("\x00"),
    st.text(min_size=1, max_size=20).map(lambda s: s + "\x00" + s),
    st.just("\ud800"),  # a lone surrogate: not encodable as UTF-8
    st.text(max_size=30),
)
bad_value = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | bad_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)


def payloads(model: type, *, unknown_ok: bool) -> st.SearchStrategy[tuple[str, bytes]]:
    """(kind, raw bytes). Field mode: a random subset of the model's fields (so some are missing)
    with values of the wrong kind, plus maybe unknown fields."""
    names = sorted(model.model_fields)

    def encode(obj: Any) -> bytes:
        return json.dumps(obj, ensure_ascii=True).encode()  # keeps lone surrogates as \\ud800 escapes

    fields = st.builds(
        lambda chosen, values, extra: encode({**dict(zip(chosen, values, strict=False)), **extra}),
        st.lists(st.sampled_from(names), unique=True, max_size=len(names)) if names else st.just([]),
        st.lists(bad_value, min_size=len(names), max_size=len(names)),
        st.dictionaries(
            st.text(min_size=1, max_size=8).filter(lambda k: k not in names), bad_value, max_size=2 if unknown_ok else 0
        ),
    )
    return st.one_of(
        st.tuples(st.just("invalid_utf8"), st.binary(min_size=1, max_size=64).map(lambda b: b"\xff\xfe" + b)),
        st.tuples(st.just("not_json"), st.sampled_from([b"", b"{", b"nul\x00", b'{"a":}', b"[1,2"])),
        st.tuples(
            st.just("not_object"),
            st.one_of(st.none(), st.integers(), st.text(max_size=10), st.lists(st.integers(), max_size=3)).map(encode),
        ),
        st.tuples(st.just("unknown_field"), st.just(encode({"zz_unknown": "\x00" + "y" * 1000}))),
        st.tuples(st.just("fields"), fields),
        st.tuples(st.just("huge"), st.just(encode({n: "z" * HUGE for n in names}))),
    )


def well_formed_refusal(reply: Reply) -> bool:
    return (
        (not reply.ok)
        and bool(reply.errors)
        and all(e.field and e.code and {"fi", "sv", "en"} <= set(e.message) for e in reply.errors)
        and all(e.code in ERRORS for e in reply.errors)  # every code a client can get is in docs/errors.md
    )


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory, identity):  # type: ignore[no-untyped-def]
    tmp = tmp_path_factory.mktemp("fuzz")
    settings_ = identity.settings(Settings(nats_url="nats://127.0.0.1:1", data_dir=Path(tmp), http_port_base=-1))
    loop = asyncio.new_event_loop()
    built = {name: build(settings_, None) for name, build in BUILDERS.items()}
    for svc in built.values():
        loop.run_until_complete(svc.db.create_all())
    yield loop, built
    for svc in built.values():
        loop.run_until_complete(svc.db.dispose())
    loop.close()


def test_every_request_contract_is_served(services) -> None:  # type: ignore[no-untyped-def]
    _, built = services
    served = {s for svc in built.values() for s in svc.handlers}
    assert {r.subject for r in REQUESTS} <= served


@pytest.mark.parametrize("spec", REQUESTS, ids=lambda r: r.subject)
def test_fuzz_request(spec, services, identity) -> None:  # type: ignore[no-untyped-def]
    loop, built = services
    svc = built[spec.service]
    model, fn = svc.handlers[spec.subject]
    # A verified worker and team lead: requests naming no case (roster, statistics, overdue lists)
    # reach their handlers; a generated case id is no case of theirs and is refused by the policy.
    authorization = f"Bearer {identity.staff('fuzz-1', ('worker', 'team_lead'), ('fuzz-team',))}"
    tried = {"n": 0, "refused": 0}

    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(payloads(model, unknown_ok=True))
    def run(case: tuple[str, bytes]) -> None:
        kind, body = case
        reply = loop.run_until_complete(svc._call(spec.subject, model, fn, body, authorization))
        tried["n"] += 1
        assert isinstance(reply, Reply)
        codes = [e.code for e in reply.errors]
        assert "internal_error" not in codes, (kind, codes)
        if kind != "fields":  # these can never be a valid command
            assert well_formed_refusal(reply), (kind, reply)
        if not reply.ok:
            tried["refused"] += 1
            assert well_formed_refusal(reply), (kind, reply)

    run()
    print(
        f"\n[fuzz {spec.subject}] tried {tried['n']}, refused cleanly {tried['refused']}, answered {tried['n'] - tried['refused']}"
    )


class FakeMsg:
    """What the consumer needs of a JetStream message."""

    seq = 0

    def __init__(self, subject: str, data: bytes) -> None:
        FakeMsg.seq += 1
        self.subject, self.data, self.headers = subject, data, {}
        self.metadata = SimpleNamespace(num_delivered=1, stream="TEST", sequence=SimpleNamespace(stream=FakeMsg.seq))
        self.acked = self.naked = False

    async def ack(self) -> None:
        self.acked = True

    async def nak(self, delay: float | None = None) -> None:
        self.naked = True


class FakeDeadLetters:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str, str]] = []
        self.count = 0

    async def send(self, msg: Any, durable: str, reason: str, detail: str = "") -> bool:
        self.sent.append((durable, reason, detail))
        self.count += 1
        return True


@pytest.mark.parametrize("service", sorted(BUILDERS))
def test_fuzz_consumed_events(service, services) -> None:  # type: ignore[no-untyped-def]
    loop, built = services
    svc = built[service]
    subs = [s for s in svc.subscriptions if s.stream != "INTAKE"]
    if service != "referral":
        assert subs, "every downstream service consumes events"
    from shared.contracts import EVENTS

    models = {e.filter_subject: e.model for e in EVENTS}  # a routed event: its consumers take every route
    tried = 0
    for sub in subs:
        model = models[sub.subject]
        reached = []

        async def handler(ev: Any, uow: Any) -> None:  # the real handler must never see a bad payload
            reached.append(ev)

        fuzz_sub = type(sub)(sub.service, sub.subject, sub.stream, handler, sub.parse, sub.key)
        dead = FakeDeadLetters()
        consumer = EventConsumer(svc.db, None, fuzz_sub, svc.uow, dead)  # type: ignore[arg-type]
        counted = {"n": 0}

        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        @given(payloads(model, unknown_ok=False))
        def run(case: tuple[str, bytes]) -> None:
            kind, body = case
            if kind == "fields":  # a case id that is never a UUID keeps every field case invalid
                obj = json.loads(body)
                obj["case_id"] = "\x00" + "c" * 50
                body = json.dumps(obj).encode()
            msg = FakeMsg(sub.subject, body)
            before = len(dead.sent)
            loop.run_until_complete(consumer.process([msg]))
            counted["n"] += 1
            assert msg.acked and not msg.naked, kind
            assert len(dead.sent) == before + 1 and dead.sent[-1][1] == "contract_violation", kind
            assert not reached

        run()
        tried += counted["n"]
        # Dead-letter details name fields and error types only, never a value.
        assert all("\x00" not in d and "zzz" not in d and len(d) < 2000 for _, _, d in dead.sent)
    print(f"\n[fuzz events consumed by {service}] subscriptions {len(subs)}, payloads tried {tried}, dead-lettered {tried}")


def test_fuzz_intake(services) -> None:  # type: ignore[no-untyped-def]
    """Anything a front door sends is acked and answered with a stored rejection, never lost."""
    loop, built = services
    svc = built["referral"]
    sub = next(s for s in svc.subscriptions if s.stream == "INTAKE")
    dead = FakeDeadLetters()
    consumer = EventConsumer(svc.db, None, sub, svc.uow, dead)  # type: ignore[arg-type]
    from shared.contracts.referral import ReferralSubmission

    tried = {"n": 0}

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(payloads(ReferralSubmission, unknown_ok=True))
    def run(case: tuple[str, bytes]) -> None:
        kind, body = case
        msg = FakeMsg("intake.referral.submitted.v1", body)
        loop.run_until_complete(consumer.process([msg]))
        tried["n"] += 1
        assert msg.acked and not msg.naked and not dead.sent, kind

    run()

    async def rejected() -> int:
        from sqlalchemy import func, select

        async with svc.db.engine.connect() as conn:
            return (
                await conn.scalar(
                    select(func.count()).select_from(svc.db.outbox).where(svc.db.outbox.c.subject.like("referral.rejected%"))
                )
                or 0
            )

    n = loop.run_until_complete(rejected())
    print(f"\n[fuzz intake] payloads tried {tried['n']}, referral.rejected {n}")
    assert n >= 1
