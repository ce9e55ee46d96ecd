"""Operator CLI: streams, consumers, service health, dead letters, read-model rebuilds, rejections.

    .venv/bin/python -m infra.ops status
    .venv/bin/python -m infra.ops deadletters [--service meetings]
    .venv/bin/python -m infra.ops replay-deadletter SEQ
    .venv/bin/python -m infra.ops rebuild referral-statistics
    .venv/bin/python -m infra.ops rejected                                           # reasons only
    .venv/bin/python -m infra.ops rejected --raw REJECTION_ID --purpose operations_review  # raw bytes, audited
    .venv/bin/python -m infra.ops access-log CASE_ID --as STAFF_ID                   # who has seen this case's data
    .venv/bin/python -m infra.ops verify-audit [SERVICE]   # the audit logs' hash chains; exit 1 on a break
    .venv/bin/python -m infra.ops purge-stream NAME --reason WHY --requested-by ID --confirm NAME   # audited; services stopped
    .venv/bin/python -m infra.ops erase-family CASE_ID --purpose retention_ended [--reference ID]  # crypto-shredding, audited

Shows ids, subjects, counts and reason codes only: never a payload (dead letters hold personal data),
except one rejection's raw bytes when asked for by --raw (recorded in the access audit).
Connects as the ``ops`` NATS identity: KOOLLE_NATS_USER/PASSWORD when set, else the password ``make up``
generated in the data dir (KOOLLE_DATA_DIR/nats/identities/ops.password); TLS from KOOLLE_NATS_TLS_*.
``rejected`` and ``access-log`` are requests like a staff app's, verified by the services: they carry
an access token, KOOLLE_TOKEN or --token when given; otherwise, on the embedded default (no
KOOLLE_OIDC_ISSUER), one minted with the data dir's local signing key: for ``rejected`` an ops token
for ``ops:<login>``, for ``access-log`` a staff token for ``--as STAFF_ID`` with the roster's claims.
"""

from __future__ import annotations

import asyncio
import base64
import getpass
import json
import os
import sys
import time
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

import nats
import typer
from nats.js.api import StreamInfo
from nats.js.errors import NotFoundError
from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from infra.auth import credentials_path, inbox_prefix, load_passwords
from infra.identity_provider import KEY_FILE, LocalIssuer
from infra.run import SERVICES
from infra.token import staff_token
from shared.client import call, connect
from shared.clock import local
from shared.contracts import STREAMS, Reply
from shared.contracts.ops import ERASE_SUBJECT, REJECTED_SUBJECT
from shared.policy import OPS, PURPOSES
from shared.settings import Settings

app = typer.Typer(help=__doc__, no_args_is_help=True)
# Piped or captured output gets room for the tables (rich would assume 80 columns); a terminal its own width.
console = Console(width=None if sys.stdout.isatty() or "COLUMNS" in os.environ else 120)
err_console = Console(stderr=True)


def _url(url: str | None) -> str:
    return url or Settings().nats_url


def ops_settings(url: str | None = None, identity: str = "ops") -> tuple[Settings, str]:
    """The settings ops connects with, and where its identity came from (for error messages).

    The identity and TLS come from KOOLLE_NATS_* like a service's. Without KOOLLE_NATS_USER, the
    ``identity`` user's password (``ops``; ``staffapp`` for a staff app's query such as the access
    log, which the ops NATS identity may not send) is read from the data dir (KOOLLE_DATA_DIR), where
    ``make up`` / ``infra.run`` generated it; --url only changes the address."""
    settings = Settings(nats_url=url) if url else Settings()
    if settings.nats_user:
        return settings, f"user {settings.nats_user} (KOOLLE_NATS_USER)"
    path = credentials_path(settings.data_dir)
    try:
        passwords = load_passwords(path)
    except (OSError, ValueError) as exc:
        raise OpsError(f"cannot read the ops password in {path}: {type(exc).__name__}") from None
    if not passwords or identity not in passwords:
        return settings, f"no user (no {path}: set KOOLLE_DATA_DIR to the data dir of `make up`, or KOOLLE_NATS_USER)"
    settings = settings.model_copy(
        update={"nats_user": identity, "nats_password": passwords[identity], "nats_inbox_prefix": inbox_prefix(identity)}
    )
    return settings, f"user {identity} (password from {path})"


class OpsError(Exception):
    """A failure the operator gets as one line (no traceback)."""


TOKEN_TTL_SECONDS = 300
"""A minted token lives as long as one command needs it."""


