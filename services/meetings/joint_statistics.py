"""Joint-work statistics per municipality and month (Helsinki). Plain Python, no I/O.

What people ask of the family-centre model (``../shared/domain.md``, "Statistics people ask for"):
- time from contact (the receipt the front door recorded) to the first joint meeting: median and
  90th percentile in days, counted in the month of the first meeting;
- invited against attended per meeting (the Porvoo tracking form), by kind of participant;
- families' feedback: score 1-5 and whether the family felt heard (no free text);
- the adoption stage recorded for the municipality beside an indicator of what actually happens
  (meetings held with the family present, follow-ups recorded rather than overdue);
- how late onward services start after their agreed day, and the late-start alerts.

The read model is a set of small fact records keyed by what they describe (``case:``, ``meeting:``,
``stage:``, ``followup:``, ``overdue:``, ``service:``), kept live by the meetings service from the
events it consumes, or rebuilt from the streams (``infra.ops rebuild joint-work-statistics``). Both
fold with the same :meth:`JointWorkStatistics.apply`, and each event only sets its own fields, so
the result does not depend on the order the events arrive in (the live consumers read each subject
on its own): a rebuild matches the live model exactly. The figures are aggregates: no case, meeting
or person id leaves :meth:`JointWorkStatistics.figures`.
"""

from __future__ import annotations

import statistics as st
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shared.catalogue import LANGUAGES, N_, Catalogue
from shared.clock import local_month
from shared.csvtext import csv_text
from shared.svgchart import Layout, Row, Series, bar_chart

EVENT_TYPES = (
    "referral.received",
    "referral.case_transferred",
    "meeting.convened",
    "meeting.rescheduled",
    "meeting.held",
    "meeting.feedback_recorded",
    "meeting.adoption_stage_recorded",
    "followup.recorded",
    "followup.overdue",
    "plan.service_status_recorded",
    "plan.service_start_overdue",
)
"""What the model reads (subjects ``<type>.v1`` of the REFERRAL, MEETINGS and PLANS streams)."""

STREAM_OF = {"referral": "REFERRAL", "meeting": "MEETINGS", "followup": "PLANS", "plan": "PLANS"}


def _dt(value: str) -> datetime:
    d = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return d if d.tzinfo else d.replace(tzinfo=UTC)


def _utc(value: str) -> str:
    """One spelling of a UTC time, whichever way the event wrote it."""
    return _dt(value).astimezone(UTC).isoformat()


def _month(value: str) -> str:
    return local_month(_dt(value))


def p90(values: list[float]) -> float:
    """The 90th percentile, linear interpolation between closest ranks (inclusive)."""
    if len(values) == 1:
        return values[0]
    return st.quantiles(values, n=10, method="inclusive")[8]


