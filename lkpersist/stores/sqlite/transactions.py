"""The two kinds of transaction every SQLite statement of lkpersist runs in.

Writes use :func:`immediate`: ``BEGIN IMMEDIATE`` takes the write lock from the first statement, so a
second writer (another process) waits on ``busy_timeout`` instead of failing later with "database is
locked" when a read transaction tries to upgrade. Multi-statement reads use :func:`snapshot`, so they
see one consistent state of the file.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def immediate(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A write transaction holding the write lock from its first statement (see the module docstring)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise



@contextmanager
def snapshot(conn: sqlite3.Connection) -> Iterator[None]:
    """A read transaction: the statements inside see one consistent state of the file."""
    conn.execute("BEGIN")
    try:
        yield
    finally:
        if conn.in_transaction:
            conn.execute("COMMIT")
