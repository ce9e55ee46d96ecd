"""Probes and metrics over HTTP, JSON logs with trace ids, and the trace of a case."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

from shared.client import submit_referral
from shared.observability import JsonFormatter
from tests.conftest import wait_for
from tests.support.data import submission
from tests.support.system import EventLog, fed, running

pytestmark = [pytest.mark.integration]


async def http_get(port: int, path: str) -> tuple[int, str]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    await writer.drain()
    data = (await reader.read()).decode()
    writer.close()
    head, _, body = data.partition("\r\n\r\n")
    return int(head.split()[1]), body


async def test_probes_and_metrics(settings, nc, clean_streams):  # type: ignore[no-untyped-def]
    log = await EventLog().attach(nc)
    async with running(settings, "referral", "meetings") as svcs:
        port = svcs["referral"].http.port
        assert (await http_get(port, "/livez"))[0] == 200
        status, body = await http_get(port, "/readyz")
        assert status == 200 and json.loads(body)["ready"] is True
        await submit_referral(nc, submission())
        await wait_for(lambda: log.of("referral.received"))
        received = fed(svcs["meetings"], subject="referral.received.v2")
        await wait_for(lambda: received.handled == 1)
        _, metrics = await http_get(port, "/metrics")
        assert 'koolle_events_handled_total{consumer="referral-intake-referral-v1"} 1.0' in metrics
        assert 'koolle_events_emitted_total{event_type="referral.received"} 1.0' in metrics
        assert "koolle_outbox_backlog" in metrics and "koolle_consumer_ack_pending" in metrics
        assert "@" not in metrics, "no e-mail addresses (or any personal data) in metrics"
        _, m2 = await http_get(svcs["meetings"].http.port, "/metrics")
        # handled per subscription; pending per durable consumer (one per service and stream)
        assert 'koolle_events_handled_total{consumer="meetings-referral-received-v2"} 1.0' in m2
        assert 'koolle_consumer_pending{consumer="meetings-from-referral"} 0.0' in m2


def test_json_logs_carry_trace_ids() -> None:
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider

    tracer = TracerProvider().get_tracer("t")
    record = logging.LogRecord("koolle.x", logging.WARNING, __file__, 1, "handler failed on %s (%s)", ("c", "RuntimeError"), None)
    with trace.use_span(tracer.start_span("s")):
        line = json.loads(JsonFormatter().format(record))
    assert line["msg"] == "handler failed on c (RuntimeError)"
    assert len(line["trace_id"]) == 32 and line["level"] == "WARNING"
