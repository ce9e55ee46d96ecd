"""Erasing one family's data from a service's own database (on ``referral.case_erased.v1``).

Every table with a ``case_id`` column is handled by what its ``info["erasure"]`` says:

- ``"delete"``: the case's rows are deleted (data that is personal as a whole: a contact directory,
  a rendered copy of a plan, a child's index entry);
- ``"keep"``: left as they are (ids and codes only: the audit logs, which are append-only and
  hash-chained, the case relations, the statistics facts);
- otherwise (the default, so that a new table is never forgotten): its rows stay, with every text
  under a personal key of its JSON columns, and its ``info["personal_text"]`` columns, blanked.
  Ids, codes, dates, counts and the shape of the records stay, so statistics are unchanged.

Run by the runtime in the event's inbox transaction: erased exactly once, together with its inbox row.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import MetaData, Table, delete, select, update

from shared.storage.columns import JSONText
from shared.storage.uow import UnitOfWork

PERSONAL_KEYS = frozenset(
    {
        # people
        "name",
        "names",
        "given_name",
        "family_name",
        "personal_id",
        "date_of_birth",
        "guardians",
        "children",
        "referrer",
        # how to reach them
        "email",
        "phone",
        "address",
        "best_time_to_call",
        # their own words and what was written about them
        "concern",
        "family_view",
        "observed",
        "advice_given",
        "reason",
        "what_happened",
        "notes",
        "note",
        "text",
        "title",
        "body",
        "html",
        "pdf_base64",
        "changes_needed",
        "actions_at_home",
        "worker_contacts_family",
        "family_contacts_worker",
        "strengths",
        "wishes",
        "child_view",
        "summary",
        "raw",
    }
)
ERASED_TEXT = ""


def blank(value: Any) -> Any:
    """Every text inside ``value`` replaced by the erased text (structure, numbers, flags kept)."""
    if isinstance(value, str):
        return ERASED_TEXT
    if isinstance(value, list):
        return [blank(v) for v in value]
    if isinstance(value, dict):
        return {k: blank(v) for k, v in value.items()}
    return value


def scrub(value: Any) -> Any:
    """``value`` with the texts under personal keys blanked, anywhere in it."""
    if isinstance(value, list):
        return [scrub(v) for v in value]
    if isinstance(value, dict):
        return {k: blank(v) if k in PERSONAL_KEYS else scrub(v) for k, v in value.items()}
    return value


def _pk_where(table: Table, row: Any) -> Any:
    cols = list(table.primary_key.columns)
    cond = cols[0] == getattr(row, cols[0].name)
    for c in cols[1:]:
        cond = cond & (c == getattr(row, c.name))
    return cond


async def erase_case_rows(uow: UnitOfWork, metadata: MetaData, case_id: str) -> dict[str, int]:
    """Erase the case's personal data in this database (see the module's rules). Returns the rows
    touched per table (ids and counts only, for the log)."""
    touched: dict[str, int] = {}
    for table in metadata.sorted_tables:
        if "case_id" not in table.c:
            continue
        how = table.info.get("erasure")
        if how == "keep":
            continue
        if how == "delete":
            result = await uow.execute(delete(table).where(table.c.case_id == case_id))
            touched[table.name] = getattr(result, "rowcount", 0) or 0
            continue
        json_cols = [c for c in table.c if isinstance(c.type, JSONText)]
        text_cols = [table.c[n] for n in table.info.get("personal_text", ())]
        if not json_cols and not text_cols:
            continue
        pk = list(table.primary_key.columns)
        rows = (await uow.execute(select(*pk, *json_cols, *text_cols).where(table.c.case_id == case_id))).all()
        n = 0
        for row in rows:
            values: dict[str, Any] = {}
            for c in json_cols:
                old = getattr(row, c.name)
                new = scrub(old)
                if new != old:
                    values[c.name] = new
            for c in text_cols:
                if getattr(row, c.name):
                    values[c.name] = ERASED_TEXT
            if values:
                await uow.execute(update(table).where(_pk_where(table, row)).values(**values))
                n += 1
        touched[table.name] = n
    return touched
