"""Column types every service uses: aware UTC datetimes and JSON text, alike on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic_core import from_json, to_json
from sqlalchemy import DateTime, Text
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Stores aware datetimes as UTC and always returns them aware (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    # The same values as the SQLite bind and result processors above produce and read, in one step
    # each, for the driver fast path (shared/storage/fastpath/); tests/integration/test_fastsql.py compares.
    @staticmethod
    def sqlite_bind(value: datetime | None) -> str | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", timespec="microseconds")

    @staticmethod
    def sqlite_result(value: str | None) -> datetime | None:
        return None if value is None else datetime.fromisoformat(value).replace(tzinfo=UTC)


class JSONText(TypeDecorator[Any]):
    """JSON stored as text: the same on SQLite and PostgreSQL, compact, order-preserving."""

    impl = Text
    cache_ok = True

    # pydantic-core's JSON (Rust) instead of the json module: ≈ 4× faster, and the stored states are
    # most of what a transaction serialises (bench/). Non-ASCII text is stored as UTF-8, not \u escapes.
    def process_bind_param(self, value: Any, dialect: Any) -> str | None:
        return None if value is None else to_json(value, fallback=str).decode()

    def process_result_value(self, value: str | None, dialect: Any) -> Any:
        return None if value is None else from_json(value)
