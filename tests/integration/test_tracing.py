"""One trace per case: from the front door's publish, through referral, the outbox hop, and the
meetings and notifications consumers. Spans are collected in memory (no collector)."""

from __future__ import annotations

import json
from datetime import UTC
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from shared.contracts import INTAKE_SUBJECT
from shared.telemetry import choose_exporter, continued_trace, current_trace_context, inject_context, setup_tracing
from tests.conftest import wait_for
from tests.support.data import submission
from tests.support.system import EventLog, fed, running

pytestmark = [pytest.mark.integration]


async def front_door_publish(nc: Any, body: dict[str, Any]) -> trace.SpanContext:
    """What a front door does: publish the submission inside its own span, W3C traceparent in the headers."""
    tracer = trace.get_tracer("koolle.front-door-test")
    with tracer.start_as_current_span(f"{INTAKE_SUBJECT} publish", kind=SpanKind.PRODUCER) as span:
        headers = {"Nats-Msg-Id": body["submission_id"]}
        inject_context(headers)
        await nc.jetstream().publish(INTAKE_SUBJECT, json.dumps(body).encode(), headers=headers)
        return span.get_span_context()


def consumer_span(spans: list[ReadableSpan], subject: str, service: str) -> ReadableSpan:
    found = [
        s for s in spans if s.name == f"{subject} process" and str(s.attributes.get("koolle.consumer", "")).startswith(service)
    ]
    assert len(found) == 1, [(s.name, dict(s.attributes or {})) for s in spans]
    return found[0]


async def test_one_trace_from_front_door_through_referral_meetings_and_notifications(settings, nc, clean_streams):  # type: ignore[no-untyped-def]
    spans = InMemorySpanExporter()
    provider = setup_tracing("test", extra_exporter=spans)
    log = await EventLog().attach(nc)
    async with running(settings, "referral", "meetings", "notifications") as svcs:
        root = await front_door_publish(nc, submission())
        received = await wait_for(lambda: log.of("referral.received"))
        await wait_for(
            lambda: (
                sum(c.handled for c in svcs["meetings"].consumers) >= 1
                and fed(svcs["notifications"], named="referral-received").handled >= 1
            )
        )
    provider.force_flush()
    trace_id = root.trace_id
    ours = [s for s in spans.get_finished_spans() if s.context.trace_id == trace_id]

    # front door -> referral intake consumer (extracted from the publish headers)
    intake = consumer_span(ours, INTAKE_SUBJECT, "referral")
    assert intake.parent is not None and intake.parent.span_id == root.span_id
    assert intake.kind == SpanKind.CONSUMER

    # the outbox hop: the context was stored with the outbox row at emit time and published with it
    traceparent = received[0]["_headers"]["traceparent"]
    _, tid, parent_span, _ = traceparent.split("-")
    assert int(tid, 16) == trace_id and int(parent_span, 16) == intake.context.span_id

    # referral.received -> meetings (public v2) and notifications (its private copy), children of the intake span
    read_as = {"meetings": "referral.received.v2", "notifications": "directory.referral.received.v1"}
    for service, subject in read_as.items():
        span = consumer_span(ours, subject, service)
        assert span.parent is not None and span.parent.span_id == intake.context.span_id, service
        assert span.attributes["koolle.case_id"] == received[0]["case_id"]
        assert span.attributes["messaging.message.id"]

    # everything above is one trace; the chain's spans carry ids and subjects only
    assert {s.context.trace_id for s in (intake, *[consumer_span(ours, subject, n) for n, subject in read_as.items()])} == {
        trace_id
    }
    attrs = json.dumps([dict(s.attributes or {}) for s in ours])
    for personal in ("Maija", "Testinen", "maija@example.com", "040 123 4567", "Lapsinen"):
        assert personal not in attrs


async def test_notification_send_joins_the_case_trace(settings, nc, clean_streams):  # type: ignore[no-untyped-def]
    spans = InMemorySpanExporter()
    provider = setup_tracing("test", extra_exporter=spans)
    log = await EventLog().attach(nc)
    async with running(settings, "referral", "notifications"):
        root = await front_door_publish(nc, submission())
        sent = await wait_for(lambda: log.of("notification.sent"), timeout=10)
    provider.force_flush()
    traceparent = sent[0]["_headers"].get("traceparent")  # notification.sent emitted inside the case's trace
    assert traceparent and int(traceparent.split("-")[1], 16) == root.trace_id
    sends = [s for s in spans.get_finished_spans() if s.name.startswith("notification send")]
    assert sends and all(s.context.trace_id == root.trace_id for s in sends)


def test_trace_context_can_be_stored_and_continued() -> None:
    """The helper a background worker uses: store the carrier with the work, continue it later."""
    spans = InMemorySpanExporter()
    provider = setup_tracing("test", extra_exporter=spans)
    tracer = trace.get_tracer("koolle.test")
    with tracer.start_as_current_span("consume") as consume:
        stored = current_trace_context()
    assert stored["traceparent"].split("-")[1] == f"{consume.get_span_context().trace_id:032x}"
    assert current_trace_context() == {}
    with continued_trace(stored):
        with tracer.start_as_current_span("send") as send:
            headers: dict[str, str] = {}
            inject_context(headers)
    assert send.get_span_context().trace_id == consume.get_span_context().trace_id
    assert headers["traceparent"].split("-")[1] == stored["traceparent"].split("-")[1]
    with continued_trace({}), tracer.start_as_current_span("orphan") as orphan:
        pass
    assert orphan.get_span_context().trace_id != consume.get_span_context().trace_id
    provider.force_flush()
    assert [s.parent.span_id for s in spans.get_finished_spans() if s.name == "send"] == [consume.get_span_context().span_id]


