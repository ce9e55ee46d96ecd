"""Storage: every service's database plumbing, by job.

- columns.py: column types (aware UTC datetimes, JSON text); indexes.py: partial indexes;
- engine.py: engines (SQLite on the loop's thread, PostgreSQL pooled); sqlite_inline.py: the
  SQLite connection behind it; checkpointer.py: WAL checkpoints off the loop;
- database.py: a service's database (engines, sessions, the SQLite writer);
- outbox.py, inbox.py, commandlog.py: the runtime's tables and the unit of work's helpers for
  each; tables.py adds all three to a service's metadata; handoff.py: committed outbox rows to
  the relay;
- statements.py: ``uow.insert/row/rows/update``, each statement shape built once;
- fastpath/: hot statements on the driver (declare.py: which; plan.py: how; routing.py: where);
- uow.py: the unit of work.

Each module is imported by its own path; this package re-exports nothing.
"""
