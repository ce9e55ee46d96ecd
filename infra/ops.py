"""Operator CLI: streams, consumers, service health, dead letters, read-model rebuilds.

    python -m infra.ops status
    python -m infra.ops deadletters [--service meetings]
    python -m infra.ops replay-deadletter SEQ
    python -m infra.ops rebuild referral-statistics
    python -m infra.ops access-log CASE_ID --requested-by STAFF_ID   # who has seen my data
    echo HENKILOTUNNUS | python -m infra.ops access-log - --requested-by STAFF_ID

Shows ids, subjects, counts and reason codes only: never a payload (dead letters hold personal data).
Connects with the identity and TLS in KOOLLE_NATS_* (the ``ops`` identity, infra/auth.py).
"""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import datetime
from typing import Any
from uuid import UUID

import nats
import typer
from nats.js.api import StreamInfo
from nats.js.errors import NotFoundError
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from infra.run import SERVICES
from shared.client import call, connect
from shared.contracts import STREAMS
from shared.settings import Settings

app = typer.Typer(help=__doc__, no_args_is_help=True)
console = Console()


def _url(url: str | None) -> str:
    return url or Settings().nats_url


async def _connect(url: str | None) -> nats.NATS:
    # The identity and TLS come from KOOLLE_NATS_* like a service's; --url only changes the address.
    settings = Settings(nats_url=url) if url else Settings()
    return await connect(settings, connect_timeout=3, max_reconnect_attempts=1)


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


@app.command()
def status(url: str = typer.Option(None, help="NATS URL (default KOOLLE_NATS_URL)")) -> None:
    """Streams, consumers (pending / ack pending / redelivered) and each service's health."""

    async def run() -> None:
        nc = await _connect(url)
        data = await status_data(nc)
        await nc.close()
        t = Table(title="Services")
        for col in ("service", "ready", "db", "broker", "outbox published", "handled by consumer"):
            t.add_column(col)
        for s, h in data["health"].items():
            t.add_row(
                s,
                "yes" if h.get("ready") else "[red]no[/red]",
                str(h.get("db", "-")),
                str(h.get("broker", "-")),
                str(h.get("outbox_published", "-")),
                ", ".join(f"{k.split('-', 1)[1]}={v}" for k, v in h.get("consumers", {}).items()),
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
        t = Table(title="Consumers")
        for col in ("stream", "consumer", "pending", "ack pending", "redelivered", "waiting"):
            t.add_column(col)
        for c in data["consumers"]:
            stalled = c.num_pending and not c.num_waiting
            t.add_row(
                c.stream_name,
                c.name,
                f"[yellow]{c.num_pending}[/yellow]" if stalled else str(c.num_pending),
                str(c.num_ack_pending),
                str(c.num_redelivered),
                str(c.num_waiting),
            )
        console.print(t)

    asyncio.run(run())


async def list_dead_letters(nc: nats.NATS, service: str | None = None) -> list[dict[str, Any]]:
    js = nc.jetstream()
    try:
        info = await js.stream_info("DEADLETTER")
    except NotFoundError:
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
    m = await js.get_msg("DEADLETTER", seq)
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
        console.print(f"[red]dead letter {seq} not replayed: {exc.code}[/red] (it stays listed)")
        raise typer.Exit(1) from None
    console.print(f"replayed dead letter {seq}: {outcome}")


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
                duplicate_window=settings.duplicate_window_seconds,
                replicas=settings.stream_replicas,
            )
        finally:
            await nc.close()

    try:
        record = asyncio.run(run())
    except PurgeRefused as exc:
        console.print(f"[red]not purged: {exc.code}[/red]")
        raise typer.Exit(1) from None
    console.print(f"purged {stream}: {record['messages']} messages; sequences continue at {record['last_seq'] + 1}")


@app.command()
def rebuild(model: str = typer.Argument("referral-statistics"), url: str = typer.Option(None)) -> None:
    """Rebuild a read model from its stream, with a progress bar."""
    if model != "referral-statistics":
        raise typer.BadParameter("known read models: referral-statistics")

    async def run() -> None:
        from services.referral.projections import ReferralStatistics

        nc = await _connect(url)
        with Progress(
            TextColumn("rebuilding"), BarColumn(), TextColumn("{task.completed:,}/{task.total:,}"), TimeRemainingColumn()
        ) as bar:
            task = bar.add_task("rebuild", total=None)
            stats = await ReferralStatistics.rebuild(
                nc.jetstream(), progress=lambda seen, total: bar.update(task, completed=seen, total=total)
            )
        await nc.close()
        t = Table(title=f"Referral statistics ({stats.events:,} events)")
        for col in ("municipality", "month", "channel", "referrals"):
            t.add_column(col)
        for r in stats.rows():
            t.add_row(r["municipality"], r["month"], r["channel"], str(r["referrals"]))
        console.print(t)

    asyncio.run(run())


