"""Routing (ohjaus): which team a referral goes to, and each municipality's on-duty social work.

Plain Python: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .children import fold


@dataclass(frozen=True)
class RoutingRule:
    team_id: str
    municipality: str = "*"
    concern: str = "*"
    channel: str = "*"


class Router:
    """Routing as data: the first rule matching municipality, concern and channel names the team."""

    def __init__(self, rules: list[RoutingRule], default_team: str, on_duty: dict[str, str] | None = None) -> None:
        self.rules = rules
        self.default_team = default_team
        self._on_duty = {(fold(k) if k != "*" else "*"): v for k, v in (on_duty or {}).items()}

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Router:
        rules = [RoutingRule(**r) for r in data.get("rules", [])]
        return cls(rules, data.get("default_team", "unassigned"), data.get("on_duty"))

    def teams(self) -> set[str]:
        """Every team the routing knows: a case may be transferred only to one of them."""
        return {r.team_id for r in self.rules} | {self.default_team} | set(self._on_duty.values())

    def on_duty(self, municipality: str) -> str | None:
        """The municipality's on-duty social work (sosiaalipäivystys), told at once about an urgent referral."""
        return self._on_duty.get(fold(municipality)) or self._on_duty.get("*")

    def route(self, municipality: str, concern: str | None, channel: str) -> str:
        m = fold(municipality)
        for r in self.rules:
            if r.municipality != "*" and fold(r.municipality) != m:
                continue
            if r.concern != "*" and r.concern != concern:
                continue
            if r.channel != "*" and r.channel != channel:
                continue
            return r.team_id
        return self.default_team
