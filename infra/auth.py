"""Least-privilege NATS identities: one user per service, the front door, each staff app and ops.

Each identity may publish and subscribe only where its role needs, uses its own inbox prefix
(``_INBOX_<identity>``), and reaches only the JetStream API subjects of its own durable consumers:
no stream creation, deletion or other admin (``$JS.API.STREAM.CREATE`` and the like) except for ops.
The permissions are derived from the code (the catalogue and each service's subscriptions), so
they cannot drift from what the services do.

    python -m infra.auth > infra/nats/authorization.conf   # the block, with placeholders for the hashes

The server configuration holds bcrypt hashes of the passwords only (``nats server passwd`` makes
one); each process is given its own password (``KOOLLE_NATS_PASSWORD``).
"""

from __future__ import annotations

import json
import os
import secrets
import sys
from functools import cache
from pathlib import Path
from typing import Any

from infra.staffapps import routes_of, staff_apps
from shared.contracts import EVENTS, REQUESTS, stream_for_subject
from shared.contracts.routes import STAFF_FACING
from shared.sealing import KEYS_BUCKET, KEYS_STREAM

SERVICES = ("referral", "meetings", "plans", "notifications")
STAFF_APPS = tuple(app.name for app in staff_apps())
IDENTITIES = (*SERVICES, "frontdoor", *STAFF_APPS, "ops")


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
    return [(c.stream, c.durable) for c in _built(service).durable_consumers()]


def _replaced(service: str) -> list[tuple[str, str]]:
    """(stream, durable) of the one-subject consumers a consumer of several subjects took over from:
    read once, at its creation (shared/messaging/durables.py)."""
    return [(c.stream, s.durable) for c in _built(service).durable_consumers() if len(c.subs) > 1 for s in c.subs]


def _ops_subjects(service: str) -> list[str]:
    """The operator queries (``ops.<service>.…``) the service answers, read from its own bootstrap."""
    return sorted(s for s in _built(service).handlers if s.startswith(f"ops.{service}."))


def service_permissions(service: str) -> dict[str, Any]:
    publish = sorted({e.filter_subject for e in EVENTS if e.producer.split(" ")[0] == service})
    publish += [f"timers.{service}.>", f"deadletter.{service}.>"]
    durables = _durables(service)
    # Re-reading a dead letter's original from the service's own streams (ops.replay.<service>,
    # shared/messaging/redelivery.py); the service checks the subject against its consumers.
    publish += sorted({f"$JS.API.STREAM.MSG.GET.{stream}" for stream, _ in durables})
    for stream, durable in durables:
        publish += [
            f"$JS.API.CONSUMER.INFO.{stream}.{durable}",
            f"$JS.API.CONSUMER.CREATE.{stream}.{durable}",  # several filters: none in the subject
            f"$JS.API.CONSUMER.CREATE.{stream}.{durable}.>",
            f"$JS.API.CONSUMER.DURABLE.CREATE.{stream}.{durable}",
            f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{durable}",
            f"$JS.ACK.{stream}.{durable}.>",
        ]
    # Where the consumers a consumer of several subjects replaced had got to, when it is created.
    replaced = _replaced(service)
    publish += sorted({f"$JS.API.STREAM.INFO.{stream}" for stream, _ in replaced})
    publish += [f"$JS.API.CONSUMER.INFO.{stream}.{durable}" for stream, durable in replaced]
    # The per-case data keys (shared/sealing.py): every service reads them and creates a missing one;
    # only the referral service, which carries out an erasure, deletes (securely erases) one.
    # (Many keys with one request: a batched direct get names its subjects in the body.)
    publish += [
        f"$JS.API.STREAM.INFO.{KEYS_STREAM}",
        f"$JS.API.DIRECT.GET.{KEYS_STREAM}",
        f"$JS.API.DIRECT.GET.{KEYS_STREAM}.>",
        f"$KV.{KEYS_BUCKET}.>",
    ]
    if service == "referral":
        publish.append(f"$JS.API.STREAM.MSG.DELETE.{KEYS_STREAM}")
    subscribe = [f"{inbox_prefix(service)}.>", f"ops.health.{service}", f"ops.replay.{service}", *_ops_subjects(service)]
    subscribe += sorted({r.subject for r in REQUESTS if r.service == service})
    return {"publish": {"allow": publish}, "subscribe": {"allow": subscribe}, "allow_responses": True}


def ops_permissions() -> dict[str, Any]:
    """Ops administers the streams and asks the services; it publishes no event of anyone's, and it
    cannot purge a stream or delete an event (the streams deny both anyway). A dead-letter replay
    is a request to the owning service (``ops.replay.<service>``), never a publish by ops."""
    api = "$JS.API"
    publish = [
        f"{api}.INFO",
        f"{api}.STREAM.NAMES",
        f"{api}.STREAM.LIST",
        f"{api}.STREAM.INFO.*",
        f"{api}.STREAM.CREATE.*",  # declares the catalogue's streams (shared/messaging/streams.py)
        f"{api}.STREAM.UPDATE.*",
        f"{api}.STREAM.DELETE.*",  # the audited purge procedure only (docs/operations.md)
        f"{api}.STREAM.MSG.GET.DEADLETTER",  # lists dead letters (ids and reasons, no payloads shown)
        f"{api}.STREAM.MSG.DELETE.DEADLETTER",  # a replayed dead letter is removed
        f"{api}.CONSUMER.LIST.*",
        f"{api}.CONSUMER.NAMES.*",
        f"{api}.CONSUMER.INFO.*.*",
        # Ephemeral read-only consumers: read-model rebuilds and the event printer of `make run`.
        f"{api}.CONSUMER.CREATE.*",
        f"{api}.CONSUMER.CREATE.*.>",
        f"{api}.CONSUMER.MSG.NEXT.*.*",
        f"{api}.CONSUMER.DELETE.*.*",
        "$JS.FC.>",  # flow-control replies of ordered consumers
        "ops.health.*",
        "ops.replay.*",
        *(subject for service in SERVICES for subject in _ops_subjects(service)),  # e.g. ops.referral.rejected.v1
        "query.*.access_log.v1",
    ]
    return {"publish": {"allow": publish}, "subscribe": {"allow": [f"{inbox_prefix('ops')}.>"]}}


