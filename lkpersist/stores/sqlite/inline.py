"""Short writes on the event loop's own thread, when the file's write lock is free at once.

The presence writes (arrive, leave, beat, a greeting claim) are one small ``BEGIN IMMEDIATE``
transaction each, tens of microseconds of SQLite. Handing one to the worker thread and back
(:class:`~lkpersist.stores.sqlite.db.Database`) costs about as much again: a queue, two thread
switches and a wake-up of the loop. :class:`InlineWriter` keeps a second connection for the loop's
thread and runs such a write there, under the same rules (WAL, the store's ``synchronous``,
``BEGIN IMMEDIATE``), with one difference that keeps the loop from ever waiting: its busy timeout is
zero. When another writer (another process, or this store's worker in the middle of a group commit)
holds the lock, the transaction is rolled back untouched and the caller hands the write to the
worker, which waits for the lock as every write always has.

What else could stall the loop is kept off it: this connection never checkpoints
(``wal_autocheckpoint=0``); every ``CHECKPOINT_EVERY`` commits it asks the worker for passive
checkpoints. The first runs while inline writes go on (syncing the WAL written since the last one is
the long part: most of the checkpoint's time), later ones catch up with what was written meanwhile,
and the last runs with inline writes paused (they take the worker's way, queued behind it; a write in
flight is waited for), so it reaches the end of the WAL and the next write starts the WAL over. The WAL
stays bounded whatever the timing: once ``CATCH_UP_COMMITS`` inline commits were made after the
request, the writer pauses itself until the checkpoint is done, so the WAL never holds more than
``CHECKPOINT_EVERY + CATCH_UP_COMMITS`` commits. The connection is opened only after the worker has
prepared the schema, is used only by the thread that opened it, and is forgotten (never used) in a
forked child.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import quote

from lkpersist.stores.sqlite.errors import is_busy, translate
from lkpersist.stores.sqlite.url import SQLiteTarget

T = TypeVar("T")
CHECKPOINT_EVERY = 500
"""Inline commits between two checkpoints asked of the worker (each commit of an arrival adds ~6 WAL frames)."""
CATCH_UP_COMMITS = CHECKPOINT_EVERY // 2
"""Inline commits a checkpoint may let through before inline writes pause for the rest of it (a WAL of
``1.5 * CHECKPOINT_EVERY`` commits at most: about 20 MB of new arrivals)."""


class InlineWriter:
    """The loop thread's connection; :meth:`attempt` runs a write now or says it could not."""

    def __init__(self, target: SQLiteTarget, checkpoint: Callable[[], None]) -> None:
        self.target = target
        self._checkpoint = checkpoint
        self._conn: sqlite3.Connection | None = None
        self._owner: tuple[int, int] | None = None  # (pid, thread id) the connection belongs to
        self._commits = 0
        self.usable = True
        self.paused = False
        """Set while the worker copies the last frames of a checkpoint (see the module docstring)."""
        self._asked_at: int | None = None
        """The commit count when the checkpoint under way was asked for (None: none is)."""
        self._writing = threading.Lock()
        """Held by an inline write, so :meth:`pause` waits for the one in flight (its frames, written
        after the last checkpoint, would keep the WAL from starting over)."""

    def pause(self) -> None:
        """Send inline writes to the worker from now on, once the one in flight (if any) has committed."""
        with self._writing:
            self.paused = True

    def resume(self) -> None:
        """The checkpoint is done: inline writes again (called by the worker, even if the loop is gone)."""
        self._asked_at, self.paused = None, False

    def attempt(self, work: Callable[..., T], args: tuple[Any, ...]) -> tuple[bool, T | None]:
        """(True, result) when ``work(connection, *args)`` ran and committed here; (False, None) when the
        lock was taken (nothing was changed): run it on the worker. Other errors are raised translated."""
        conn = self._connection()
        if conn is None:
            return False, None
        with self._writing:
            if self.paused:
                return False, None
            try:
                result = work(conn, *args)
            except sqlite3.Error as exc:
                if is_busy(exc):
                    return False, None
                raise translate(exc, self.target) from exc
            self._commits += 1
            if self._asked_at is not None and self._commits - self._asked_at >= CATCH_UP_COMMITS:
                self.paused = True  # the checkpoint fell this far behind: the WAL stops growing here
        if self._commits % CHECKPOINT_EVERY == 0 and self._asked_at is None:
            self._asked_at = self._commits
            self._checkpoint()
        return True, result

    def _connection(self) -> sqlite3.Connection | None:
        here = (os.getpid(), threading.get_ident())
        if self._conn is not None and self._owner == here:
            return self._conn
        if self._owner is not None and self._owner[0] != here[0]:  # a forked child: nothing of the parent's
            self._conn, self._owner = None, None  # connection, nor its pending checkpoint,
            self._writing = threading.Lock()  # nor a lock the parent's worker held at the fork
            self.resume()
        if self._conn is not None or not self.usable:
            return None  # another thread owns it: that caller goes through the worker
        try:
            self._conn, self._owner = _open(self.target), here
        except sqlite3.Error:
            self.usable = False  # e.g. not writable by this user: every write takes the worker's way
        return self._conn

    def close(self) -> None:
        """Close the connection when this is its thread (another thread's is left to the collector)."""
        conn, self._conn = self._conn, None
        if conn is not None and self._owner == (os.getpid(), threading.get_ident()):
            conn.close()


def _open(target: SQLiteTarget) -> sqlite3.Connection:
    uri = f"file:{quote(str(target.path))}?mode=rw"
    conn = sqlite3.connect(uri, uri=True, timeout=0, isolation_level=None)
    try:
        conn.execute("PRAGMA busy_timeout = 0")
        conn.execute(f"PRAGMA synchronous = {target.synchronous.upper()}")
        conn.execute("PRAGMA wal_autocheckpoint = 0")
        if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            raise sqlite3.OperationalError("not in WAL mode")
    except BaseException:
        conn.close()
        raise
    return conn


__all__ = ["CATCH_UP_COMMITS", "CHECKPOINT_EVERY", "InlineWriter"]
