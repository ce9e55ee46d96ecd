"""Settings from environment variables (prefix ``KOOLLE_``), with defaults that work on a laptop."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

# The system nats-server on this kind of machine may already hold 4222 (and be too old for
# message schedules), so the embedded broker listens on its own port by default.
DEFAULT_NATS_PORT = 4250


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KOOLLE_", extra="ignore")

    nats_url: str = f"nats://127.0.0.1:{DEFAULT_NATS_PORT}"
    # Identity on NATS (least privilege: each service its own user and inbox prefix), TLS optional.
    nats_user: str = ""
    nats_password: str = ""
    nats_inbox_prefix: str = "_INBOX"
    nats_tls_ca: str = ""
    nats_tls_cert: str = ""
    nats_tls_key: str = ""
    # Declare/update the JetStream streams at start. Off where services run with least privilege
    # (ops declares the streams then).
    manage_streams: bool = True
    data_dir: Path = Path("var")
    # Per-service database URL; empty means a SQLite file under data_dir.
    referral_database_url: str = ""
    meetings_database_url: str = ""
    plans_database_url: str = ""
    notifications_database_url: str = ""
    # SQLite: how long a writer waits for another connection's lock before the statement fails
    # (a consumer then naks and retries; nothing is acked without its commit).
    sqlite_busy_timeout_ms: int = 30000

    # Consumers: how long JetStream waits for an ack before redelivering, how many deliveries
    # before a message goes to the dead-letter stream, and the retry delays in seconds.
    ack_wait_seconds: float = 30.0
    max_deliver: int = 8
    retry_delays: tuple[float, ...] = (1.0, 5.0, 15.0, 60.0, 300.0)
    fetch_batch: int = 256

    # Outbox relay: rows per publish round, and how often it polls when nobody wakes it.
    outbox_batch: int = 500
    outbox_poll_seconds: float = 1.0

    # The stream's duplicate window (seconds): how long JetStream itself drops a repeated Nats-Msg-Id.
    duplicate_window_seconds: float = 120.0
    # JetStream replicas for the streams (1 on the embedded default; 3 on a cluster).
    stream_replicas: int = 1

    # Probes and metrics over HTTP: service port = base + offset (referral 1, meetings 2, plans 3,
    # notifications 4). 0 picks free ports (tests); -1 turns the endpoint off.
    http_host: str = "127.0.0.1"
    http_port_base: int = 8100

    # Telemetry: "none" (default), "console", or "otlp" (also chosen by OTEL_EXPORTER_OTLP_ENDPOINT).
    otel_exporter: str = "none"

    def database_url(self, service: str) -> str:
        url = getattr(self, f"{service}_database_url", "")
        if url:
            return url
        path = (self.data_dir / f"{service}.db").resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        return f"sqlite+aiosqlite:///{path}"

    def nats_security(self):  # type: ignore[no-untyped-def]
        """FastStream security for this identity (user/password and/or TLS), or None."""
        import ssl

        from faststream.nats import NatsUserPassword
        from faststream.security import BaseSecurity

        ctx = None
        if self.nats_tls_ca or self.nats_tls_cert:
            ctx = ssl.create_default_context(cafile=self.nats_tls_ca or None)
            if self.nats_tls_cert:
                ctx.load_cert_chain(self.nats_tls_cert, self.nats_tls_key or None)
        if self.nats_user:
            return NatsUserPassword(self.nats_user, self.nats_password, ssl_context=ctx)
        return BaseSecurity(ssl_context=ctx) if ctx else None
