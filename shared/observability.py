"""Metrics (Prometheus text format), liveness/readiness over HTTP, and JSON logs with trace ids.

Each service serves, on its own port (``KOOLLE_HTTP_PORT_BASE`` + the service's offset):

- ``GET /livez``   200 while the process runs its event loop (Kubernetes liveness probe);
- ``GET /readyz``  200 when the broker and the database are reachable and every consumer is bound
                   (readiness probe), else 503 with the failing parts;
- ``GET /metrics`` Prometheus metrics.

Metric labels carry subjects, consumers and codes only, never personal data.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from opentelemetry import trace
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

log = logging.getLogger("koolle.observability")

PORT_OFFSETS = {"referral": 1, "meetings": 2, "plans": 3, "notifications": 4}


class ServiceMetrics:
    def __init__(self, service: str) -> None:
        self.service = service
        r = self.registry = CollectorRegistry()
        self.handled = Counter("koolle_events_handled", "Events handled (effect committed)", ["consumer"], registry=r)
        self.failed = Counter("koolle_events_failed", "Handler failures (message retried with delay)", ["consumer"], registry=r)
        self.duplicates = Counter(
            "koolle_inbox_duplicates_skipped", "Redeliveries the inbox turned into no effect", ["consumer"], registry=r
        )
        self.dead_letters = Counter(
            "koolle_dead_letters", "Messages sent to the dead-letter stream", ["consumer", "reason"], registry=r
        )
        self.claimed_again = Counter(
            "koolle_inbox_claimed_again",
            "Batches of first deliveries handled again with their inbox rows claimed first (an event stored twice)",
            ["consumer"],
            registry=r,
        )
        self.outage_waits = Counter(
            "koolle_consumer_outage_waits",
            "Times a batch was held because a dependency did not answer (tried again, no delivery spent)",
            ["consumer", "dependency"],
            registry=r,
        )
        self.handler_seconds = Histogram(
            "koolle_handler_seconds",
            "Time to handle a batch (effects + commit)",
            ["consumer"],
            registry=r,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )
        self.emitted = Counter("koolle_events_emitted", "Events committed to the outbox, by type", ["event_type"], registry=r)
        self.timers = Counter("koolle_timers_scheduled", "Durable timers scheduled, by event type", ["event_type"], registry=r)
        self.timers_cancelled = Counter("koolle_timers_cancelled", "Durable timers cancelled", registry=r)
        self.published = Counter("koolle_outbox_published", "Outbox rows published (PubAck received)", registry=r)
        self.purged = Counter("koolle_outbox_purged", "Published outbox rows deleted after their retention", registry=r)
        self.requests = Counter("koolle_requests", "Request/reply commands and queries", ["subject", "outcome"], registry=r)
        self.outbox_backlog = Gauge("koolle_outbox_backlog", "Outbox rows not yet published", registry=r)
        self.outbox_oldest_age = Gauge("koolle_outbox_oldest_unsent_seconds", "Age of the oldest unsent outbox row", registry=r)
        self.consumer_pending = Gauge(
            "koolle_consumer_pending", "Messages not yet delivered to the consumer", ["consumer"], registry=r
        )
        self.consumer_ack_pending = Gauge(
            "koolle_consumer_ack_pending", "Messages delivered, not yet acked", ["consumer"], registry=r
        )
        self.ready = Gauge("koolle_ready", "1 when the service is ready", registry=r)
        self._refreshers: list[Callable[[], Awaitable[None]]] = []

    def on_scrape(self, fn: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
        """Register an async function that updates gauges right before each scrape."""
        self._refreshers.append(fn)
        return fn

    def gauge(self, name: str, doc: str, labels: list[str] | None = None) -> Gauge:
        return Gauge(name, doc, labels or [], registry=self.registry)

    def observe_commit(self, messages: list[dict[str, Any]]) -> None:
        for m in messages:
            if m["op"] == "cancel_timer":
                self.timers_cancelled.inc()
                continue
            etype = m["headers"].get("Koolle-Event-Type", "unknown")
            if "Nats-Schedule" in m["headers"]:
                self.timers.labels(etype).inc()
            else:
                self.emitted.labels(etype).inc()

    async def render(self) -> bytes:
        for fn in self._refreshers:
            try:
                await fn()
            except Exception as exc:  # noqa: BLE001 - a failing gauge must not break the scrape
                log.warning("metrics refresh failed (%s)", type(exc).__name__)
        return generate_latest(self.registry)


class HttpEndpoint:
    """A tiny HTTP/1.1 server for probes and metrics (no framework: three GET routes)."""

    def __init__(self, host: str, port: int, ready: Callable[[], Awaitable[dict[str, Any]]], metrics: ServiceMetrics) -> None:
        self.host, self.port = host, port
        self._ready = ready
        self._metrics = metrics
        self._server: asyncio.base_events.Server | None = None

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), 5)
            while (await asyncio.wait_for(reader.readline(), 5)) not in (b"\r\n", b"\n", b""):
                pass
            parts = line.decode("latin-1").split()
            path = parts[1] if len(parts) > 1 else "/"
            status, ctype, body = 404, "text/plain", b"not found\n"
            if path == "/livez":
                status, body = 200, b"ok\n"
            elif path == "/readyz":
                state = await self._ready()
                status = 200 if state.get("ready") else 503
                ctype, body = "application/json", json.dumps(state).encode()
            elif path == "/metrics":
                status, ctype, body = 200, "text/plain; version=0.0.4", await self._metrics.render()
            reason = {200: "OK", 404: "Not Found", 503: "Service Unavailable"}[status]
            writer.write(
                f"HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        except Exception:  # noqa: BLE001 - a bad probe request never hurts the service
            pass
        finally:
            writer.close()


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with the current trace and span ids. Messages are written by us
    with ids and codes only; arguments are never payloads."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        ctx = trace.get_current_span().get_span_context()
        if ctx.is_valid:
            out["trace_id"] = f"{ctx.trace_id:032x}"
            out["span_id"] = f"{ctx.span_id:016x}"
        if record.exc_info and record.exc_info[0] is not None:
            out["error"] = record.exc_info[0].__name__  # the type only: messages may carry data
        return json.dumps(out, ensure_ascii=False)
