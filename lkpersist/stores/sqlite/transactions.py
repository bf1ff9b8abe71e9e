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
from types import TracebackType


class immediate:  # lower case: it replaced a function, and reads as one (``with immediate(conn):``)
    """A write transaction holding the write lock from its first statement (see the module docstring).

    A class rather than a ``contextmanager`` generator: it opens every presence write, where the
    generator's machinery cost about as much as one statement."""

    __slots__ = ("_conn",)

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self._conn.execute("BEGIN IMMEDIATE")
        return self._conn

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None) -> None:
        if kind is None:
            try:
                self._conn.execute("COMMIT")
                return
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise
        if self._conn.in_transaction:
            self._conn.execute("ROLLBACK")


@contextmanager
def snapshot(conn: sqlite3.Connection) -> Iterator[None]:
    """A read transaction: the statements inside see one consistent state of the file."""
    conn.execute("BEGIN")
    try:
        yield
    finally:
        if conn.in_transaction:
            conn.execute("COMMIT")
