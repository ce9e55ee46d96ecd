"""What the four services really wire up, read from their own bootstraps: which events each one
consumes (its durable subscriptions) and which function answers each command and query.

The catalogue's consumer columns, the AsyncAPI document and docs/errors.md are generated from this,
so they cannot drift from the code. Building a service opens no connection and touches no database.
"""

from __future__ import annotations

import importlib
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

SERVICES = ("referral", "meetings", "plans", "notifications")


@dataclass(frozen=True)
class RequestHandler:
    service: str
    subject: str
    model: type[Any]
    handler: Callable[..., Any]


@cache
def built() -> dict[str, Any]:
    """Each service as its bootstrap builds it (not started)."""
    from shared.settings import Settings

    probe = Settings(data_dir=Path(tempfile.gettempdir()) / "koolle-wiring-probe")
    out = {}
    for name in SERVICES:
        out[name] = importlib.import_module(f"services.{name}.bootstrap").bootstrap(probe)
    return out


def consumers() -> dict[str, tuple[str, ...]]:
    """Subject -> the services that subscribe to it, in SERVICES order."""
    out: dict[str, list[str]] = {}
    for name, svc in built().items():
        for sub in svc.subscriptions:
            if name not in out.setdefault(sub.subject, []):
                out[sub.subject].append(name)
    return {k: tuple(v) for k, v in out.items()}


def durables() -> set[tuple[str, str]]:
    """(stream, durable name) of every durable consumer the four services run now."""
    return {(c.stream, c.durable) for svc in built().values() for c in svc.durable_consumers()}


def request_handlers() -> dict[str, RequestHandler]:
    """Subject -> the registered command or query handler."""
    out = {}
    for name, svc in built().items():
        for subject, (model, fn) in svc.handlers.items():
            out[subject] = RequestHandler(name, subject, model, fn)
    return out