def test_otlp_exporter_only_when_endpoint_is_configured(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    assert choose_exporter("none") is None
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector.example:4318")
    chosen = choose_exporter("none")
    assert isinstance(chosen, OTLPSpanExporter)
    assert chosen._endpoint == "http://collector.example:4318/v1/traces"
    chosen.shutdown()  # nothing was sent: no collector needed
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT")
    assert isinstance(choose_exporter("otlp"), OTLPSpanExporter)  # explicit KOOLLE_OTEL_EXPORTER=otlp
    assert type(choose_exporter("console")).__name__ == "ConsoleSpanExporter"


async def staff_call(nc: Any, subject: str, payload: dict[str, Any], token: str) -> tuple[Any, trace.SpanContext]:
    """What a staff app does: a command inside its own span, traceparent and the access token in the
    request headers."""
    from shared.contracts import Reply

    tracer = trace.get_tracer("koolle.staff-app-test")
    with tracer.start_as_current_span(f"{subject} send", kind=SpanKind.CLIENT) as span:
        headers: dict[str, str] = {"Authorization": f"Bearer {token}"}
        inject_context(headers)
        msg = await nc.request(subject, json.dumps(payload, default=str).encode(), timeout=5, headers=headers)
        return Reply.model_validate_json(msg.data), span.get_span_context()


async def test_staff_commands_are_traced_through_meetings_plans_and_notifications(
    staff_settings, nc, clean_streams, worker_token
):  # type: ignore[no-untyped-def]
    """Each outside action on a case (the submission, each staff command) is one trace through every
    service it reaches; all of a case's spans carry koolle.case_id, which groups its traces."""
    from datetime import datetime, timedelta

    from shared.clock import FixedClock
    from tests.integration.test_flow import convene_cmd, held_cmd, plan_cmd
    from tests.support.staff import relation_known

    spans = InMemorySpanExporter()
    provider = setup_tracing("test", extra_exporter=spans)
    log = await EventLog().attach(nc)
    clock = FixedClock(datetime.now(UTC))
    w = worker_token  # the close worker, on the team the referral is routed to
    async with running(staff_settings, clock=clock) as svcs:
        await front_door_publish(nc, submission())
        case_id = (await wait_for(lambda: log.of("referral.received")))[0]["case_id"]
        await relation_known([svcs["meetings"], svcs["plans"]], case_id)  # the team, from referral.assigned

        async def convene():  # type: ignore[no-untyped-def]
            cmd = convene_cmd(case_id, clock.now() + timedelta(hours=1))
            reply, ctx = await staff_call(nc, "cmd.meetings.convene.v2", cmd, w)
            return (reply, ctx) if reply.ok else None

        reply, convene_ctx = await wait_for(convene)
        clock.advance(hours=1, minutes=5)
        r2, held_ctx = await staff_call(nc, "cmd.meetings.record_held.v2", held_cmd(case_id, reply.id), w)
        assert r2.ok, r2.errors
        plan = plan_cmd(case_id, reply.id, clock.now() + timedelta(days=30))
        r3, agree_ctx = await staff_call(nc, "cmd.plans.agree.v2", plan, w)
        assert r3.ok, r3.errors
        await wait_for(lambda: log.of("plan.agreed") and log.of("meeting.held"))

        def consumed() -> bool:
            provider.force_flush()
            seen = {(s.name, str(s.attributes.get("koolle.consumer", "")).split("-")[0]) for s in spans.get_finished_spans()}
            return {
                ("directory.meeting.convened.v1 process", "notifications"),
                ("meeting.held.v2.> process", "plans"),
                ("directory.plan.agreed.v1 process", "notifications"),
            } <= seen

        await wait_for(consumed, timeout=10)
    provider.force_flush()
    finished = spans.get_finished_spans()
    assert not any(w in str(dict(s.attributes or {})) for s in finished), "the access token is in no span"

    def handle_span(subject: str, parent: trace.SpanContext) -> ReadableSpan:
        found = [
            s for s in finished if s.name == f"{subject} handle" and s.parent is not None and s.parent.span_id == parent.span_id
        ]
        assert len(found) == 1, subject
        assert found[0].context.trace_id == parent.trace_id and found[0].kind == SpanKind.SERVER
        return found[0]

    for command, ctx, event, consumer_service in (
        ("cmd.meetings.convene.v2", convene_ctx, "directory.meeting.convened.v1", "notifications"),
        ("cmd.meetings.record_held.v2", held_ctx, "meeting.held.v2.>", "plans"),
        ("cmd.plans.agree.v2", agree_ctx, "directory.plan.agreed.v1", "notifications"),
    ):
        request = handle_span(command, ctx)
        downstream = [s for s in finished if s.context.trace_id == ctx.trace_id]
        consumer = consumer_span(downstream, event, consumer_service)
        assert consumer.parent is not None and consumer.parent.span_id == request.context.span_id, (command, event)
        assert consumer.attributes["koolle.case_id"] == case_id
    assert len({convene_ctx.trace_id, held_ctx.trace_id, agree_ctx.trace_id}) == 3


def test_without_an_exporter_a_notification_continues_its_cause_trace_and_builds_no_span(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from types import SimpleNamespace

    from services.notifications import delivery
    from shared import telemetry

    monkeypatch.setattr(telemetry, "tracing_exported", lambda: False)
    cause = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    n = SimpleNamespace(trace={"traceparent": cause}, notification_id="n-1")
    with delivery._in_trace(n):
        headers: dict[str, str] = {}
        inject_context(headers)  # what notification.sent carries
        assert not trace.get_current_span().is_recording()
    assert headers["traceparent"] == cause  # the cause's trace and span: no span of its own between
