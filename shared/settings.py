"""Settings from environment variables (prefix ``KOOLLE_``), with defaults that work on a laptop."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

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
    # TLS: the CA bundle that signed the server's certificate (empty: the system's), and this
    # identity's client certificate and key where the server verifies clients (mutual TLS).
    # Setting any of them (or a tls:// URL) makes TLS mandatory for this client: a connection the
    # server left in plaintext is closed. The hostname overrides the name checked against the
    # server certificate (when the URL's host is not in it, e.g. an IP address). Handshake first:
    # TLS before the server's INFO (server option handshake_first), so nothing crosses in plaintext.
    nats_tls_ca: str = ""
    nats_tls_cert: str = ""
    nats_tls_key: str = ""
    nats_tls_hostname: str = ""
    nats_tls_handshake_first: bool = False
    # Declare/update the JetStream streams at start. Off where services run with least privilege
    # (ops declares the streams then).
    manage_streams: bool = True
    data_dir: Path = Path("var")
    # Per-service database URL; empty means a SQLite file under data_dir.
    referral_database_url: str = ""
    meetings_database_url: str = ""
    plans_database_url: str = ""
    notifications_database_url: str = ""
    # The secret key of the keyed pseudonyms (shared/pseudonyms.py: e.g. a child's key in the
    # referral index). Empty: <data_dir>/pseudonym.key, created 0600 on first start. Keep it out of
    # the database and its backups' storage; losing it orphans the pseudonyms.
    pseudonym_key_file: Path | None = None
    # SQLite: how long a writer waits for another connection's lock before the statement fails
    # (a consumer then naks and retries; nothing is acked without its commit).
    sqlite_busy_timeout_ms: int = 30000

    # Consumers: how long JetStream waits for an ack before redelivering, how many deliveries
    # before a message goes to the dead-letter stream, and the retry delays in seconds.
    ack_wait_seconds: float = 30.0
    max_deliver: int = 8
    retry_delays: tuple[float, ...] = (1.0, 5.0, 15.0, 60.0, 300.0)
    fetch_batch: int = 256
    # How long an event consumer waits after a first message for more, to handle them in one
    # transaction. The front door's intake never waits (its latency is the one staff see).
    fetch_linger_seconds: float = 0.2

    # Outbox relay: rows per publish round, and how often it polls when nobody wakes it.
    outbox_batch: int = 500
    outbox_poll_seconds: float = 1.0
    # Publish a scan's events of one stream as one JetStream atomic batch (one write instead of one
    # per event), and make many new cases' data keys likewise; false: one publish per event and per
    # key (e.g. a server older than 2.12).
    outbox_atomic_batches: bool = True
    # Published outbox rows are deleted this many hours after their PubAck (hourly; 0 = kept): the
    # stream holds the event, and the table needs only what is not yet published.
    outbox_retention_hours: float = 168.0

    # Retention per kind of data (docs/operations.md, "Retention and erasure"). INTAKE holds raw
    # submissions (henkilötunnus, concern text): the referral service stores each one (a referral or
    # a rejection) within milliseconds, so the stream keeps them only as long as an outage of the
    # referral service may last; a submission not handled by then is lost, so alert on the intake
    # consumer's pending count long before. Dead letters hold failed payloads for the operators.
    # Event streams: 0 = kept (they are the source of read-model rebuilds and statistics).
    retention_intake_hours: float = 168.0
    retention_deadletter_days: float = 30.0
    retention_events_days: float = 0.0

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

    # Who is asking (docs/identity.md): every request carries an OpenID Connect access token (JWT).
    # Staff: the county's identity provider (Entra ID, Keycloak, ...). Empty issuer: no staff tokens.
    oidc_issuer: str = ""
    # The audience the tokens must be issued for (several: comma-separated).
    oidc_audience: str = ""
    # The provider's JWKS (https, or http on loopback); empty: read from the issuer's discovery document.
    oidc_jwks_url: str = ""
    # Claim names; a dotted path reaches into an object (Keycloak: realm_access.roles).
    oidc_claim_person_id: str = "sub"
    oidc_claim_roles: str = "roles"
    oidc_claim_teams: str = "groups"
    oidc_claim_municipality: str = "municipality"
    # Provider role / group name -> Koolle role / team id (JSON object); names not in the map pass as they are.
    oidc_role_map: dict[str, str] = {}
    oidc_team_map: dict[str, str] = {}
    # Guardians: a second trusted issuer with strong identification (Suomi.fi-style) whose person-id
    # claim is the henkilötunnus. Empty issuer: no guardian tokens.
    guardian_oidc_issuer: str = ""
    guardian_oidc_audience: str = ""
    guardian_oidc_jwks_url: str = ""
    guardian_oidc_claim_person_id: str = "sub"
    # Accepted signature algorithms (asymmetric only: "none" and HS* are refused at start).
    oidc_algorithms: tuple[str, ...] = ("RS256", "ES256")
    # Clock skew tolerated on exp / nbf / iat, seconds.
    oidc_leeway_seconds: float = 30.0
    # An unknown key id refetches the JWKS (key rotation) at most once per this many seconds; a JWKS
    # older than the max age is refreshed in the background.
    oidc_jwks_refetch_seconds: float = 10.0
    oidc_jwks_max_age_seconds: float = 3600.0
    oidc_jwks_timeout_seconds: float = 5.0

    def model_post_init(self, __context: Any) -> None:
        # A NATS user's replies come to its own inbox prefix (infra/auth.py grants ``_INBOX_<user>``
        # only): set it from the user unless KOOLLE_NATS_INBOX_PREFIX says otherwise.
        if self.nats_user and self.nats_inbox_prefix == "_INBOX":
            self.nats_inbox_prefix = f"_INBOX_{self.nats_user}"

    def database_url(self, service: str) -> str:
        url = getattr(self, f"{service}_database_url", "")
        if url:
            return url
        path = (self.data_dir / f"{service}.db").resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        return f"sqlite+aiosqlite:///{path}"

    def stream_max_ages(self) -> dict[str, float]:
        """Each stream's maximum age in seconds (0: no maximum), from the retention settings."""
        events = self.retention_events_days * 86400
        return {
            "INTAKE": self.retention_intake_hours * 3600,
            "DEADLETTER": self.retention_deadletter_days * 86400,
            "REFERRAL": events,
            "MEETINGS": events,
            "PLANS": events,
            "NOTIFICATIONS": events,
        }

    def nats_servers(self) -> list[str]:
        return [u.strip() for u in self.nats_url.split(",") if u.strip()]  # a cluster: several URLs

    def nats_tls_wanted(self) -> bool:
        return bool(
            self.nats_tls_ca
            or self.nats_tls_cert
            or self.nats_tls_key
            or self.nats_tls_handshake_first
            or any(u.startswith("tls://") for u in self.nats_servers())
        )

    def nats_tls_context(self) -> ssl.SSLContext | None:
        """The client TLS context from the ``nats_tls_*`` settings, or None (no TLS configured)."""
        if not (self.nats_tls_ca or self.nats_tls_cert or self.nats_tls_key):
            return None
        if self.nats_tls_key and not self.nats_tls_cert:
            raise ValueError("KOOLLE_NATS_TLS_KEY is set without KOOLLE_NATS_TLS_CERT")
        # Verifies the server's chain and hostname (or IP address) against the CA; TLS >= 1.2.
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=self.nats_tls_ca or None)
        if self.nats_tls_cert:
            ctx.load_cert_chain(self.nats_tls_cert, self.nats_tls_key or None)
        return ctx

    def nats_connect_options(self) -> dict[str, Any]:
        """Keyword arguments for ``nats.connect`` with this identity (user/password, inbox, TLS):
        every raw nats-py connection (ops CLI, launcher, tools) connects like the services do."""
        options: dict[str, Any] = {"servers": self.nats_servers()}
        if self.nats_user:
            options.update(user=self.nats_user, password=self.nats_password)
        if self.nats_inbox_prefix != "_INBOX":
            options["inbox_prefix"] = self.nats_inbox_prefix
        ctx = self.nats_tls_context()
        if ctx is not None:
            options["tls"] = ctx
        if self.nats_tls_hostname:
            options["tls_hostname"] = self.nats_tls_hostname
        if self.nats_tls_handshake_first:
            options["tls_handshake_first"] = True
        return options

    def nats_security(self) -> Any:
        """FastStream security for this identity (user/password and/or TLS), or None."""
        from faststream.nats import NatsSecurity, NatsUserPassword

        tls: dict[str, Any] = {
            "ssl_context": self.nats_tls_context(),
            "tls_hostname": self.nats_tls_hostname or None,
            "tls_handshake_first": self.nats_tls_handshake_first,
        }
        if self.nats_user:
            return NatsUserPassword(self.nats_user, self.nats_password, **tls)
        if self.nats_tls_wanted() or self.nats_tls_hostname:
            return NatsSecurity(**tls)
        return None