FRONTDOOR_READS = ("referral.rejected.v1",)


def client_publish(identity: str) -> list[str]:
    """What an outside client publishes: the front door submissions, a staff app commands and queries."""
    return ["intake.referral.v1"] if identity == "frontdoor" else ["cmd.>", "query.>"]


def readable_subjects(identity: str) -> list[str]:
    """The subjects an outside client may read, live (subscribe) and missed (its durable
    consumers): the front door its rejections; a staff app every staff-facing event of its routes
    (``<event>.v<N>.<municipality>.<team>``, ``*`` where its route says every one). Never a retired
    version's subject, never ``directory.>``."""
    if identity == "frontdoor":
        return list(FRONTDOOR_READS)
    routes = routes_of(identity)
    return sorted(
        f"{e.subject}.{r}" for e in EVENTS if e.model.routed and f"{e.model.event_type}.".startswith(STAFF_FACING) for r in routes
    )


def catch_up_durable(identity: str, subject: str) -> str:
    """The only consumer name an outside client may use for ``subject``: ``<identity>-<subject>``
    with dashes for dots and ``all`` for ``*`` (a name holds neither), e.g.
    ``staffapp-testila-plan-agreed-v2-testila-testila-family-centre``."""
    return f"{identity}-{subject.replace('*', 'all').replace('.', '-')}"


def permissions(identity: str) -> dict[str, Any]:
    if identity in SERVICES:
        return service_permissions(identity)
    if identity == "frontdoor" or identity in STAFF_APPS:
        subjects = readable_subjects(identity)
        publish = client_publish(identity)
        for subject in subjects:
            stream, durable = stream_for_subject(subject), catch_up_durable(identity, subject)
            publish += [
                f"$JS.API.CONSUMER.CREATE.{stream}.{durable}.{subject}",  # the filter is part of the subject
                f"$JS.API.CONSUMER.INFO.{stream}.{durable}",
                f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{durable}",
                f"$JS.ACK.{stream}.{durable}.>",
            ]
        return {
            "publish": {"allow": publish},
            "subscribe": {"allow": [f"{inbox_prefix(identity)}.>", *subjects]},
        }
    if identity == "ops":
        return ops_permissions()
    raise KeyError(identity)


# The passwords are random 192-bit tokens, not chosen by people: the hash keeps them out of the
# configuration file, and no cost factor is needed against guessing. A low cost keeps each client
# connection cheap (the server checks the hash on every connect).
BCRYPT_ROUNDS = 6


def password_hash(password: str) -> str:
    """What the server configuration holds for a password: a bcrypt hash (nats-server compares
    a client's password against it). Placeholders (``${VAR}``) and hashes pass through."""
    import bcrypt

    if password.startswith(("$2a$", "$2b$", "$2y$", "${")):
        return password
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(BCRYPT_ROUNDS)).decode()


def authorization_block(passwords: dict[str, str]) -> str:
    """The server's ``authorization`` block: each identity with its permissions and the bcrypt
    hash of its password (never the password)."""
    users = []
    for ident in IDENTITIES:
        perms = permissions(ident)
        users.append({"user": ident, "password": password_hash(passwords[ident]), "permissions": perms})
    # NATS config accepts JSON-style values inside its own syntax.
    return "authorization {\n  users: " + json.dumps(users, indent=2).replace("\n", "\n  ") + "\n}\n"


CREDENTIALS_DIR = Path("nats") / "identities"
"""Where ``infra.run`` keeps the generated passwords, one file per identity, relative to the data dir."""


def credentials_path(data_dir: Path) -> Path:
    return data_dir / CREDENTIALS_DIR


def load_passwords(directory: Path) -> dict[str, str] | None:
    """The passwords ``infra.run`` generated, or None when it has not run with this data dir."""
    if not directory.is_dir():
        return None
    return {p.stem: p.read_text().strip() for p in directory.glob("*.password")}


def load_or_create_passwords(directory: Path) -> dict[str, str]:
    """Each identity's random password, created once, in its own file ``<identity>.password``
    (mode 600, directory 700) so that each process can be given only its own. A password file of
    an earlier version (``credentials.json`` beside the directory, all passwords in one file) is
    split into these files and removed."""
    from shared.private_files import DIR_MODE, FILE_MODE

    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(DIR_MODE)
    legacy = directory.parent / "credentials.json"
    earlier: dict[str, str] = json.loads(legacy.read_text()) if legacy.exists() else {}
    passwords = {}
    for ident in IDENTITIES:
        path = directory / f"{ident}.password"
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
            with os.fdopen(fd, "w") as f:
                f.write(earlier.get(ident) or secrets.token_urlsafe(24))
        path.chmod(FILE_MODE)
        passwords[ident] = path.read_text().strip()
    legacy.unlink(missing_ok=True)
    return passwords


if __name__ == "__main__":
    sys.stdout.write(authorization_block({i: f"${{KOOLLE_NATS_PASSWORD_{i.upper()}}}" for i in IDENTITIES}))
