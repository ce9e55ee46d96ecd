"""The driver fast path: declared statements run on SQLite's driver or asyncpg, compiled once by SQLAlchemy.

declare.py: which statements take it (declared once: :func:`hot`, :func:`hot_once`); plan.py: how a
statement is compiled and run; routing.py: the unit of work's ``execute`` choosing between it and
SQLAlchemy.
"""
