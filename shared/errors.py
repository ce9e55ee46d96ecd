"""Errors a domain raises when a command is refused. Plain Python: safe to import from a domain."""

from __future__ import annotations


class DomainError(Exception):
    """A command was refused for a reason the user can fix.

    ``field`` and ``code`` are machine-readable; ``message`` is by language (fi, sv, en). Messages are
    written by us and never contain input values, so they are safe to log.
    """

    def __init__(self, code: str, field: str = "$", en: str = "", fi: str = "", sv: str = "") -> None:
        super().__init__(code)
        self.code = code
        self.field = field
        self.message = {k: v for k, v in {"fi": fi, "sv": sv, "en": en}.items() if v}

    def __str__(self) -> str:  # never carries input values
        return f"{self.code} at {self.field}"


class NotFound(DomainError):
    def __init__(self, what: str) -> None:
        super().__init__("not_found", what, en=f"Unknown {what}.", fi="Tuntematon tunniste.", sv="Okänd identifierare.")
