"""Children across referrals: the key that identifies a child, pseudonymised for the linking index.

Plain Python: no I/O.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from datetime import date
from typing import Any

from .hetu import InvalidHetu, parse_hetu


def fold(s: str | None) -> str:
    """Text as people compare it: Unicode-normalised, case-folded, single spaces."""
    s = unicodedata.normalize("NFKC", s or "").casefold()
    return " ".join(s.split())


def child_key(child: Any) -> str | None:
    """What identifies a child across submissions, in the clear: the henkilötunnus, else name and date of birth."""
    if child.personal_id:
        try:
            return "hetu:" + parse_hetu(child.personal_id).value
        except InvalidHetu:
            return None
    if child.date_of_birth and child.family_name:
        return f"name:{fold(child.given_name)}|{fold(child.family_name)}|{child.date_of_birth.isoformat()}"
    return None


Pseudonym = Callable[[str], str]
"""A keyed one-way function (shared.pseudonyms.pseudonym), given to the domain by the handlers."""


def child_keys(sub: Any, pseudonym: Pseudonym) -> list[str]:
    """Keys that identify each child across referrals, pseudonymised (a keyed HMAC) so the index
    holds no identity codes: the full 11-character henkilötunnus, or for a child without one, name
    and date of birth. ``pseudonym("hetu:" + code)`` is ``shared.pseudonyms.person_key(code)``."""
    keys = []
    for c in sub.children:
        k = child_key(c)
        if k is not None:
            keys.append(pseudonym(k))
    return keys


def child_keys_of_details(details: dict[str, Any], pseudonym: Pseudonym) -> list[str]:
    """The child keys of a stored referral, recomputed from its details (the normalised submission):
    a change of key or scheme re-keys the index from what is stored."""
    from types import SimpleNamespace

    children = []
    for c in details.get("children", []):
        born = c.get("date_of_birth")
        children.append(
            SimpleNamespace(
                given_name=c.get("given_name"),
                family_name=c.get("family_name"),
                personal_id=c.get("personal_id"),
                date_of_birth=date.fromisoformat(born) if isinstance(born, str) else born,
            )
        )
    return child_keys(SimpleNamespace(children=children), pseudonym)