def access_token(given: str | None, *, ops: bool = False, staff_id: str | None = None) -> tuple[str, str]:
    """The access token a request carries, and where it came from (for messages).

    ``given`` (--token) or KOOLLE_TOKEN when set: the token of whoever runs the command, from the
    county's identity provider. Otherwise, on the embedded default only (no KOOLLE_OIDC_ISSUER),
    a short-lived token signed with the data dir's local key, which the services of ``make up``
    trust: an ops token for ``ops:<login>`` (``ops=True``), or a staff token for ``staff_id`` with
    the roster's roles and teams (infra/token.py)."""
    token = given or os.environ.get("KOOLLE_TOKEN")
    if token:
        return token.strip(), "--token" if given else "KOOLLE_TOKEN"
    settings = Settings()
    if settings.oidc_issuer:
        raise OpsError("KOOLLE_OIDC_ISSUER names a real identity provider: give your access token with KOOLLE_TOKEN or --token")
    key = settings.data_dir / KEY_FILE
    if not key.exists():
        raise OpsError(
            f"no local signing key at {key}: set KOOLLE_DATA_DIR to the data dir of `make up`, or give KOOLLE_TOKEN / --token"
        )
    issuer = LocalIssuer.load_or_create(settings.data_dir)
    if ops:
        who = ops_actor()
        return issuer.mint_staff(who, roles={OPS}, ttl_seconds=TOKEN_TTL_SECONDS), f"an ops token for {who} (key {key})"
    if not staff_id:
        raise OpsError("say whose token to use: --as STAFF_ID (a roster person), or give KOOLLE_TOKEN / --token")
    try:
        token = staff_token(issuer, staff_id, ttl_seconds=TOKEN_TTL_SECONDS)
    except LookupError:
        raise OpsError(
            f"{staff_id!r} is in no roster: give a token with KOOLLE_TOKEN or --token "
            "(e.g. from python -m infra.token staff ID --role worker --team TEAM)"
        ) from None
    return token, f"a staff token for {staff_id} (roster claims, key {key})"


def _helsinki(stored: str) -> str:
    """A time the services gave as stored (ISO, UTC), as the operator reads it: Helsinki time."""
    return local(datetime.fromisoformat(stored)).strftime("%Y-%m-%d %H:%M:%S")


def refusal_text(reply: Reply) -> str:
    """A refused reply as one line: codes, fields and the policy's reason."""
    reason = (reply.data or {}).get("reason") or (reply.data or {}).get("successor")
    codes = ", ".join(f"{e.code} ({e.field})" for e in reply.errors) or "refused"
    return f"{codes}{f': {reason}' if reason else ''}"


async def _connect(url: str | None, identity: str = "ops") -> nats.NATS:
    """Connect as ops (or the staff app); a failure prints one line to stderr and exits 2 (no traceback)."""
    errors: list[BaseException] = []

    async def remember(exc: BaseException) -> None:  # instead of nats-py's logged traceback
        errors.append(exc)

    try:
        settings, who = ops_settings(url, identity)
        try:
            return await connect(settings, connect_timeout=3, max_reconnect_attempts=1, allow_reconnect=False, error_cb=remember)
        except Exception as exc:  # noqa: BLE001 - any failure to connect is reported the same way
            cause = errors[-1] if errors else exc
            text = str(cause).removeprefix("nats: ").strip("'") or type(cause).__name__
            raise OpsError(f"cannot connect to NATS at {settings.nats_url} as {who}: {text}") from None
    except OpsError as exc:
        err_console.print(f"error: {exc}", soft_wrap=True)
        raise typer.Exit(2) from None


async def status_data(nc: nats.NATS) -> dict[str, Any]:
    js = nc.jetstream()
    streams: list[StreamInfo] = []
    consumers: list[Any] = []
    for name in STREAMS:
        try:
            info = await js.stream_info(name)
        except NotFoundError:
            continue
        streams.append(info)
        for c in await js.consumers_info(name):
            consumers.append(c)
    health = {}
    for s in SERVICES:
        try:
            health[s] = json.loads((await nc.request(f"ops.health.{s}", b"{}", timeout=1)).data)
        except Exception:  # noqa: BLE001
            health[s] = {"service": s, "ready": False, "live": False}
    return {"streams": streams, "consumers": consumers, "health": health}


def describe_consumer(c: Any, handled: dict[str, int] | None = None) -> dict[str, Any]:
    """A consumer by what it is: the service that owns it and the subjects it consumes. Durables are
    named ``<service>-from-<stream>`` for a service's subjects on one stream, or
    ``<service>-<subject with dashes>`` for a lone one (shared.messaging.subscription.Consumed);
    a consumer without a durable name is an ephemeral reader (``infra.run``'s event printer, a
    rebuild in progress, a test), whose server-given name means nothing, so it is not shown."""
    cfg = c.config
    subject = cfg.filter_subject or ", ".join(cfg.filter_subjects or []) or "(all)"
    durable = cfg.durable_name or ""
    service = durable.split("-", 1)[0] if durable.split("-", 1)[0] in SERVICES else ""
    return {
        "stream": c.stream_name,
        "service": service or ("(ephemeral)" if not durable else durable),
        "subject": subject,
        "durable": durable,
        "handled": (handled or {}).get(durable),
        "pending": c.num_pending or 0,
        "ack_pending": c.num_ack_pending or 0,
        "redelivered": c.num_redelivered or 0,
        "waiting": c.num_waiting or 0,
    }


