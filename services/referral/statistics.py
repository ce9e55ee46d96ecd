"""The statutory figures THL publishes, per municipality and month: the share of 7-working-day
decisions made in time and of service-need assessments completed within 3 months of receipt. Plain
Python, no I/O.

The read model is one small fact record per case, kept from the referral service's own events (the
live model) or from the REFERRAL stream (a rebuild, ``infra.ops rebuild statutory-statistics``); both
apply the same :meth:`StatutoryStatistics.apply`, so a rebuild matches the live model exactly. The
figures are served from counters per municipality and month (:func:`contributions` of every case's
facts, kept by :func:`change` as facts change), so a query reads as many rows as there are
municipalities and months, however many cases the years have piled up. The figures are aggregates:
no case id leaves this module.

As THL counts them: a decision counts in the month it was made (Helsinki date), in time when made on
or before the 7th working day after the receipt (a statutory case whose assessment was started with
no decision recorded counts that start as its decision); an assessment counts in the month it was completed,
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
            if ev.get("decision_due_by"):  # a statutory referral: the decision's last day
                f.setdefault("decision_due_by", str(ev["decision_due_by"]))
        elif event_type == "referral.case_transferred":
            f["municipality"] = ev["municipality"]
        elif event_type == "referral.decision_recorded":
            f["decided_on"], f["decided_in_time"] = str(ev["decided_on"]), bool(ev["within_time"])
            if ev.get("complete_by"):
                f["complete_by"] = str(ev["complete_by"])
        elif event_type == "assessment.started":
            f["complete_by"] = str(ev["complete_by"])
            # Starting the assessment with no decision recorded is the decision (SHL 36 §, LSL 26 §):
            # it counts on its start day, in time when on or before the decision's last day.
            if "decided_on" not in f and f.get("decision_due_by") and ev.get("started_on"):
                started = str(ev["started_on"])
                f["decided_on"], f["decided_in_time"] = started, started <= f["decision_due_by"]
        elif event_type == "assessment.completed":
            f["completed_on"] = str(ev["completed_on"])
        return case

    def counts(self) -> dict[tuple[str, str], list[int]]:
        """The figures' counters per municipality and month, summed over every case's facts."""
        return add_counts({}, *(contributions(f) for f in self.facts.values()))

    def figures(self, municipality: str | None = None) -> list[dict[str, Any]]:
        """One row per municipality and month, oldest first."""
        return figures(self.counts(), municipality)


COUNTERS = ("decisions", "decisions_in_time", "assessments_completed", "assessments_in_time")
"""A municipality's and month's counters, in this order in :func:`contributions` and the counts."""


def contributions(f: dict[str, Any]) -> dict[tuple[str, str], list[int]]:
    """What one case's facts add to the counters of their municipality and months: its decision in
    the month it was made, its completed assessment in the month it was completed."""
    out: dict[tuple[str, str], list[int]] = {}
    muni = f.get("municipality") or ""
    if f.get("decided_on"):
        c = out.setdefault((muni, f["decided_on"][:7]), [0, 0, 0, 0])
        c[0] += 1
        c[1] += bool(f.get("decided_in_time"))
    if f.get("completed_on"):
        c = out.setdefault((muni, f["completed_on"][:7]), [0, 0, 0, 0])
        c[2] += 1
        c[3] += bool(f.get("complete_by")) and f["completed_on"] <= f["complete_by"]
    return out


def change(before: dict[str, Any] | None, after: dict[str, Any]) -> dict[tuple[str, str], list[int]]:
    """The counters' change when a case's facts go from ``before`` to ``after`` (a transfer moves
    them to another municipality); rows that do not change are left out."""
    taken = {key: [-v for v in values] for key, values in contributions(before or {}).items()}
    return {k: v for k, v in add_counts({}, contributions(after), taken).items() if any(v)}


def add_counts(
    into: dict[tuple[str, str], list[int]], *parts: dict[tuple[str, str], list[int]]
) -> dict[tuple[str, str], list[int]]:
    for part in parts:
        for key, values in part.items():
            row = into.setdefault(key, [0, 0, 0, 0])
            for i, v in enumerate(values):
                row[i] += v
    return into


def figures(counts: dict[tuple[str, str], list[int]], municipality: str | None = None) -> list[dict[str, Any]]:
    """The published rows of the counters: one per municipality and month that counts anything,
    oldest first, with the two shares."""
    out = []
    for (muni, month), values in sorted(counts.items()):
        if (municipality is not None and muni != municipality) or not any(values):
            continue
        r: dict[str, Any] = {"municipality": muni, "month": month, **dict(zip(COUNTERS, values, strict=True))}
        r["decisions_in_time_share"] = round(r["decisions_in_time"] / r["decisions"], 3) if r["decisions"] else None
        r["assessments_in_time_share"] = (
            round(r["assessments_in_time"] / r["assessments_completed"], 3) if r["assessments_completed"] else None
        )
        out.append(r)
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
