"""Request versions: a successor model is its predecessor without the fields in which a caller
named itself (``requested_by``, ``recorded_by``, ``convened_by``, ``accepted_by``: the runtime
takes the actor from the verified token), with the case named where the runtime needs it to
decide access, and with a required ``purpose`` from the documented list on reads of personal
data. The predecessor is marked retired and is refused with a pointer to the successor."""

from __future__ import annotations

from typing import Any, Literal, Optional
from uuid import UUID

from pydantic import Field, create_model
from pydantic.fields import FieldInfo

from shared.policy import PURPOSES, Access

from .base import Contract

Purpose = Literal[
    "case_work",
    "meeting_preparation",
    "plan_follow_up",
    "deadline_follow_up",
    "delivery_follow_up",
    "access_request",
    "supervision",
    "own_data",
    "operations_review",
]
"""Why personal data is read (shared.policy.PURPOSES describes each)."""
assert set(Purpose.__args__) == set(PURPOSES)  # type: ignore[attr-defined]

SELF_NAMING = ("requested_by", "recorded_by", "convened_by", "accepted_by")

PURPOSE_TEXT = "Why the data is read, one of the documented purposes (written to the access log). Required."
CASE_TEXT = "The family's case the request is about (access is decided from it)."


def successor(
    previous: type[Contract],
    subject: str,
    access: Access,
    *,
    drop: tuple[str, ...] = (),
    add_case: bool = False,
    optional: tuple[str, ...] = (),
    required: dict[str, Any] | None = None,
    doc: str = "",
) -> type[Contract]:
    """The next version of ``previous`` (see the module's docstring)."""
    fields: dict[str, Any] = {}
    for name, info in previous.model_fields.items():
        if name in SELF_NAMING or name in drop:
            continue
        if name == "purpose" and access.needs_purpose:
            fields[name] = (Purpose, Field(description=PURPOSE_TEXT))
            continue
        if name in optional:
            copy = FieldInfo.merge_field_infos(info, default=None)
            fields[name] = (Optional[info.annotation], copy)  # noqa: UP045 - a runtime type
            continue
        fields[name] = (info.annotation, info)
        if name == "command_id" and add_case:
            fields["case_id"] = (UUID, Field(description=CASE_TEXT))
    if add_case and "case_id" not in fields:
        fields = {"case_id": (UUID, Field(description=CASE_TEXT)), **fields}
    for name, spec in (required or {}).items():
        fields[name] = spec
    version = subject.rsplit(".v", 1)[1]
    doc = doc or (previous.__doc__ or "").replace(".v1``", f".v{version}``")
    model = create_model(f"{previous.__name__}V{version}", __base__=Contract, __doc__=doc, **fields)
    model.access = access
    model.predecessor = previous  # its reply_data is the predecessor's (shared/contracts/__init__.py)
    previous.retired_by = subject
    return model
