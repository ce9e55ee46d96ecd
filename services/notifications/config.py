"""Configuration of the notifications service: channels (env ``KOOLLE_NOTIFICATIONS_*``) and staff
data (teams, on-duty roster) from a JSON file.

Laptop default: no SMTP host and no SMS gateway configured -> everything goes to the log channel
(a spool file under the data directory), so the system runs with nothing else installed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.clock import HELSINKI

DEFAULT_STAFF_FILE = Path(__file__).with_name("staff.json")
# The family-centre roster the meetings service loads (a data file, not code): the professionals'
# work contact points, used when an event names a worker without one.
DEFAULT_ROSTER_FILE = Path(__file__).parents[1] / "meetings" / "roster.json"


class NotificationsConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KOOLLE_NOTIFICATIONS_", extra="ignore")

    smtp_host: str = ""
    smtp_port: int = 25
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_starttls: bool = False
    smtp_timeout_seconds: float = 10.0
    mail_from: str = "Koolle <no-reply@koolle.example>"

    # The SMS provider (sms.PROVIDERS) and its API: SMS is on when the API's base URL is set, e.g.
    # https://api.46elks.com/a1 (HTTP Basic auth with the provider's API username and password).
    sms_provider: str = "46elks"
    sms_gateway_url: str = ""
    sms_api_username: str = ""
    sms_api_password: str = ""
    sms_sender: str = "Koolle"
    # Delivery reports: the public URL the provider POSTs them to (through the county's reverse
    # proxy to this service's report port); empty: receipts are polled from the provider.
    sms_report_url: str = ""
    sms_report_port: int = -1  # -1: no receiver; 0: any free port
    sms_report_host: str = "127.0.0.1"
    sms_report_key: str = ""
    sms_max_segments: int = 3

    # Calendar replies: the invitations' ORGANIZER (a mailbox this service reads) and that mailbox as
    # a Maildir directory (delivered there by the county's mail server, e.g. fetchmail or an LMTP
    # delivery agent); empty: replies are not read.
    reply_address: str = ""
    reply_maildir: Path | None = None
    reply_poll_seconds: float = 30.0

    # The plan in the plan message: how long a plan message waits for the family's copy
    # (plan.copy_prepared) before it goes without it, and how long the copy is kept at all.
    plan_copy_wait_seconds: float = 120.0
    plan_copy_retention_hours: float = 72.0
    # Where a guardian who can sign in (strong identification) sees the plan online; empty: not said.
    plan_portal_url: str = ""

    portal_enabled: bool = False
    portal_url: str = "https://koolle.example/viestit"

    quiet_start_hour: int = 21
    quiet_end_hour: int = 8

    attempts_per_channel: int = 3
    backoff_base_seconds: float = 30.0
    backoff_cap_seconds: float = 3600.0
    reconcile_after_seconds: float = 60.0
    # How often the dispatcher looks for such sends at all (each look is a transaction of its own);
    # at least twice per reconcile_after_seconds.
    reconcile_check_seconds: float = 10.0
    receipt_poll_seconds: float = 60.0
    receipt_window_hours: float = 48.0

    staff_file: Path = DEFAULT_STAFF_FILE
    roster_file: Path | None = DEFAULT_ROSTER_FILE

    def channels(self) -> tuple[str, ...]:
        out = []
        if self.smtp_host:
            out.append("email")
        if self.sms_gateway_url:
            out.append("sms")
        if self.portal_enabled:
            out.append("portal")
        return tuple(out) or ("log",)


@dataclass
class StaffDirectory:
    """Staff contact points, teams and the on-duty roster: configuration data, not case data."""

    staff: dict[str, dict[str, Any]] = field(default_factory=dict)
    teams: dict[str, dict[str, Any]] = field(default_factory=dict)
    on_duty: dict[str, dict[str, str]] = field(default_factory=dict)

    roster: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Work contact points from the family-centre roster, by professional id (``roster_file``)."""

    @classmethod
    def load(cls, path: Path, roster_file: Path | None = None) -> StaffDirectory:
        data = json.loads(Path(path).read_text(encoding="utf-8")) if Path(path).exists() else {}
        roster: dict[str, dict[str, Any]] = {}
        if roster_file and Path(roster_file).is_file():  # empty setting: no roster
            for p in json.loads(Path(roster_file).read_text(encoding="utf-8")).get("professionals", []):
                c = p.get("contact") or {}
                if c.get("email") or c.get("phone"):
                    roster[p["professional_id"]] = {
                        "role": c.get("role") or (p.get("roles") or ["professional"])[0],
                        "language": c.get("language") or (p.get("languages") or ["fi"])[0],
                        "email": c.get("email"),
                        "phone": c.get("phone"),
                    }
        return cls(staff=data.get("staff", {}), teams=data.get("teams", {}), on_duty=data.get("on_duty", {}), roster=roster)

    def contact(self, staff_id: str) -> dict[str, Any] | None:
        """A worker's contact point: the staff configuration first, then the roster."""
        s = self.staff.get(staff_id) or self.roster.get(staff_id)
        return None if s is None else {"contact_id": staff_id, **s}

    def team_members(self, team_id: str | None) -> list[str]:
        t = self.teams.get(team_id or "")
        if t is None:
            return []
        out = [*t.get("social_workers", []), *t.get("members", [])]
        if t.get("lead"):
            out.append(t["lead"])
        return list(dict.fromkeys(out))

    def team_social_workers_and_lead(self, team_id: str | None) -> list[str]:
        t = self.teams.get(team_id or "")
        if t is None:
            return []
        out = list(t.get("social_workers", []))
        if t.get("lead"):
            out.append(t["lead"])
        return list(dict.fromkeys(out))

    def team_lead(self, team_id: str | None) -> str | None:
        t = self.teams.get(team_id or "")
        return t.get("lead") if t else None

    def on_duty_social_worker(self, municipality: str, at: datetime) -> str | None:
        """Office hours (Mon-Fri 8-16 Helsinki) the municipality's duty social worker; otherwise
        the emergency social services (sosiaalipäivystys)."""
        roster = self.on_duty.get(municipality) or self.on_duty.get("*")
        if not roster:
            return None
        local = at.astimezone(HELSINKI)
        office = local.weekday() < 5 and 8 <= local.hour < 16
        return roster.get("office_hours" if office else "after_hours") or roster.get("office_hours")
