"""Routed subjects: a staff-facing event names its case's municipality and team in its subject,
``<event>.v<N>.<municipality>.<team>`` (e.g. ``plan.agreed.v2.testila.testila-family-centre``),
so that NATS permissions can give a staff app the events of its own teams only (infra/auth.py,
infra/staff_apps.json).

Both tokens are routing ids: lower case, no dots, spaces or wildcards (``route_token``). An event
whose case has no team yet (none assigned) is routed to ``unrouted`` in place of the missing token.
"""

from __future__ import annotations

import re
import unicodedata

STAFF_FACING = (
    "meeting.",
    "plan.",
    "followup.",
    "notification.",
    "assessment.",
    "referral.assigned.",
    "referral.case_transferred.",
    "referral.decision_recorded.",
    "referral.deadline_approaching.",
    "referral.deadline_breached.",
)
"""The event families staff apps read: each is published on routed subjects."""

UNROUTED = "unrouted"
_NOT_TOKEN = re.compile(r"[^a-z0-9_-]+")


def route_token(value: str | None) -> str:
    """A municipality or team as a subject token: ``Testilä`` → ``testila``, ``Porvoo`` → ``porvoo``,
    ``testila-family-centre`` unchanged. Accents are dropped, anything else becomes ``-``."""
    if not value:
        return UNROUTED
    plain = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode().lower()
    return _NOT_TOKEN.sub("-", plain).strip("-") or UNROUTED


def routed_subject(family: str, municipality: str | None, team: str | None) -> str:
    """``family`` (``plan.agreed.v2``) with the route of the case."""
    return f"{family}.{route_token(municipality)}.{route_token(team)}"


_VERSION_AND_ROUTE = re.compile(r"\.v[0-9]+(\..*)?$")


def event_type_of(subject: str) -> str:
    """``plan.agreed.v2.testila.testila-family-centre`` → ``plan.agreed`` (also an unrouted subject)."""
    return _VERSION_AND_ROUTE.sub("", subject)


_VERSIONED = re.compile(r"^(.*?\.v[0-9]+)(?:\.|$)")


def without_route(subject: str) -> str:
    """``plan.agreed.v2.testila.testila-family-centre`` → ``plan.agreed.v2`` (a subject without a
    route is returned as it is)."""
    versioned = _VERSIONED.match(subject)
    return versioned.group(1) if versioned else subject