@app.command()
def status(url: str = typer.Option(None, help="NATS URL (default KOOLLE_NATS_URL)")) -> None:
    """Each service's health, the streams, and every consumer by service and subject."""

    async def run() -> None:
        nc = await _connect(url)
        data = await status_data(nc)
        await nc.close()
        t = Table(title="Services", box=box.SIMPLE_HEAD, pad_edge=False)
        for col in ("service", "ready", "db", "broker", "published", "handled", "dead-lettered"):
            t.add_column(col)
        handled: dict[str, int] = {}
        for s, h in data["health"].items():
            handled.update(h.get("consumers", {}))
            t.add_row(
                s,
                "yes" if h.get("ready") else "[red]no[/red]",
                "ok" if h.get("db") else "[red]down[/red]" if "db" in h else "-",
                "ok" if h.get("broker") else "[red]down[/red]" if "broker" in h else "-",
                str(h.get("outbox_published", "-")),
                str(sum(h.get("consumers", {}).values())) if "consumers" in h else "-",
                str(h.get("dead_letters", "-")),
            )
        console.print(t)
        t = Table(title="Streams")
        for col in ("stream", "messages", "bytes", "first seq", "last seq", "consumers"):
            t.add_column(col, justify="right" if col != "stream" else "left")
        for si in data["streams"]:
            st = si.state
            t.add_row(
                si.config.name, str(st.messages), str(st.bytes), str(st.first_seq), str(st.last_seq), str(st.consumer_count)
            )
        console.print(t)
        t = Table(
            title="Consumers (durable name: <service>-from-<stream>, or <service>-<subject with dashes> for a lone subject)",
            box=box.SIMPLE_HEAD,
            pad_edge=False,
        )
        for col in ("service", "consumes", "handled", "pending", "unacked", "redeliv.", "waiting"):
            t.add_column(col, no_wrap=col != "consumes", overflow="fold")
        rows = [describe_consumer(c, handled) for c in data["consumers"]]
        for r in sorted(rows, key=lambda r: (r["service"] == "(ephemeral)", r["service"], r["subject"])):
            stalled = r["pending"] and not r["waiting"] and r["durable"]
            t.add_row(
                r["service"],
                r["subject"],
                "-" if r["handled"] is None else str(r["handled"]),
                f"[yellow]{r['pending']}[/yellow]" if stalled else str(r["pending"]),
                str(r["ack_pending"]),
                str(r["redelivered"]),
                str(r["waiting"]),
            )
        console.print(t)

    asyncio.run(run())


async def list_dead_letters(nc: nats.NATS, service: str | None = None) -> list[dict[str, Any]]:
    js = nc.jetstream()
    try:
        info = await js.stream_info("DEADLETTER")
    except NotFoundError:
        return []
    if not info.state.messages:  # an empty stream reports first_seq 0 (or past the last), which has no message
        return []
    out = []
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        try:
            m = await js.get_msg("DEADLETTER", seq)
        except NotFoundError:
            continue
        h = m.headers or {}
        if service and not m.subject.startswith(f"deadletter.{service}."):
            continue
        out.append(
            {
                "seq": seq,
                "consumer": h.get("Koolle-Dlq-Consumer", ""),
                "reason": h.get("Koolle-Dlq-Reason", ""),
                "detail": h.get("Koolle-Dlq-Detail", ""),
                "subject": h.get("Koolle-Dlq-Subject", ""),
                "original_seq": h.get("Koolle-Dlq-Stream-Seq", ""),
                "deliveries": h.get("Koolle-Dlq-Deliveries", ""),
                "case_id": h.get("Koolle-Case-Id", ""),
            }
        )
    return out


@app.command()
def deadletters(service: str = typer.Option(None), url: str = typer.Option(None)) -> None:
    """List dead letters with their reasons (no payloads)."""

    async def run() -> None:
        nc = await _connect(url)
        rows = await list_dead_letters(nc, service)
        await nc.close()
        if not rows:
            console.print(f"no dead letters{f' of {service}' if service else ''}: the DEADLETTER stream holds none")
            return
        t = Table(title=f"Dead letters ({len(rows)})")
        for col in ("seq", "consumer", "reason", "detail", "subject", "deliveries", "case"):
            t.add_column(col)
        for r in rows:
            t.add_row(
                str(r["seq"]), r["consumer"], r["reason"], r["detail"][:60], r["subject"], r["deliveries"], r["case_id"][:8]
            )
        console.print(t)

    asyncio.run(run())