class JointWorkStatistics:
    def __init__(self, facts: dict[str, dict[str, Any]] | None = None) -> None:
        self.facts: dict[str, dict[str, Any]] = facts if facts is not None else {}

    def apply(self, event_type: str, ev: dict[str, Any]) -> str | None:
        """Fold one event in; returns the key whose facts it touched (None: not a statistics event)."""
        if event_type not in EVENT_TYPES:
            return None
        key = self.key_of(event_type, ev)
        f = self.facts.setdefault(key, {})
        if event_type == "referral.received":
            f.setdefault("municipality", ev["municipality"])
            at = _utc(ev["received_at"])
            f["contact_at"] = min(f.get("contact_at", at), at)  # the first contact of the case
        elif event_type == "referral.case_transferred":
            f["municipality"] = ev["municipality"]
        elif event_type in ("meeting.convened", "meeting.rescheduled"):
            seq = int(ev.get("sequence", 0)) if event_type == "meeting.rescheduled" else 0
            if seq >= f.get("seq", -1):
                f["seq"], f["case"], f["starts_at"] = seq, str(ev["case_id"]), _utc(ev["starts_at"])
                f["invited"] = {p["participant_id"]: p["kind"] for p in ev["participants"]}
            if ev.get("municipality"):
                f["municipality"] = ev["municipality"]
        elif event_type == "meeting.held":
            f["case"] = str(ev["case_id"])
            f["held_at"] = _utc(ev["held_at"])
            f["present"] = sorted(a["participant_id"] for a in ev["attendance"] if a["present"])
            f["family_present"] = bool(ev["family_present"])
            if ev.get("municipality"):
                f["municipality"] = ev["municipality"]
        elif event_type == "meeting.feedback_recorded":
            f.setdefault("feedback", {})[ev["given_by"]] = {"rating": int(ev["rating"]), "felt_heard": bool(ev["felt_heard"])}
        elif event_type == "meeting.adoption_stage_recorded":
            # keyed by time, then the (time-ordered) event id: two records in one second keep their order
            f.setdefault("history", {})[f"{_utc(ev['occurred_at'])}|{ev['event_id']}"] = ev["stage"]
        elif event_type == "followup.recorded":
            f["case"], f["month"] = str(ev["case_id"]), _month(ev["occurred_at"])
        elif event_type == "followup.overdue":
            f["case"], f["month"] = str(ev["case_id"]), _month(ev["due_at"])
        elif event_type == "plan.service_status_recorded":
            f["case"] = str(ev["case_id"])
            if ev.get("start_by"):
                f["start_by"] = str(ev["start_by"])
            if ev["status"] == "started":
                f["started_on"] = str(ev["on"])
                f["days_late"] = ev.get("days_late")
        elif event_type == "plan.service_start_overdue":
            f["case"], f["start_by"], f["overdue"] = str(ev["case_id"]), str(ev["start_by"]), True
        return key

    @staticmethod
    def index_of(key: str, f: dict[str, Any]) -> dict[str, Any]:
        """What a fact record is found by (stored beside it): its kind, the months (Helsinki) it
        counts in as :meth:`figures` counts it (a service in at most two: the month it started and
        the month its start fell overdue), and its case. A query for some months then reads only
        what counts in them, the other held meetings of their cases (is a meeting the case's first?),
        those cases and the adoption stages, not the whole history."""
        kind = key.split(":", 1)[0]
        months: list[str] = []
        if kind == "meeting" and f.get("held_at"):
            months = [_month(f.get("starts_at") or f["held_at"])]
        elif kind in ("followup", "overdue") and f.get("month"):
            months = [f["month"]]
        elif kind == "service":
            months = sorted(
                {m for m in (f.get("started_on", "")[:7], f.get("start_by", "")[:7] if f.get("overdue") else "") if m}
            )
        return {
            "kind": kind,
            "month": months[0] if months else None,
            "last_month": months[1] if len(months) > 1 else None,
            "case_id": f.get("case") if kind in ("meeting", "followup", "overdue", "service") else None,
        }

    @staticmethod
    def key_of(event_type: str, ev: dict[str, Any]) -> str:
        if event_type.startswith("referral."):
            return f"case:{ev['case_id']}"
        if event_type == "meeting.adoption_stage_recorded":
            return f"stage:{ev['municipality']}"
        if event_type.startswith("meeting."):
            return f"meeting:{ev['meeting_id']}"
        if event_type == "followup.recorded":
            return f"followup:{ev['event_id']}"
        if event_type == "followup.overdue":
            return f"overdue:{ev['plan_id']}:{_utc(ev['due_at'])}"
        return f"service:{ev['service_id']}"

    # -- figures ---------------------------------------------------------------------------------
    def figures(self, municipality: str | None = None) -> list[dict[str, Any]]:
        """One row per municipality and month, oldest first."""
        cases = {k[5:]: f for k, f in self.facts.items() if k.startswith("case:")}
        rows: dict[tuple[str, str], dict[str, Any]] = {}
        waits: dict[tuple[str, str], list[float]] = {}
        delays: dict[tuple[str, str], list[int]] = {}

        def muni_of(f: dict[str, Any]) -> str:
            return str(f.get("municipality") or cases.get(f.get("case", ""), {}).get("municipality") or "")

        def row(muni: str, month: str) -> dict[str, Any] | None:
            if municipality is not None and muni != municipality:
                return None
            r = rows.get((muni, month))
            if r is None:  # built only when new: most calls find their row
                r = rows[(muni, month)] = _empty(muni, month)
            return r

        # A case's first meeting: the earliest start, and of two at once the smaller key (the facts
        # are read in no particular order; sorting them all cost more than the rest of the walk).
        first: dict[str, tuple[str, str, dict[str, Any]]] = {}
        for key, f in self.facts.items():
            kind = key.split(":", 1)[0]
            if kind == "meeting" and f.get("held_at"):
                start = f.get("starts_at") or f["held_at"]
                r = row(muni_of(f), _month(start))
                case = f.get("case", "")
                if case and (case not in first or (start, key) < first[case][:2]):
                    first[case] = (start, key, f)
                if r is None:
                    continue
                r["meetings_held"] += 1
                r["meetings_with_family"] += bool(f.get("family_present"))
                invited: dict[str, str] = f.get("invited", {})
                present = set(f.get("present", []))
                r["meetings_fully_attended"] += bool(invited) and set(invited) <= present
                for pid, who in invited.items():
                    r["invited"] += 1
                    r["invited_by_kind"][who] = r["invited_by_kind"].get(who, 0) + 1
                    if pid in present:
                        r["attended"] += 1
                        r["attended_by_kind"][who] = r["attended_by_kind"].get(who, 0) + 1
                for answer in f.get("feedback", {}).values():
                    r["feedback_given"] += 1
                    r["_ratings"].append(answer["rating"])
                    r["_heard"] += answer["felt_heard"]
            elif kind in ("followup", "overdue"):
                r = row(muni_of(f), f["month"])
                if r is not None:
                    r["followups_recorded" if kind == "followup" else "followups_overdue"] += 1
            elif kind == "service":
                muni = muni_of(f)
                if f.get("started_on"):
                    r = row(muni, f["started_on"][:7])
                    if r is not None:
                        r["services_started"] += 1
                        if f.get("days_late") is not None:
                            r["services_started_late"] += f["days_late"] > 0
                            delays.setdefault((muni, f["started_on"][:7]), []).append(int(f["days_late"]))
                if f.get("overdue"):
                    r = row(muni, f["start_by"][:7])
                    if r is not None:
                        r["services_start_overdue"] += 1
        for case, (start, _, f) in first.items():
            contact = cases.get(case, {}).get("contact_at")
            if contact is None:
                continue
            muni, month = muni_of(f), _month(start)
            r = row(muni, month)
            if r is not None:
                r["first_meetings"] += 1
                waits.setdefault((muni, month), []).append((_dt(start) - _dt(contact)).total_seconds() / 86400)
        stages = {k[6:]: f.get("history", {}) for k, f in self.facts.items() if k.startswith("stage:")}
        for muni, history in stages.items():
            for at in history:
                row(muni, _month(at.split("|")[0]))
        out = [rows[k] for k in sorted(rows)]
        for r in out:
            key = (r["municipality"], r["month"])
            _finish(
                r, waits.get(key, []), delays.get(key, []), _stage_at_month_end(stages.get(r["municipality"], {}), r["month"])
            )
        return out


