"""The joint-meeting statistics read model (``query.meetings.statistics.v2``). Plain Python, no I/O.

The figures themselves are :func:`services.meetings.stats.compute`'s. What they are computed from is
kept here as small fact records, folded from events, so that the model can be rebuilt from the
streams (``infra.ops rebuild meeting-statistics``) and match the live one exactly:
``case:<id>`` (the receipt and the deadline to meet by), ``meeting:<id>`` (when, who was invited,
whether held or cancelled, who attended) and ``pro:<id>`` (the professional's unit and team, from
the roster's events). Each event sets its own fields, and the ones that replace earlier values
(a reschedule, a roster change, a new assessment) win by their sequence or time, so the order the
events arrive in does not matter.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, NamedTuple

from shared.clock import local_month

EVENT_TYPES = (
    "referral.received",
    "assessment.started",
    "meeting.convened",
    "meeting.rescheduled",
    "meeting.cancelled",
    "meeting.held",
    "roster.professional_changed",
)
"""What the model reads (subjects ``<type>.v1`` of the REFERRAL and MEETINGS streams)."""

STREAM_OF = {"referral": "REFERRAL", "assessment": "REFERRAL", "meeting": "MEETINGS", "roster": "MEETINGS"}


def _utc(value: str) -> str:
    d = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return (d if d.tzinfo else d.replace(tzinfo=UTC)).astimezone(UTC).isoformat()


def _order(ev: dict[str, Any]) -> str:
    """When an event happened, then its (time-ordered) id: the later of two changes wins."""
    return f"{_utc(ev['occurred_at'])}|{ev['event_id']}"


class MeetingStatisticsModel:
    def __init__(self, facts: dict[str, dict[str, Any]] | None = None) -> None:
        self.facts: dict[str, dict[str, Any]] = facts if facts is not None else {}

    @staticmethod
    def key_of(event_type: str, ev: dict[str, Any]) -> str:
        if event_type == "roster.professional_changed":
            return f"pro:{ev['professional_id']}"
        if event_type.startswith("meeting."):
            return f"meeting:{ev['meeting_id']}"
        return f"case:{ev['case_id']}"

    @staticmethod
    def index_of(key: str, f: dict[str, Any]) -> dict[str, Any]:
        """What a fact record is found by (stored beside it): its kind, the Helsinki month a held
        meeting counts in (``stats.compute`` counts a held meeting in the month it started), and the
        case a meeting belongs to. A query for some months then reads only those months' meetings,
        their cases and the roster, not the whole history."""
        kind = key.split(":", 1)[0]
        held = kind == "meeting" and bool(f.get("held")) and "starts_at" in f
        return {
            "kind": kind,
            "month": local_month(datetime.fromisoformat(f["starts_at"])) if held else None,
            "last_month": None,
            "case_id": f.get("case") if kind == "meeting" else None,
        }

    def apply(self, event_type: str, ev: dict[str, Any]) -> str | None:
        """Fold one event in; returns the key whose facts it touched (None: not one it reads)."""
        if event_type not in EVENT_TYPES:
            return None
        key = self.key_of(event_type, ev)
        f = self.facts.setdefault(key, {})
        if event_type == "referral.received":
            at = _utc(ev["received_at"])
            if "opened_at" not in f or at < f["opened_at"]:  # the convening opens at the first receipt
                f["opened_at"], f["decision_due_by"] = at, ev.get("decision_due_by")
        elif event_type == "assessment.started":
            if _order(ev) > f.get("assessment_order", ""):
                f["assessment_order"], f["complete_by"] = _order(ev), str(ev["complete_by"])
        elif event_type in ("meeting.convened", "meeting.rescheduled"):
            seq = int(ev.get("sequence", 0)) if event_type == "meeting.rescheduled" else 0
            if seq >= f.get("seq", -1):
                f["seq"], f["case"], f["starts_at"] = seq, str(ev["case_id"]), _utc(ev["starts_at"])
                f["participants"] = [{"participant_id": p["participant_id"], "kind": p["kind"]} for p in ev["participants"]]
            if event_type == "meeting.convened":
                f["municipality"] = ev.get("municipality")
        elif event_type == "meeting.cancelled":
            f["cancelled"] = True
        elif event_type == "meeting.held":
            f["held"] = True
            f["attendance"] = [{"participant_id": a["participant_id"], "present": bool(a["present"])} for a in ev["attendance"]]
        elif event_type == "roster.professional_changed" and _order(ev) > f.get("order", ""):
            f["order"], f["unit"], f["team"] = _order(ev), ev["unit"], ev.get("team")
        return key

    # -- what stats.compute reads --------------------------------------------------------------------
    # Light records, not the domain's Meeting and Convening: a year's statistics read tens of
    # thousands of them, and building those (UUIDs, a dozen fields) cost as much as the figures.
    def meetings(self) -> list[MeetingRecord]:
        out = []
        for key, f in self.facts.items():
            if not key.startswith("meeting:") or "starts_at" not in f:
                continue
            out.append(
                MeetingRecord(
                    f["case"],
                    datetime.fromisoformat(f["starts_at"]),
                    "held" if f.get("held") else "cancelled" if f.get("cancelled") else "convened",
                    f.get("municipality"),
                    f["participants"],  # read only (stats.compute): not copied
                    f.get("attendance", []),
                )
            )
        return out

    def convenings(self) -> dict[str, CaseRecord]:
        out = {}
        for key, f in self.facts.items():
            if not key.startswith("case:") or "opened_at" not in f:
                continue
            deadline = f.get("complete_by") or f.get("decision_due_by")
            out[key[5:]] = CaseRecord(datetime.fromisoformat(f["opened_at"]), date.fromisoformat(deadline) if deadline else None)
        return out

    def units(self) -> dict[str, tuple[str, str | None]]:
        return {k[4:]: (f["unit"], f.get("team")) for k, f in self.facts.items() if k.startswith("pro:") and "unit" in f}


class MeetingRecord(NamedTuple):
    """A meeting as the figures read it (:class:`services.meetings.stats.MeetingFacts`)."""

    case_id: str
    starts_at: datetime
    status: str  # convened | held | cancelled
    municipality: str | None
    participants: list[dict[str, Any]]
    attendance: list[dict[str, Any]]


class CaseRecord(NamedTuple):
    """A case as the figures read it: its receipt and the day to meet by (:class:`services.meetings.stats.CaseFacts`)."""

    opened_at: datetime
    deadline: date | None
