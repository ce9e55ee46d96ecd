"""The statutory figures THL publishes, per municipality and month: the share of 7-working-day
decisions made in time and of service-need assessments completed within 3 months of receipt. Plain
Python, no I/O.

The read model is one small fact record per case, kept from the referral service's own events (the
live model) or from the REFERRAL stream (a rebuild, ``infra.ops rebuild statutory-statistics``); both
apply the same :meth:`StatutoryStatistics.apply`, so a rebuild matches the live model exactly. The
figures are aggregates: no case id leaves this module.

As THL counts them: a decision counts in the month it was made (Helsinki date), in time when made on
or before the 7th working day after the receipt; an assessment counts in the month it was completed,
in time when completed on or before 3 months of the receipt.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shared.catalogue import N_, Catalogue
from shared.csvtext import csv_text
from shared.svgchart import Layout, Series, bar_chart

EVENT_TYPES = (
    "referral.received",
    "referral.case_transferred",
    "referral.decision_recorded",
    "assessment.started",
    "assessment.completed",
)
"""What the model reads (the subjects these types are published on now, of the REFERRAL stream: ``referral.received.v2``, ``referral.linked.v2``, the others ``.v1``)."""


class StatutoryStatistics:
    def __init__(self, facts: dict[str, dict[str, Any]] | None = None) -> None:
        self.facts: dict[str, dict[str, Any]] = facts if facts is not None else {}

    def apply(self, event_type: str, ev: dict[str, Any]) -> str | None:
        """Fold one event in; returns the case whose facts changed (None: not a statistics event)."""
        if event_type not in EVENT_TYPES:
            return None
        case = str(ev["case_id"])
        f = self.facts.setdefault(case, {})
        if event_type == "referral.received":
            f.setdefault("municipality", ev["municipality"])
        elif event_type == "referral.case_transferred":
            f["municipality"] = ev["municipality"]
        elif event_type == "referral.decision_recorded":
            f["decided_on"], f["decided_in_time"] = str(ev["decided_on"]), bool(ev["within_time"])
            if ev.get("complete_by"):
                f["complete_by"] = str(ev["complete_by"])
        elif event_type == "assessment.started":
            f["complete_by"] = str(ev["complete_by"])
        elif event_type == "assessment.completed":
            f["completed_on"] = str(ev["completed_on"])
        return case

    def figures(self, municipality: str | None = None) -> list[dict[str, Any]]:
        """One row per municipality and month, oldest first."""
        rows: dict[tuple[str, str], dict[str, Any]] = {}

        def row(muni: str, day: str) -> dict[str, Any]:
            key = (muni, day[:7])
            return rows.setdefault(
                key,
                {
                    "municipality": key[0],
                    "month": key[1],
                    "decisions": 0,
                    "decisions_in_time": 0,
                    "assessments_completed": 0,
                    "assessments_in_time": 0,
                },
            )

        for f in self.facts.values():
            muni = f.get("municipality") or ""
            if municipality is not None and muni != municipality:
                continue
            if f.get("decided_on"):
                r = row(muni, f["decided_on"])
                r["decisions"] += 1
                r["decisions_in_time"] += bool(f.get("decided_in_time"))
            if f.get("completed_on"):
                r = row(muni, f["completed_on"])
                r["assessments_completed"] += 1
                r["assessments_in_time"] += bool(f.get("complete_by")) and f["completed_on"] <= f["complete_by"]
        out = [rows[k] for k in sorted(rows)]
        for r in out:
            r["decisions_in_time_share"] = round(r["decisions_in_time"] / r["decisions"], 3) if r["decisions"] else None
            r["assessments_in_time_share"] = (
                round(r["assessments_in_time"] / r["assessments_completed"], 3) if r["assessments_completed"] else None
            )
        return out


COLUMNS = (
    "municipality",
    "month",
    "decisions",
    "decisions_in_time",
    "decisions_in_time_share",
    "assessments_completed",
    "assessments_in_time",
    "assessments_in_time_share",
)


def to_csv(rows: list[dict[str, Any]]) -> str:
    return csv_text(COLUMNS, rows)


LABELS = {
    "title": N_("Statutory time limits"),
    "decisions": N_("Decisions within 7 working days"),
    "assessments": N_("Service-need assessments within 3 months"),
    "none": N_("No data"),
}
"""The chart's texts in English; the Finnish and Swedish are in the ``referral`` catalogue
(services/referral/locale/<language>/LC_MESSAGES/referral.po, docs/translations.md)."""
CATALOGUE = Catalogue(Path(__file__).with_name("locale"), "referral")


def labels(language: str) -> dict[str, str]:
    lang = language if language in ("fi", "sv", "en") else "fi"
    return {key: CATALOGUE.gettext(lang, source) for key, source in LABELS.items()}


COLOURS = {"decisions": "#1f77b4", "assessments": "#2ca02c"}
LAYOUT = Layout(bar=14, gap=18, top=60, legend_y=34, legend_step=220, min_width=420, right=40, below=90)


def chart(rows: list[dict[str, Any]], language: str) -> str:
    """A bar chart of the two shares (0–100 %) per municipality and month, labelled in fi/sv/en."""
    t = labels(language)
    series = [Series(t[key], COLOURS[key], [r[f"{key}_in_time_share"] for r in rows]) for key in ("decisions", "assessments")]
    groups = [f"{r['municipality']} {r['month']}" for r in rows]
    return bar_chart(t["title"], series, groups, t["none"], LAYOUT)
