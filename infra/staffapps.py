"""The staff apps a county runs and the teams whose events each may read (``infra/staff_apps.json``,
or the file named by ``KOOLLE_STAFF_APPS_FILE``).

Each app is a NATS identity of its own; infra/auth.py gives it the routed subjects of its routes
(``<event>.v<N>.<municipality>.<team>``, shared/contracts/routes.py) and durable consumers on
them, nothing else of the staff-facing events.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

DEFAULT_FILE = Path(__file__).with_name("staff_apps.json")
_TOKEN = re.compile(r"^(\*|[a-z0-9_-]+)$")
_NAME = re.compile(r"^staffapp(-[a-z0-9_-]+)?$")


@dataclass(frozen=True)
class StaffApp:
    name: str
    routes: tuple[str, ...]
    description: str = ""


def parse(data: dict[str, object]) -> tuple[StaffApp, ...]:
    """The apps of a configuration; a name or route that is not a routing id is refused."""
    apps = []
    for name, spec in dict(data.get("apps") or {}).items():  # type: ignore[call-overload]
        if not _NAME.match(name):
            raise ValueError(f"staff app name {name!r}: 'staffapp' or 'staffapp-<lower-case id>'")
        routes = tuple(spec.get("routes") or ())
        for r in routes:
            parts = r.split(".")
            if len(parts) != 2 or not all(_TOKEN.match(p) for p in parts):
                raise ValueError(f"staff app {name}: route {r!r} is not '<municipality>.<team>' (routing ids or '*')")
        apps.append(StaffApp(name, routes, str(spec.get("description") or "")))
    return tuple(apps)


@cache
def staff_apps(path: str | None = None) -> tuple[StaffApp, ...]:
    file = Path(path or os.environ.get("KOOLLE_STAFF_APPS_FILE") or DEFAULT_FILE)
    return parse(json.loads(file.read_text(encoding="utf-8")))


def routes_of(name: str) -> tuple[str, ...]:
    return next(a.routes for a in staff_apps() if a.name == name)