class ReplayRefused(Exception):
    """The owning service refused or failed the replay; ``code`` says why (docs/operations.md)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


async def replay_dead_letter(nc: nats.NATS, seq: int, timeout: float = 30.0) -> str:
    """Send a dead letter's original message back to the consumer that gave up on it, then remove
    the dead letter. Ops publishes nothing on the message's behalf: it asks the owning service
    (``ops.replay.<service>``, the service named by the dead letter's subject, which only that
    service may publish to) to re-read the message from its own stream by sequence and handle it
    through its normal consumer path (docs/operations.md). Returns ``handled`` or ``duplicate``
    (already handled: no second effect); raises :class:`ReplayRefused` otherwise."""
    from shared.messaging.redelivery import replay_subject

    js = nc.jetstream()
    try:
        m = await js.get_msg("DEADLETTER", seq)
    except NotFoundError:  # never there, or already replayed and removed
        raise ReplayRefused("no_such_dead_letter") from None
    h = m.headers or {}
    parts = (m.subject or "").split(".")
    if len(parts) != 3 or parts[1] not in SERVICES:
        raise ReplayRefused("unknown_consumer")
    service, durable = parts[1], parts[2]  # from the subject, which only that service may publish to
    try:
        sequence = int(h.get("Koolle-Dlq-Stream-Seq", ""))
    except ValueError:
        raise ReplayRefused("bad_request") from None
    request = {"stream": h.get("Koolle-Dlq-Stream", ""), "sequence": sequence, "durable": durable}
    try:
        reply = await nc.request(replay_subject(service), json.dumps(request).encode(), timeout=timeout)
    except (nats.errors.TimeoutError, nats.errors.NoRespondersError):
        raise ReplayRefused("no_answer") from None
    answer = json.loads(reply.data)
    if not answer.get("ok"):
        raise ReplayRefused(str(answer.get("error", "refused")))
    await js.delete_msg("DEADLETTER", seq)
    return str(answer["outcome"])


@app.command("replay-deadletter")
def replay_deadletter(seq: int, url: str = typer.Option(None)) -> None:
    """Send one dead letter back to the consumer that gave up on it (after the cause is fixed)."""

    async def run() -> str:
        nc = await _connect(url)
        try:
            return await replay_dead_letter(nc, seq)
        finally:
            await nc.close()

    try:
        outcome = asyncio.run(run())
    except ReplayRefused as exc:
        listed = "" if exc.code == "no_such_dead_letter" else " (it stays listed)"
        console.print(f"[red]dead letter {seq} not replayed: {exc.code}[/red]{listed}")
        raise typer.Exit(1) from None
    console.print(f"replayed dead letter {seq}: {outcome}")


async def unused_consumers(nc: nats.NATS, delete: bool = False) -> list[dict[str, Any]]:
    """Durable consumers named for a service (``<service>-…``) on Koolle's streams that no service
    runs any more (infra/wiring.py: e.g. a service's own events, which it now applies in the
    emitting transaction, or a retired event version). They hold nothing, but their pending count
    grows in ``status``. With ``delete``, each is deleted (ops may: ``$JS.API.CONSUMER.DELETE``)."""
    from infra.wiring import durables

    wired = durables()
    js = nc.jetstream()
    out = []
    for name in STREAMS:
        try:
            infos = await js.consumers_info(name)
        except NotFoundError:
            continue
        for c in infos:
            durable = c.config.durable_name or ""
            if durable.split("-", 1)[0] not in SERVICES or (name, durable) in wired:
                continue
            row = describe_consumer(c)
            if delete:
                await js.delete_consumer(name, durable)
            out.append(row)
    return out


@app.command("unused-consumers")
def unused_consumers_command(
    delete: bool = typer.Option(False, "--delete", help="delete them (after every replica runs this version)"),
    url: str = typer.Option(None),
) -> None:
    """List the durable consumers no service runs any more (and, with --delete, delete them)."""

    async def run() -> list[dict[str, Any]]:
        nc = await _connect(url)
        try:
            return await unused_consumers(nc, delete)
        finally:
            await nc.close()

    rows = asyncio.run(run())
    if not rows:
        console.print("no unused consumers: every durable consumer on the streams is one a service runs")
        return
    t = Table(title=f"Unused consumers ({len(rows)}){': deleted' if delete else ''}")
    for col in ("stream", "durable", "subject", "pending"):
        t.add_column(col)
    for r in rows:
        t.add_row(r["stream"], r["durable"], r["subject"], str(r["pending"]))
    console.print(t)
    if not delete:
        console.print("delete them with: python -m infra.ops unused-consumers --delete")


@app.command("declare-streams")
def declare_streams(url: str = typer.Option(None)) -> None:
    """Create the catalogue's streams and the case-key bucket, or bring them to this configuration.

    What a service with KOOLLE_MANAGE_STREAMS=true does at start, for a deployment whose services run
    least-privileged (KOOLLE_MANAGE_STREAMS=false): run it as ops before their first start, after an
    upgrade, and with the deployment's KOOLLE_STREAM_REPLICAS and retention settings."""
    from shared.messaging.streams import ensure_streams

    settings = Settings()

    async def run() -> list[StreamInfo]:
        nc = await _connect(url)
        try:
            js = nc.jetstream(timeout=10)
            await ensure_streams(js, settings.duplicate_window_seconds, settings.stream_replicas, settings.stream_max_ages())
            return [await js.stream_info(name) for name in STREAMS]
        finally:
            await nc.close()

    try:
        infos = asyncio.run(run())
    except RuntimeError as exc:  # StreamLayoutOutdated, or a change the server refuses
        err_console.print(f"error: {exc}", soft_wrap=True)
        raise typer.Exit(1) from None
    t = Table(title="Streams declared", box=box.SIMPLE)
    for col in ("stream", "replicas", "max age (days)", "messages"):
        t.add_column(col)
    for i in infos:
        age = f"{i.config.max_age / 86400:g}" if i.config.max_age else "kept"
        t.add_row(i.config.name or "", str(i.config.num_replicas), age, str(i.state.messages))
    console.print(t)


@app.command("purge-stream")
def purge_stream_command(
    stream: str,
    reason: str = typer.Option(..., help="Why (at least 10 characters; audited)."),
    requested_by: str = typer.Option(..., "--requested-by", help="Your staff id (audited)."),
    confirm: str = typer.Option(..., help="The stream's name again."),
    url: str = typer.Option(None),
) -> None:
    """Empty a stream: audited, services stopped, sequences continue (infra/stream_purge.py)."""
    from infra.stream_purge import PurgeRefused, purge_stream

    if confirm != stream:
        raise typer.BadParameter("--confirm must repeat the stream's name")
    settings = Settings()

    async def run() -> dict[str, Any]:
        nc = await _connect(url)
        try:
            return await purge_stream(
                nc,
                stream,
                reason=reason,
                requested_by=requested_by,
                audit_file=settings.data_dir / "audit" / "ops.jsonl",
            )
        finally:
            await nc.close()

    try:
        record = asyncio.run(run())
    except PurgeRefused as exc:
        console.print(f"[red]not purged: {exc.code}[/red]")
        raise typer.Exit(1) from None
    console.print(f"purged {stream}: {record['messages']} messages; sequences continue at {record['last_seq'] + 1}")


