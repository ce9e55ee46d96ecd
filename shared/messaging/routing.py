"""The route of a staff-facing event: its case's municipality and team, written into its subject
at commit (``<event>.v<N>.<municipality>.<team>``, shared/contracts/routes.py).

The event's own ``municipality`` and ``team_id`` win (an assignment or a transfer names the new
ones); then an assignment or transfer emitted in the same transaction; then the service's
case-access read model (shared/case_access.py: every service keeps each case's team and
municipality from ``referral.received``, ``referral.unlinked`` and ``referral.case_transferred``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, bindparam, select

from shared.contracts.base import field_or_none
from shared.contracts.routes import routed_subject
from shared.storage.fastpath.declare import hot_once

KINDS = ("team", "municipality")


async def route(uow: Any, pending: list[tuple[dict[str, Any], Any]]) -> None:
    """Set the subject of each (outbox row, event) in ``pending``."""
    known: dict[str, dict[str, Any]] = {}
    for _, form in pending:  # an assignment or transfer in this same transaction
        own = {"municipality": field_or_none(form, "municipality"), "team": field_or_none(form, "team_id")}
        if own["municipality"] and own["team"] and form.case_id is not None:
            known[str(form.case_id)] = own
    missing = {str(f.case_id) for _, f in pending if f.case_id is not None and str(f.case_id) not in known}
    table = uow.db.metadata.tables.get("case_access")
    if missing and table is not None:
        rows = await uow.execute(_routes_statement(table), {"ids": sorted(missing)})
        for case_id, kind, value in rows:
            known.setdefault(case_id, {})[kind] = value
    for row, form in pending:
        case = known.get(str(form.case_id), {})
        municipality = field_or_none(form, "municipality") or case.get("municipality")
        team = field_or_none(form, "team_id") or case.get("team")
        row["subject"] = routed_subject(form.subject(), municipality, team)


def _routes_statement(table: Table) -> Any:
    """Declared once per table: it takes the fast path, and a read of ``case_access`` sends only
    that table's held writes first, not the transaction's others (shared/storage/deferred.py)."""
    return hot_once(
        ("route.case_access", table),
        lambda: select(table.c.case_id, table.c.kind, table.c.value).where(
            table.c.case_id.in_(bindparam("ids", expanding=True)), table.c.kind.in_(KINDS)
        ),
    )
