"""One trace per case: from the front door's publish, through referral, the outbox hop, and the
meetings and notifications consumers. Spans are collected in memory (no collector)."""

from __future__ import annotations

import json
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
from tests.support.system import EventLog, running

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
    found = [s for s in spans if s.name == f"{subject} process" and str(s.attributes.get("koolle.consumer", "")).startswith(service)]
    assert len(found) == 1, [(s.name, dict(s.attributes or {})) for s in spans]
    return found[0]


async def test_one_trace_from_front_door_through_referral_meetings_and_notifications(settings, nc, clean_streams):  # type: ignore[no-untyped-def]
    spans = InMemorySpanExporter()
    provider = setup_tracing("test", extra_exporter=spans)
    log = await EventLog().attach(nc)
    async with running(settings, "referral", "meetings", "notifications") as svcs:
        root = await front_door_publish(nc, submission())
        received = await wait_for(lambda: log.of("referral.received"))
        await wait_for(lambda: svcs["meetings"].consumers[0].handled >= 1 and
                       sum(c.handled for c in svcs["notifications"].consumers if "referral-received" in c.sub.durable) >= 1)
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

    # referral.received -> meetings and notifications consumers, children of the intake span
    for service in ("meetings", "notifications"):
        span = consumer_span(ours, "referral.received.v1", service)
        assert span.parent is not None and span.parent.span_id == intake.context.span_id, service
        assert span.attributes["koolle.case_id"] == received[0]["case_id"]
        assert span.attributes["messaging.message.id"]

    # everything above is one trace; the chain's spans carry ids and subjects only
    assert {s.context.trace_id for s in (intake, *[consumer_span(ours, "referral.received.v1", n) for n in ("meetings", "notifications")])} == {trace_id}
    attrs = json.dumps([dict(s.attributes or {}) for s in ours])
    for personal in ("Maija", "Testinen", "maija@example.com", "040 123 4567", "Lapsinen"):
        assert personal not in attrs


@pytest.mark.xfail(strict=False, reason="the notifications dispatcher does not yet restore the stored trace context around the send")
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