READ_MODELS = ("referral-statistics", "statutory-statistics", "joint-work-statistics", "meeting-statistics", "wellbeing")
STORED = {
    "referral-statistics": "referral",
    "statutory-statistics": "referral",
    "joint-work-statistics": "meetings",
    "meeting-statistics": "meetings",
    "wellbeing": "plans",
}
"""Read models whose rebuild is stored in the owning service's database (and served by its query)."""


async def rebuild_and_store(
    model: str, nc: nats.NATS, settings: Settings | None = None, progress: Any = None, keys: nats.NATS | None = None
) -> Any:
    """Rebuild a statistics read model from the streams and put it in place of the live rows in the
    owning service's database (one transaction), where the service's query serves it. ``keys``: a
    connection as the owning service, which may read the case keys to open sealed fields as the
    live read model does (ops may not)."""
    kjs = keys.jetstream() if keys is not None else None
    from services.meetings.bootstrap import bootstrap as meetings_bootstrap
    from services.meetings.projections import JointWorkRebuild, MeetingStatisticsRebuild
    from services.plans.bootstrap import bootstrap as plans_bootstrap
    from services.plans.projections import WellbeingRebuild
    from services.referral.bootstrap import bootstrap as referral_bootstrap
    from services.referral.projections import ReferralStatistics, StatutoryRebuild

    built: Any
    if model == "referral-statistics":
        built, svc = await ReferralStatistics.rebuild(nc.jetstream(), progress=progress, keys=kjs), referral_bootstrap(settings)
    elif model == "statutory-statistics":
        built, svc = await StatutoryRebuild.rebuild(nc.jetstream(), progress=progress, keys=kjs), referral_bootstrap(settings)
    elif model == "joint-work-statistics":
        built, svc = await JointWorkRebuild.rebuild(nc.jetstream(), progress=progress, keys=kjs), meetings_bootstrap(settings)
    elif model == "meeting-statistics":
        built, svc = (
            await MeetingStatisticsRebuild.rebuild(nc.jetstream(), progress=progress, keys=kjs),
            meetings_bootstrap(settings),
        )
    elif model == "wellbeing":
        built, svc = await WellbeingRebuild.rebuild(nc.jetstream(), progress=progress, keys=kjs), plans_bootstrap(settings)
    else:
        raise ValueError(f"not a stored read model: {model}")
    await svc.db.create_all()
    try:
        await built.store(svc)
    finally:
        await svc.db.dispose()
    return built