def _empty(muni: str, month: str) -> dict[str, Any]:
    return {
        "municipality": muni,
        "month": month,
        "first_meetings": 0,
        "meetings_held": 0,
        "invited": 0,
        "attended": 0,
        "invited_by_kind": {},
        "attended_by_kind": {},
        "meetings_with_family": 0,
        "meetings_fully_attended": 0,
        "feedback_given": 0,
        "followups_recorded": 0,
        "followups_overdue": 0,
        "services_started": 0,
        "services_started_late": 0,
        "services_start_overdue": 0,
        "_ratings": [],
        "_heard": 0,
    }


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 3) if whole else None


def _stage_at_month_end(history: dict[str, str], month: str) -> str | None:
    """The stage last recorded on or before the month's end (Helsinki)."""
    before = [at for at in history if _month(at.split("|")[0]) <= month]
    return history[max(before)] if before else None


def _finish(r: dict[str, Any], waits: list[float], delays: list[int], stage: str | None) -> None:
    ratings, heard = r.pop("_ratings"), r.pop("_heard")
    for by_kind in ("invited_by_kind", "attended_by_kind"):  # in one order, whatever order the facts came in
        r[by_kind] = dict(sorted(r[by_kind].items()))
    r["contact_to_first_meeting_median_days"] = round(st.median(waits), 2) if waits else None
    r["contact_to_first_meeting_p90_days"] = round(p90(waits), 2) if waits else None
    r["attendance_share"] = _share(r["attended"], r["invited"])
    held = r["meetings_held"]
    r["invited_per_meeting"] = round(r["invited"] / held, 2) if held else None
    r["attended_per_meeting"] = round(r["attended"] / held, 2) if held else None
    r["feedback_mean_rating"] = round(st.mean(ratings), 2) if ratings else None
    r["felt_heard_share"] = _share(heard, len(ratings))
    r["adoption_stage"] = stage
    r["family_present_share"] = _share(r["meetings_with_family"], r["meetings_held"])
    r["followups_on_time_share"] = _share(r["followups_recorded"], r["followups_recorded"] + r["followups_overdue"])
    known = [s for s in (r["family_present_share"], r["followups_on_time_share"]) if s is not None]
    r["practice_indicator"] = round(sum(known) / len(known), 3) if known else None
    r["service_start_delay_mean_days"] = round(st.mean(delays), 2) if delays else None
    r["service_start_delay_max_days"] = max(delays) if delays else None


