"""The request pipeline's small parts (shared/service.py runs them): which cases a request names,
the verified caller as the policy sees it, refusals and their audit records.

Error codes a client meets here (docs/errors in the README): ``unauthenticated`` (no, expired,
forged or unknown-key token), ``forbidden`` (the policy refused; ``data.reason`` says why),
``purpose_required`` (a read of personal data without a purpose from the documented list),
``version_retired`` (an old request version; ``data.successor`` names the subject to use).
"""

from __future__ import annotations

from typing import Any

from shared.audit import REFUSED, AuditLog
from shared.contracts.base import FieldError, Reply
from shared.errors import message as registered_text
from shared.policy import PURPOSE_REQUIRED, Access, Caller
from shared.storage.uow import UnitOfWork

# The texts are the error registry's (shared/errors.py, docs/errors.md): one voice for every code.
UNAUTHENTICATED_TEXT = registered_text("unauthenticated")
FORBIDDEN_TEXT = registered_text("forbidden")
PURPOSE_TEXT = registered_text(PURPOSE_REQUIRED)
RETIRED_TEXT = registered_text("version_retired")
_TEXTS = {"forbidden": FORBIDDEN_TEXT, PURPOSE_REQUIRED: PURPOSE_TEXT}


def refusal(code: str, field: str = "$", data: dict[str, Any] | None = None, **message: str) -> Reply:
    text = message or _TEXTS.get(code) or registered_text(code)
    return Reply(ok=False, errors=[FieldError(field=field, code=code, message=text)], data=data)


def with_purpose_required(errors: list[FieldError], reads: bool = False) -> list[FieldError]:
    """A missing purpose is its own code (``purpose_required``), not a generic ``missing``; on a
    read of personal data (``reads``) so is one not in the documented list, not a ``literal_error``."""
    codes = ("missing", "literal_error") if reads else ("missing",)
    return [
        FieldError(field="purpose", code=PURPOSE_REQUIRED, message=PURPOSE_TEXT)
        if e.field == "purpose" and e.code in codes
        else e
        for e in errors
    ]


def invalid_request(errors: list[FieldError], reads: bool = False) -> Reply:
    """The reply to a request that failed validation. A purpose refused here says why in
    ``data.reason`` as the policy would (``purpose_missing``, ``purpose_unknown``). Nothing was read
    and the caller is not yet verified, so nothing goes to the access log."""
    fixed = with_purpose_required(errors, reads)
    turned = next((e.code for e, f in zip(errors, fixed, strict=True) if f is not e), None)
    reason = {"missing": "purpose_missing", "literal_error": "purpose_unknown"}.get(turned or "")
    return Reply(ok=False, errors=fixed, data={"reason": reason} if reason else None)


def requested_cases(request: Any, access: Access) -> list[str]:
    """The case ids a request names (its ``access.case`` field: one id or a list)."""
    if access.case is None:
        return []
    value = getattr(request, access.case, None)
    if value is None:
        return []
    values = value if isinstance(value, list | tuple) else [value]
    return [str(v) for v in dict.fromkeys(values)]


def caller_of(principal: Any) -> Caller:
    """The policy's view of a verified principal; a guardian is known by the keyed hash of the
    henkilötunnus their strong identification gave (shared/pseudonyms.py)."""
    guardian_key = None
    if principal.kind == "guardian":
        from shared.pseudonyms import person_key

        guardian_key = person_key(principal.person_id)
    return Caller(
        person_id=str(principal.person_id),
        kind=principal.kind,
        roles=frozenset(principal.roles),
        teams=frozenset(principal.teams),
        guardian_key=guardian_key,
    )


def audit_actor(principal: Any) -> str:
    """Who goes in the access log: a staff id, or for a guardian the keyed hash (never the
    henkilötunnus)."""
    if principal.kind == "guardian":
        from shared.pseudonyms import person_key

        return f"guardian:{person_key(principal.person_id)[:32]}"
    return str(principal.person_id)


async def record_refusal(uow: UnitOfWork, actor: str, subject: str, case_ids: list[str], reason: str) -> None:
    """One ``refused`` record per named case (the action is the request's subject, the purpose
    the refusal's reason code). A request naming no case leaves none: there is no family to tell."""
    log: AuditLog = uow.audit  # type: ignore[attr-defined]
    for case_id in case_ids:
        await log.record(
            actor=actor, case_id=case_id, action=subject, purpose=f"refused:{reason}", result=REFUSED, scope=f"case:{case_id}"
        )


async def reachable(uow: UnitOfWork, case_ids: list[str]) -> set[str]:
    """Of these cases, those the verified caller reaches (a list query shows only those)."""
    from shared.case_access import CaseAccess
    from shared.policy import staff_relation

    caller = caller_of(uow.principal)
    return {rel.case_id for rel in await CaseAccess(uow).relations(case_ids) if staff_relation(caller, rel) is not None}