@app.command()
def rebuild(model: str = typer.Argument("referral-statistics"), url: str = typer.Option(None)) -> None:
    """Rebuild a read model from its streams, with a progress bar: referral-statistics (referrals per
    municipality, month and channel, statutory and urgent ones; stored in the referral database and
    served by query.referral.channel_statistics.v1), statutory-statistics (THL's decisions within 7
    working days and assessments within 3 months, per municipality and month; stored in the referral
    database and served by query.referral.statistics.v1) or joint-work-statistics (first meeting,
    invited and attended, feedback, adoption stage and indicator, onward-service delays; stored in the
    meetings database and served by query.meetings.joint_work_statistics.v1), meeting-statistics
    (joint meetings per municipality, unit and team; stored in the meetings database and served by
    query.meetings.statistics.v2) or wellbeing (the wellbeing star measurements; stored in the plans
    database and served by query.plans.effectiveness.v2 and the wellbeing chart)."""
    if model not in READ_MODELS:
        raise typer.BadParameter(f"known read models: {', '.join(READ_MODELS)}")

    async def run() -> None:
        from services.referral.projections import ReferralStatistics

        nc = await _connect(url)
        started = time.monotonic()
        # The total is known once the replay has read the stream's state (None until then: "?").
        with Progress(TextColumn(f"rebuilding {model}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()) as bar:
            task = bar.add_task("rebuild", total=None)

            def progress(seen: int, total: int) -> None:
                bar.update(task, completed=seen, total=total)

            built: Any
            # The sealed fields are opened with the owning service's right to read the case keys.
            keys = await _connect(url, identity=STORED.get(model, "referral"))
            try:
                built = await rebuild_and_store(model, nc, progress=progress, keys=keys)
            finally:
                await keys.close()
            bar.update(task, completed=built.events + built.unreadable, total=built.events + built.unreadable)
        await nc.close()
        skipped = f"; {built.unreadable:,} unreadable skipped (see deadletters)" if built.unreadable else ""
        stored = f"; stored in the {STORED[model]} database" if model in STORED else ""
        console.print(f"rebuilt from {built.events:,} events in {time.monotonic() - started:.1f} s{skipped}{stored}")
        if isinstance(built, ReferralStatistics):
            t = Table(title=f"Referral statistics ({built.events:,} events)")
            for col in ("municipality", "month", "channel", "referrals", "statutory", "urgent"):
                t.add_column(col)
            for r in built.rows():
                t.add_row(*(str(r[c]) for c in ("municipality", "month", "channel", "referrals", "statutory", "urgent")))
        else:
            columns: tuple[str, ...]
            if model == "statutory-statistics":
                from services.referral.statistics import COLUMNS

                columns, rows, title = COLUMNS, built.model.figures(), "Statutory statistics"
            elif model == "wellbeing":
                per_source: dict[str, int] = {}
                for f in built.facts.values():
                    per_source[f["source"]] = per_source.get(f["source"], 0) + 1
                columns, title = ("source", "measurements"), "Wellbeing star measurements"
                rows = [{"source": k, "measurements": v} for k, v in sorted(per_source.items())]
            elif model == "meeting-statistics":
                from services.meetings.stats import compute

                m = built.model
                counts = compute(m.meetings(), m.convenings(), m.units())["per_municipality_month"]
                columns, rows, title = ("municipality", "month", "meetings"), counts, "Joint-meeting statistics"
            else:
                from services.meetings.joint_statistics import to_csv

                text = to_csv(built.model.figures()).splitlines()
                columns = tuple(text[0].split(","))[:12]  # the first columns fit a terminal; the query has all
                rows = [dict(zip(text[0].split(","), line.split(","), strict=True)) for line in text[1:]]
                title = "Joint-work statistics"
            t = Table(title=f"{title} ({built.events:,} events)")
            for col in columns:
                t.add_column(col)
            for row in rows:
                t.add_row(*("" if row[c] is None else str(row[c]) for c in columns))
        console.print(t)

    asyncio.run(run())


# -- rejected intake submissions --------------------------------------------------------------------


def ops_actor() -> str:
    """Who reads, for the audit log: ``ops:<login>`` (an Id: letters, digits and ._:- only)."""
    try:
        login = getpass.getuser()
    except (KeyError, OSError):  # no login name (e.g. a container without a passwd entry)
        login = str(os.getuid())
    return "ops:" + ("".join(ch if ch.isalnum() or ch in "._-" else "-" for ch in login) or "unknown")


async def rejected_submissions(
    nc: nats.NATS, *, token: str, purpose: str = "operations_review", limit: int = 50, rejection_id: str | None = None
) -> Reply:
    """Ask the referral service (``ops.referral.rejected.v1``, with an ops token): the newest
    rejections with their reasons, or one rejection with its raw bytes (the service audits that
    read, with the token's person as the reader)."""
    body: dict[str, Any] = {"purpose": purpose, "limit": limit}
    if rejection_id is not None:
        body["rejection_id"] = rejection_id
    return await call(nc, REJECTED_SUBJECT, body, timeout=5, attempts=1, token=token)


@app.command()
def rejected(
    raw: str = typer.Option(None, "--raw", metavar="REJECTION_ID", help="Write this rejection's raw bytes to stdout (audited)."),
    purpose: str = typer.Option(
        None, help="Why the raw bytes are read: operations_review (required with --raw; audited). Listing: operations_review."
    ),
    token: str = typer.Option(None, help="An access token with the ops role (default KOOLLE_TOKEN, else minted locally)."),
    limit: int = typer.Option(50, min=1, max=1000, help="Newest N rejections."),
    url: str = typer.Option(None),
) -> None:
    """Rejected intake submissions with their reasons (field and code; never the payload).

    The raw bytes as received only with --raw REJECTION_ID --purpose operations_review: they go to
    stdout exactly as received, and the referral service records the read (the token's person, the
    purpose, which rejection) in its access audit log before it answers."""
    if raw is not None and not purpose:
        raise typer.BadParameter(
            "--raw needs --purpose operations_review (the read is recorded in the access audit)", param_hint="--purpose"
        )
    try:
        rejection_id = str(UUID(raw)) if raw is not None else None
    except ValueError:
        raise typer.BadParameter("not a rejection id (a UUID, as `rejected` lists them)", param_hint="--raw") from None

    async def run() -> tuple[Reply, str]:
        try:
            bearer, source = access_token(token, ops=True)
        except OpsError as exc:
            err_console.print(f"error: {exc}", soft_wrap=True)
            raise typer.Exit(2) from None
        nc = await _connect(url)
        try:
            reply = await rejected_submissions(
                nc, token=bearer, purpose=purpose or "operations_review", limit=limit, rejection_id=rejection_id
            )
            return reply, source
        except TimeoutError:
            err_console.print("error: the referral service did not answer ops.referral.rejected.v1 (is it running?)")
            raise typer.Exit(1) from None
        finally:
            await nc.close()

    reply, source = asyncio.run(run())
    if not reply.ok or reply.data is None:
        err_console.print(f"error: {refusal_text(reply)} (token: {source})", soft_wrap=True)
        raise typer.Exit(1)
    if rejection_id is not None:
        r = reply.data["rejection"]
        data = base64.b64decode(r["raw_base64"])
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        reasons = ", ".join(f"{x['field']}:{x['code']}" for x in r["reasons"])
        err_console.print(
            f"rejection {r['rejection_id']}: {len(data)} bytes as received ({reasons}); "
            f"this read is recorded in referral's access audit log with the token's person ({source}), purpose {purpose}",
            soft_wrap=True,
        )
        return
    rows = reply.data["rejections"]
    if not rows:
        console.print("no rejected submissions")
        return
    t = Table(title=f"Rejected submissions (newest {len(rows)} of {reply.data['total']})", box=box.SIMPLE_HEAD, pad_edge=False)
    for col in ("received (Helsinki)", "rejection id", "submission id", "intake seq", "reasons (field: code)"):
        t.add_column(col, overflow="fold")
    for r in rows:
        t.add_row(
            _helsinki(r["received_at"]),
            r["rejection_id"],
            r["submission_id"],
            str(r["stream_seq"] or "-"),
            "\n".join(f"{x['field']}: {x['code']}" for x in r["reasons"]),
        )
    console.print(t)
    console.print("raw bytes of one: rejected --raw REJECTION_ID --purpose operations_review (audited)")


# -- erasure of one family at the end of its retention (docs/operations.md §11) ----------------------


async def erase_family_request(nc: nats.NATS, *, token: str, case_id: str, purpose: str, reference: str | None) -> Reply:
    """Ask the referral service (``ops.referral.erase_family.v1``, with an ops token) to erase a case:
    it audits the order, destroys the case's data key and tells every service (``referral.case_erased.v1``)."""
    body: dict[str, Any] = {"command_id": str(uuid4()), "case_id": case_id, "ground": purpose}
    if reference:
        body["reference"] = reference
    return await call(nc, ERASE_SUBJECT, body, timeout=10, attempts=1, token=token)


@app.command("erase-family")
def erase_family(
    case_id: str = typer.Argument(..., help="The case to erase (its id)."),
    purpose: str = typer.Option(..., help="Why: retention_ended (the only ground; written to the audit log)."),
    reference: str = typer.Option(None, help="The retention decision or ticket it rests on (an id, no names; audited)."),
    token: str = typer.Option(None, help="An access token with the ops role (default KOOLLE_TOKEN, else minted locally)."),
    url: str = typer.Option(None),
) -> None:
    """Erase one family's data at the end of its retention: the case's data key is destroyed (its
    sealed fields in every stream, replica and backup become unreadable at once), and every service
    blanks or deletes the family's personal data in its own database. Ids, codes, dates and counts
    stay: statistics do not change. Audited (the token's person, the purpose, the reference)."""
    try:
        case = str(UUID(case_id))
    except ValueError:
        raise typer.BadParameter("not a case id (a UUID)", param_hint="CASE_ID") from None
    if purpose != "retention_ended":
        raise typer.BadParameter("the only ground is retention_ended", param_hint="--purpose")

    async def run() -> tuple[Reply, str]:
        try:
            bearer, source = access_token(token, ops=True)
        except OpsError as exc:
            err_console.print(f"error: {exc}", soft_wrap=True)
            raise typer.Exit(2) from None
        nc = await _connect(url)
        try:
            return await erase_family_request(nc, token=bearer, case_id=case, purpose=purpose, reference=reference), source
        except TimeoutError:
            err_console.print(f"error: the referral service did not answer {ERASE_SUBJECT} (is it running?); nothing was erased")
            raise typer.Exit(1) from None
        finally:
            await nc.close()

    reply, source = asyncio.run(run())
    if not reply.ok or reply.data is None:
        err_console.print(f"error: {refusal_text(reply)} (token: {source})", soft_wrap=True)
        raise typer.Exit(1)
    d = reply.data
    console.print(
        f"case {d['case_id']} erased: data key {'destroyed' if d['key_destroyed'] else 'already gone'}; "
        f"referral.case_erased.v1 {d['event_id']} tells every service to erase its rows "
        f"(follow with `status`: the consumers of referral.case_erased.v1 in each service). Audited as the token's person ({source})."
    )


# -- who has seen my data (Client Data Act 703/2023 s. 11) ----------------------------------------

ACCESS_LOG_SERVICES = ("meetings", "plans", "notifications")
"""Besides referral, the services that answer query.<service>.access_log.v2 for a case."""


async def gather_access_log(
    nc: nats.NATS, *, case_id: str, token: str, purpose: str = "access_request", timeout: float = 3.0
) -> dict[str, Any]:
    """One answer from all four services' audit logs for one case, oldest first
    (``query.<service>.access_log.v2``, each verified and decided by the policy: the token's person
    must reach the case, as a worker of it, its team's lead, or its guardian). Every service
    records this read. ``services`` says how each answered; an answer with a service that did not
    answer, or refused, is marked incomplete. ``errors``: referral's codes when it refused or did
    not know the case; ``reason``: the policy's reason of a refusal."""
    case = str(UUID(case_id))
    status: dict[str, str] = {}
    reasons: dict[str, str] = {}
    entries: list[dict[str, Any]] = []

    async def ask(service: str) -> None:
        body = {"case_id": case, "purpose": purpose} if service == "referral" else {"case_ids": [case], "purpose": purpose}
        try:
            r = await call(nc, f"query.{service}.access_log.v2", body, timeout=timeout, attempts=1, token=token)
        except TimeoutError:
            status[service] = "no_answer"
            return
        status[service] = "ok" if r.ok else (r.errors[0].code if r.errors else "refused")
        if r.ok and r.data is not None:
            entries.extend(r.data["entries"])
        elif r.data and r.data.get("reason"):
            reasons[service] = str(r.data["reason"])

    # Referral first: when it refuses (or does not know the case), the others are not asked, so a
    # refused gathering leaves one refused read on record, not four.
    await ask("referral")
    if status.get("referral") == "ok":
        await asyncio.gather(*(ask(s) for s in ACCESS_LOG_SERVICES))
    entries.sort(key=lambda e: datetime.fromisoformat(e["at"]))
    ok = status.get("referral") == "ok"
    return {
        "ok": ok,
        "errors": [] if ok else [status.get("referral", "no_answer")],
        "reason": reasons.get("referral", ""),
        "cases": [case] if ok else [],
        "entries": entries,
        "services": status,
        "complete": all(status.get(s) == "ok" for s in ("referral", *ACCESS_LOG_SERVICES)),
    }


@app.command("access-log")
def access_log(
    case_id: str = typer.Argument(..., metavar="CASE_ID", help="The family's case id; '-' reads it from stdin."),
    as_staff: str = typer.Option(
        None, "--as", metavar="STAFF_ID", help="Whose staff token to mint locally (a roster person; the read is audited as them)."
    ),
    token: str = typer.Option(None, help="Your access token (default KOOLLE_TOKEN; else minted locally for --as)."),
    purpose: str = typer.Option("access_request", help="Why the log is read, a documented purpose (audited)."),
    as_json: bool = typer.Option(False, "--json", help="Print the answer as JSON."),
    url: str = typer.Option(None),
) -> None:
    """Who has seen one case's data: every service's audit records, oldest first (Client Data Act 703/2023 s. 11)."""
    if case_id == "-":
        case_id = sys.stdin.readline().strip()
    try:
        case = str(UUID(case_id))
    except ValueError:
        raise typer.BadParameter(
            "not a case id (a UUID); the access log is asked for by case, not by henkilötunnus", param_hint="CASE_ID"
        ) from None
    if purpose not in PURPOSES:
        raise typer.BadParameter(f"not a documented purpose; one of: {', '.join(PURPOSES)}", param_hint="--purpose")

    async def run() -> tuple[dict[str, Any], str]:
        try:
            bearer, source = access_token(token, staff_id=as_staff)
        except OpsError as exc:
            err_console.print(f"error: {exc}", soft_wrap=True)
            raise typer.Exit(2) from None
        nc = await _connect(url, "staffapp")  # a staff app's query: the staff app's NATS identity
        try:
            return await gather_access_log(nc, case_id=case, token=bearer, purpose=purpose), source
        finally:
            await nc.close()

    answer, source = asyncio.run(run())
    if as_json:
        console.print_json(json.dumps(answer))
        if not answer["ok"]:
            raise typer.Exit(1)
        return
    if not answer["ok"]:
        reason = f": {answer['reason']}" if answer["reason"] else ""
        err_console.print(f"error: referral answered {', '.join(answer['errors'])}{reason} (token: {source})", soft_wrap=True)
        raise typer.Exit(1)
    t = Table(title=f"Access log: {len(answer['cases'])} case(s), {len(answer['entries'])} record(s)")
    t.add_column("when (Helsinki)", no_wrap=True, min_width=19)  # whole, on one line
    for col in ("service", "who", "what", "purpose", "result", "case"):
        t.add_column(col)
    for e in answer["entries"]:
        result = e["result"] if e["granted"] else f"[yellow]{e['result']}[/yellow]"
        t.add_row(_helsinki(e["at"]), e["service"], e["actor"], e["action"], e["purpose"], result, (e["case_id"] or "-")[:8])
    console.print(t)
    if not answer["complete"]:
        missing = ", ".join(f"{s}: {v}" for s, v in answer["services"].items() if v != "ok")
        console.print(f"[yellow]incomplete: {missing}[/yellow]")


# -- tamper evidence of the audit logs --------------------------------------------------------------


async def verify_audit_logs(settings: Settings, services: list[str]) -> dict[str, Any]:
    """Each service's audit chain checked in its own database (shared.audit.verify_chain)."""
    import importlib

    from shared import pseudonyms
    from shared.audit import verify_chain
    from shared.storage.database import Database

    pseudonyms.use_key_file(pseudonyms.key_file_of(settings))
    reports = {}
    for service in services:
        metadata = importlib.import_module(f"services.{service}.adapters").metadata
        db = Database(settings.database_url(service), metadata)
        try:
            reports[service] = await verify_chain(db)
        finally:
            await db.dispose()
    return reports


@app.command("verify-audit")
def verify_audit(
    service: str = typer.Argument(None, help="referral, meetings, plans or notifications (default: all four)."),
) -> None:
    """Verify the hash chain of each service's audit log in its database (KOOLLE_*_DATABASE_URL or
    the SQLite files under KOOLLE_DATA_DIR; the key file of KOOLLE_PSEUDONYM_KEY_FILE). Reports the
    first break and exits 1 when any chain is broken."""
    if service is not None and service not in SERVICES:
        raise typer.BadParameter(f"known services: {', '.join(SERVICES)}")
    reports = asyncio.run(verify_audit_logs(Settings(), [service] if service else list(SERVICES)))
    broken = False
    for name, r in reports.items():
        if r.ok:
            console.print(f"{name}: ok, {r.records} records, head {r.head[:16]}")
            continue
        broken = True
        where = f"at record {r.broken_at}" if r.broken_at is not None else f"after record {r.records}"
        console.print(f"[red]{name}: BROKEN {where}: {r.reason}[/red] ({r.records} records verified before it)")
    if broken:
        raise typer.Exit(1)


if __name__ == "__main__":
    app()
