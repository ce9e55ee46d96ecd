"""Contact details stay with the notifications service (data minimisation, issue 19).

An event version that carried contact details (``ContactPoint``: e-mail, phone) is retired. Its
producer still builds it (``uow.emit(ReferralReceived, ...)``), but the outbox publishes two
forms of it in the same transaction, with the same ``event_id``:

- the public successor ``<event>.v2``: the same fields, every ``ContactPoint`` cut down to a
  :class:`ContactRef` (id, role, language). Services, staff apps and statistics read this one;
- the private copy ``directory.<event>.v1`` on the ``DIRECTORY`` stream: the full event, for the
  notifications service only (its contact directory and its messages). No staff, front-door or
  other service identity may subscribe to these subjects or create a consumer on that stream
  (infra/auth.py).

The models are derived from the retired version, so the three cannot drift apart.
"""

from __future__ import annotations

import types
import typing
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, create_model

from .base import TRUSTED, Contract, Event
from .common import ContactPoint, Id, Language, ShortText

DIRECTORY_STREAM = "DIRECTORY"
DIRECTORY_PREFIX = "directory."
DIRECTORY_READERS = ("notifications",)
"""The services that read the private copies (and nothing else may)."""


class ContactRef(Contract):
    """Who a person is in the case, without how to reach them: the notifications service alone
    keeps e-mail addresses and phone numbers (its directory, filled from ``directory.>``)."""

    # Built from a ContactPoint: its e-mail and phone are dropped, not refused.
    model_config = ConfigDict(extra="ignore", hide_input_in_errors=True, frozen=True)

    contact_id: Id = Field(description="Stable id of the person within the case, e.g. 'guardian-1' or a staff id.")
    role: ShortText = Field(description="Role in the case: guardian, close_worker, social_worker, referrer, ...")
    language: Language = Field(default="fi", description="Language the person is contacted in.")


_DERIVED: dict[type, type] = {}


def _holds_contact(tp: Any, seen: frozenset[type] = frozenset()) -> bool:
    if tp is ContactPoint:
        return True
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        if tp in seen:
            return False
        return any(_holds_contact(f.annotation, seen | {tp}) for f in tp.model_fields.values())
    return any(_holds_contact(a, seen) for a in get_args(tp))


def _minimised_type(tp: Any) -> Any:
    """``tp`` with every ContactPoint (also in nested models, lists and unions) a ContactRef."""
    if tp is ContactPoint:
        return ContactRef
    if not _holds_contact(tp):
        return tp
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return _minimised_model(tp, f"{tp.__name__}Ref")
    # The types are built at run time (for pydantic), hence the special forms taken with getattr.
    origin, args = get_origin(tp), get_args(tp)
    if origin is Annotated:
        return getattr(typing, "Annotated")[(_minimised_type(args[0]), *tp.__metadata__)]  # noqa: B009
    if origin in (Union, types.UnionType):
        return getattr(typing, "Union")[tuple(_minimised_type(a) for a in args)]  # noqa: B009
    if origin is list:
        return types.GenericAlias(list, (_minimised_type(args[0]),))
    if origin is dict:
        return types.GenericAlias(dict, (args[0], _minimised_type(args[1])))
    raise TypeError(f"cannot minimise {tp!r}")


def _minimised_model(model: type[BaseModel], name: str, doc: str | None = None) -> type[Any]:
    derived = _DERIVED.get(model)
    if derived is None:
        fields: dict[str, Any] = {
            n: (_minimised_type(f.annotation), f) for n, f in model.model_fields.items() if _holds_contact(f.annotation)
        }
        derived = create_model(name, __base__=model, __doc__=doc or model.__doc__, **fields)
        _DERIVED[model] = derived
    return derived


def holds_contacts(model: type[Event]) -> bool:
    return any(_holds_contact(f.annotation) for f in model.model_fields.values())


_ROUTED_TEXT = (
    "Published on ``{subject}.<municipality>.<team>`` (the case's routing ids), so that a staff app may read "
    "its own teams' events only."
)


def route(model: type[Event]) -> type[Event]:
    """Retire ``model`` (a staff-facing version on one subject for all teams): its successor, the
    same fields on routed subjects (shared/contracts/routes.py), registered as ``public_form``."""
    version = model.version + 1
    subject = f"{model.event_type}.v{version}"
    routed: type[Event] = create_model(
        f"{model.__name__}V{version}",
        __base__=model,
        __doc__=f"{(model.__doc__ or '').strip()}\n\n{_ROUTED_TEXT.format(subject=subject)} "
        f"Successor of ``{model.subject()}``, which is retired.",
    )
    routed.version = version
    routed.routed = True
    routed.public_form = routed.directory_form = None
    model.public_form = routed
    return routed


def split(model: type[Event], routed: bool = False) -> tuple[type[Event], type[Event]]:
    """Retire ``model`` (a version with contact details): its public successor (on routed subjects
    when staff-facing) and its private directory copy, registered on it (``public_form``,
    ``directory_form``)."""
    doc = (model.__doc__ or "").strip()
    version = model.version + 1
    routing = " " + _ROUTED_TEXT.format(subject=f"{model.event_type}.v{version}") if routed else ""
    public: type[Event] = _minimised_model(
        model,
        f"{model.__name__}V{version}",
        f"{doc}\n\nNo contact details: people appear as contact ids and roles (the notifications service "
        f"keeps the addresses).{routing} Successor of ``{model.subject()}``, which is retired.",
    )
    public.version = version
    public.routed = routed
    directory: type[Event] = create_model(
        f"{model.__name__}Directory",
        __base__=model,
        __doc__=f"Private copy of ``{public.subject()}`` with the contact details, for the notifications "
        "service's contact directory only (no other identity may read the DIRECTORY stream).",
    )
    directory.event_type = DIRECTORY_PREFIX + model.event_type
    directory.stream = DIRECTORY_STREAM
    directory.version = model.version
    public.public_form = public.directory_form = None
    directory.public_form = directory.directory_form = None
    model.public_form = public
    model.directory_form = directory
    return public, directory


def privatise(model: type[Event]) -> type[Event]:
    """Retire ``model`` (meant for the notifications service only, e.g. the family's copy of a plan):
    it is published as its private directory copy alone."""
    directory: type[Event] = create_model(
        f"{model.__name__}Directory",
        __base__=model,
        __doc__=f"{(model.__doc__ or '').strip()}\n\nOn the DIRECTORY stream: no identity but the notifications "
        f"service may read it. Successor of ``{model.subject()}``, which is retired.",
    )
    directory.event_type = DIRECTORY_PREFIX + model.event_type
    directory.stream = DIRECTORY_STREAM
    directory.public_form = directory.directory_form = None
    model.directory_form = directory
    return directory


def published_forms(event: Event) -> list[tuple[str, Event]]:
    """(message id, event) the outbox publishes for ``event``: itself, or for a retired version its
    public successor (and, when it carried contact details, its private directory copy)."""
    public, directory = type(event).public_form, type(event).directory_form
    if public is None and directory is None:
        return [(str(event.event_id), event)]
    data = event.model_dump()
    forms: list[tuple[str, Event]] = []
    if public is not None:
        forms.append((str(event.event_id), public.model_validate(data, context=TRUSTED)))
    if directory is not None:
        message_id = f"directory:{event.event_id}" if forms else str(event.event_id)
        forms.append((message_id, directory.model_validate(data, context=TRUSTED)))
    return forms