# -- who has seen my data (Client Data Act 703/2023 s. 11) ----------------------------------------

ACCESS_LOG_SERVICES = ("meetings", "plans", "notifications")
"""Besides referral (which finds a person's cases), the services that answer query.<service>.access_log.v1."""


async def gather_access_log(
    nc: nats.NATS,
    *,
    requested_by: str,
    personal_id: str | None = None,
    case_id: str | None = None,
    purpose: str = "subject access request",
    timeout: float = 3.0,
) -> dict[str, Any]:
    """One answer from all four services' audit logs, oldest first. Referral turns a henkilötunnus
    into the person's cases; the others answer for those cases. Every service records this read.
    ``services`` says which answered; an answer with a silent service is marked incomplete."""
    who = {"requested_by": requested_by, "purpose": purpose}
    status: dict[str, str] = {}
    entries: list[dict[str, Any]] = []
    cases = [str(UUID(case_id))] if case_id else []
    try:
        ref = await call(
            nc,
            "query.referral.access_log.v1",
            {**who, **({"personal_id": personal_id} if personal_id else {"case_id": case_id})},
            timeout=timeout,
            attempts=1,
        )
    except TimeoutError:
        status["referral"] = "no_answer"
    else:
        if ref.ok and ref.data is not None:
            cases, status["referral"] = ref.data["cases"], "ok"
            entries += ref.data["entries"]
        elif ref.errors and ref.errors[0].code == "not_found":
            status["referral"] = "not_found"
        else:
            return {
                "ok": False,
                "errors": [e.code for e in ref.errors],
                "cases": [],
                "entries": [],
                "services": status,
                "complete": False,
            }

    async def ask(service: str) -> None:
        try:
            r = await call(nc, f"query.{service}.access_log.v1", {**who, "case_ids": cases}, timeout=timeout, attempts=1)
        except TimeoutError:
            status[service] = "no_answer"
            return
        status[service] = "ok" if r.ok else (r.errors[0].code if r.errors else "refused")
        if r.ok and r.data is not None:
            entries.extend(r.data["entries"])

    if cases:
        await asyncio.gather(*(ask(s) for s in ACCESS_LOG_SERVICES))
    entries.sort(key=lambda e: datetime.fromisoformat(e["at"]))
    complete = bool(cases) and all(status.get(s) == "ok" for s in ("referral", *ACCESS_LOG_SERVICES))
    return {
        "ok": bool(cases),
        "errors": [] if cases else [status.get("referral", "not_found")],
        "cases": cases,
        "entries": entries,
        "services": status,
        "complete": complete,
    }


def _subject_ref(ref: str) -> dict[str, str]:
    """A case id or a henkilötunnus; '-' reads it from stdin (so a henkilötunnus stays out of shell history)."""
    if ref == "-":
        ref = sys.stdin.readline().strip()
    try:
        return {"case_id": str(UUID(ref))}
    except ValueError:
        return {"personal_id": ref}


@app.command("access-log")
def access_log(
    ref: str = typer.Argument(..., help="Case id, or henkilötunnus; '-' reads it from stdin."),
    requested_by: str = typer.Option(..., "--requested-by", help="Your staff id (the read is audited)."),
    purpose: str = typer.Option("subject access request", help="Why the log is read (audited)."),
    as_json: bool = typer.Option(False, "--json", help="Print the answer as JSON."),
    url: str = typer.Option(None),
) -> None:
    """Who has seen one person's (or one case's) data: every service's audit records, oldest first."""

    async def run() -> dict[str, Any]:
        nc = await _connect(url)
        try:
            return await gather_access_log(nc, requested_by=requested_by, purpose=purpose, **_subject_ref(ref))
        finally:
            await nc.close()

    answer = asyncio.run(run())
    if as_json:
        console.print_json(json.dumps(answer))
        return
    if not answer["ok"]:
        console.print(f"[red]no answer: {', '.join(answer['errors'])}[/red]")
        raise typer.Exit(1)
    t = Table(title=f"Access log: {len(answer['cases'])} case(s), {len(answer['entries'])} record(s)")
    for col in ("when (UTC)", "service", "who", "what", "purpose", "result", "case"):
        t.add_column(col)
    for e in answer["entries"]:
        result = e["result"] if e["granted"] else f"[yellow]{e['result']}[/yellow]"
        t.add_row(e["at"][:19], e["service"], e["actor"], e["action"], e["purpose"], result, (e["case_id"] or "-")[:8])
    console.print(t)
    if not answer["complete"]:
        missing = ", ".join(f"{s}: {v}" for s, v in answer["services"].items() if v != "ok")
        console.print(f"[yellow]incomplete: {missing}[/yellow]")


if __name__ == "__main__":
    app()
