"""The tables the runtime adds to every service's database."""

from __future__ import annotations

from sqlalchemy import MetaData, Table

from shared.storage.commandlog import command_log_table
from shared.storage.inbox import inbox_table
from shared.storage.outbox import outbox_table


def messaging_tables(metadata: MetaData) -> tuple[Table, Table]:
    """Add the outbox, inbox and command-log tables to a service's metadata; returns outbox and inbox."""
    outbox = outbox_table(metadata)
    inbox = inbox_table(metadata)
    command_log_table(metadata)
    return outbox, inbox