COLUMNS = (
    "municipality",
    "month",
    "first_meetings",
    "contact_to_first_meeting_median_days",
    "contact_to_first_meeting_p90_days",
    "meetings_held",
    "invited",
    "attended",
    "attendance_share",
    "invited_per_meeting",
    "attended_per_meeting",
    "meetings_fully_attended",
    "invited_family",
    "attended_family",
    "invited_professional",
    "attended_professional",
    "invited_referrer",
    "attended_referrer",
    "meetings_with_family",
    "feedback_given",
    "feedback_mean_rating",
    "felt_heard_share",
    "adoption_stage",
    "family_present_share",
    "followups_recorded",
    "followups_overdue",
    "followups_on_time_share",
    "practice_indicator",
    "services_started",
    "services_started_late",
    "service_start_delay_mean_days",
    "service_start_delay_max_days",
    "services_start_overdue",
)


def to_csv(rows: list[dict[str, Any]]) -> str:
    def flat(r: dict[str, Any]) -> dict[str, Any]:
        kinds = ("family", "professional", "referrer")
        return (
            r
            | {f"invited_{k}": r["invited_by_kind"].get(k, 0) for k in kinds}
            | {f"attended_{k}": r["attended_by_kind"].get(k, 0) for k in kinds}
        )

    return csv_text(COLUMNS, (flat(r) for r in rows))


# -- the chart -------------------------------------------------------------------------------------
STAGE_LABELS = {
    "not_discussed": N_("not discussed"),
    "goal_not_planned": N_("a goal"),
    "planning": N_("being planned"),
    "trial": N_("trial running"),
    "rooted": N_("rooted"),
}
LABELS = {
    "title": N_("Joint work with families"),
    "attendance": N_("Attended / invited"),
    "family": N_("Meetings with the family present"),
    "followups": N_("Follow-ups on time"),
    "heard": N_("Family felt heard"),
    "first": N_("Contact to first meeting, median (days)"),
    "delay": N_("Service start delay, mean (days)"),
    "stage": N_("Adoption stage"),
    "indicator": N_("In practice (0–1)"),
    "none": N_("No data"),
}
"""The chart's texts in English; the Finnish and Swedish are in the ``meetings`` catalogue
(services/meetings/locale/<language>/LC_MESSAGES/meetings.po, docs/translations.md)."""
CATALOGUE = Catalogue(Path(__file__).with_name("locale"), "meetings")


def _language(language: str) -> str:
    return language if language in LANGUAGES else "fi"


def labels(language: str) -> dict[str, str]:
    """The chart's texts in the language (Finnish for an unknown one)."""
    lang = _language(language)
    return {key: CATALOGUE.gettext(lang, source) for key, source in LABELS.items()}


def stage_labels(language: str) -> dict[str, str]:
    """Adoption stage -> its name in the language (Finnish for an unknown one)."""
    lang = _language(language)
    return {stage: CATALOGUE.gettext(lang, source) for stage, source in STAGE_LABELS.items()}


SHARES = (
    ("attendance", "attendance_share", "#1f77b4"),
    ("family", "family_present_share", "#2ca02c"),
    ("followups", "followups_on_time_share", "#9467bd"),
    ("heard", "felt_heard_share", "#ff7f0e"),
)
LAYOUT = Layout(bar=12, gap=30, top=80, legend_y=38, legend_step=175, min_width=760, right=60, below=220, background=True)


def chart(rows: list[dict[str, Any]], language: str) -> str:
    """Bars of the four shares (0-100 %) per municipality and month; under each group the days from
    contact to the first meeting, the service start delay, and the recorded adoption stage beside the
    practice indicator, in fi/sv/en."""
    t = labels(language)
    stages = stage_labels(language)
    series = [Series(t[key], colour, [r[field] for r in rows]) for key, field, colour in SHARES]
    groups = [f"{r['municipality']} {r['month']}" for r in rows]
    table = [
        Row(t["first"], [r["contact_to_first_meeting_median_days"] for r in rows]),
        Row(t["delay"], [r["service_start_delay_mean_days"] for r in rows]),
        Row(t["stage"], [stages.get(r["adoption_stage"] or "", None) for r in rows]),
        Row(t["indicator"], [r["practice_indicator"] for r in rows]),
    ]
    return bar_chart(t["title"], series, groups, t["none"], LAYOUT, table)
