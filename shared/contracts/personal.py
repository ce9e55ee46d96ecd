"""The marker of a family's personal data in an event: ``field: Personal[T] = Field(...)``.

A field so marked never travels in clear: the runtime seals it when the event is written to the
outbox (AES-GCM with the case's own data key, shared/sealing.py) and opens it when a service
consumes the event. On the wire, and in every stream, replica, backup and dead letter, its value is
a string ``sealed:v1:<base64url>``; once the case is erased (its key destroyed) no one can open it
again ("crypto-shredding", docs/operations.md §11). Clients outside the services read a family's
personal data through the audited queries, never from events: for them a sealed field is opaque.
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic_core import core_schema

SEALED_PREFIX = "sealed:v1:"

SEALED_DESCRIPTION = (
    "Personal data of the family, sealed: a string 'sealed:v1:' followed by base64url (no padding) of a "
    "12-byte nonce and the AES-256-GCM ciphertext of the field's JSON value, under the case's own data key. "
    "Only the services can open it; after the family's erasure nobody can. Clients read this data through "
    "the audited queries instead."
)


class Sealed(str):
    """A personal field's value as it travels: ciphertext, to be opened by the runtime."""

    __slots__ = ()


class PersonalData:
    """Annotation marker (use :data:`Personal`). It accepts either the field's own value (the
    producer's side, and events written before sealing existed) or a sealed string, which it keeps
    as :class:`Sealed` for the runtime to open."""

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        inner = handler(source)

        def validate(value: Any, then: core_schema.ValidatorFunctionWrapHandler) -> Any:
            if isinstance(value, str) and value.startswith(SEALED_PREFIX):
                return Sealed(value)
            return then(value)

        def serialize(value: Any, then: core_schema.SerializerFunctionWrapHandler) -> Any:
            return str(value) if isinstance(value, Sealed) else then(value)

        return core_schema.no_info_wrap_validator_function(
            validate, inner, serialization=core_schema.wrap_serializer_function_ser_schema(serialize, schema=inner)
        )

    def __get_pydantic_json_schema__(self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler) -> dict[str, Any]:
        plain = handler(schema)
        sealed = {"type": "string", "pattern": f"^{SEALED_PREFIX}", "description": SEALED_DESCRIPTION}
        return {"anyOf": [plain, sealed], "x-koolle-personal": True}


PERSONAL = PersonalData()

T = TypeVar("T")
Personal = Annotated[T, PERSONAL]
"""``Personal[list[ContactPoint]]``: the field holds the family's personal data (sealed in transit)."""


def is_personal(metadata: list[Any]) -> bool:
    """Whether a pydantic field's metadata carries the marker."""
    return any(isinstance(m, PersonalData) for m in metadata)
