"""Least-privilege NATS identities: one user per service, the front door, the staff app and ops.

Each identity may publish and subscribe only where its role needs, uses its own inbox prefix
(``_INBOX_<identity>``), and reaches only the JetStream API subjects of its own durable consumers:
no stream creation, deletion or other admin (``$JS.API.STREAM.CREATE`` and the like) except for ops.
The permissions are derived from the code (the catalogue and each service's subscriptions), so
they cannot drift from what the services do.

    python -m infra.auth > infra/nats/authorization.conf   # the block, with placeholder passwords
"""

from __future__ import annotations

import json
import secrets
import sys
from functools import cache
from pathlib import Path
from typing import Any

from shared.contracts import EVENTS, REQUESTS

SERVICES = ("referral", "meetings", "plans", "notifications")
IDENTITIES = (*SERVICES, "frontdoor", "staffapp", "ops")


def inbox_prefix(identity: str) -> str:
    return f"_INBOX_{identity}"


@cache
def _built(service: str) -> Any:
    """The service as its own bootstrap builds it (nothing started), to read what it declares."""
    import importlib

    from shared.settings import Settings

    mod = importlib.import_module(f"services.{service}.bootstrap")
    return mod.bootstrap(Settings(data_dir=Path("/tmp/koolle-auth-probe")))


def _durables(service: str) -> list[tuple[str, str]]:
    """(stream, durable) of every consumer the service declares, read from its own bootstrap."""
    return [(s.stream, s.durable) for s in _built(service).consumed()]


def _ops_subjects(service: str) -> list[str]:
    """The operator queries (``ops.<service>.…``) the service answers, read from its own bootstrap."""
    return sorted(s for s in _built(service).handlers if s.startswith(f"ops.{service}."))


def service_permissions(service: str) -> dict[str, Any]:
    publish = sorted({e.subject for e in EVENTS if e.producer.split(" ")[0] == service})
    publish += [f"timers.{service}.>", f"deadletter.{service}.>"]
    for stream, durable in _durables(service):
        publish += [
            f"$JS.API.CONSUMER.INFO.{stream}.{durable}",
            f"$JS.API.CONSUMER.CREATE.{stream}.{durable}.>",
            f"$JS.API.CONSUMER.DURABLE.CREATE.{stream}.{durable}",
            f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{durable}",
            f"$JS.ACK.{stream}.{durable}.>",
        ]
    subscribe = [f"{inbox_prefix(service)}.>", f"ops.health.{service}", *_ops_subjects(service)]
    subscribe += sorted({r.subject for r in REQUESTS if r.service == service})
    return {"publish": {"allow": publish}, "subscribe": {"allow": subscribe}, "allow_responses": True}


def permissions(identity: str) -> dict[str, Any]:
    if identity in SERVICES:
        return service_permissions(identity)
    if identity == "frontdoor":
        return {
            "publish": {"allow": ["intake.referral.v1"]},
            "subscribe": {"allow": [f"{inbox_prefix(identity)}.>", "referral.rejected.v1"]},
        }
    if identity == "staffapp":
        return {
            "publish": {"allow": ["cmd.>", "query.>"]},
            "subscribe": {
                "allow": [
                    f"{inbox_prefix(identity)}.>",
                    "meeting.>",
                    "plan.>",
                    "followup.>",
                    "notification.>",
                    "assessment.>",
                    "referral.assigned.>",
                    "referral.deadline_approaching.>",
                    "referral.deadline_breached.>",
                ]
            },
        }
    if identity == "ops":
        return {"publish": {"allow": [">"]}, "subscribe": {"allow": [">"]}}
    raise KeyError(identity)


def authorization_block(passwords: dict[str, str]) -> str:
    users = []
    for ident in IDENTITIES:
        perms = permissions(ident)
        users.append({"user": ident, "password": passwords[ident], "permissions": perms})
    # NATS config accepts JSON-style values inside its own syntax.
    return "authorization {\n  users: " + json.dumps(users, indent=2).replace("\n", "\n  ") + "\n}\n"


CREDENTIALS_FILE = Path("nats") / "credentials.json"
"""Where ``infra.run`` keeps the generated passwords, relative to the data dir (KOOLLE_DATA_DIR)."""


def credentials_path(data_dir: Path) -> Path:
    return data_dir / CREDENTIALS_FILE


def load_passwords(path: Path) -> dict[str, str] | None:
    """The passwords ``infra.run`` generated, or None when it has not run with this data dir."""
    if not path.exists():
        return None
    pw: dict[str, str] = json.loads(path.read_text())
    return pw


def load_or_create_passwords(path: Path) -> dict[str, str]:
    """Random passwords per identity, created once and kept with the local data (mode 600)."""
    if path.exists():
        pw = json.loads(path.read_text())
        if set(pw) >= set(IDENTITIES):
            return pw
    pw = {i: secrets.token_urlsafe(24) for i in IDENTITIES}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(pw))
    path.chmod(0o600)
    return pw


if __name__ == "__main__":
    sys.stdout.write(authorization_block({i: f"${{KOOLLE_NATS_PASSWORD_{i.upper()}}}" for i in IDENTITIES}))
