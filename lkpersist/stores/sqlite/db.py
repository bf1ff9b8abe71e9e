"""The SQLite file underneath :class:`~lkpersist.stores.sqlite.SQLiteStore`: URL, schema, pragmas, errors.

One :class:`Database` owns one ``sqlite3`` connection, created in and only ever used by one dedicated
worker thread, so blocking file I/O never runs on the event loop and calls from one store are serial.
Several processes share the file safely:

- ``journal_mode=WAL``: readers never block the writer and the writer never blocks readers.
- every write runs in ``BEGIN IMMEDIATE``: the write lock is taken up front, so a second writer waits
  on ``busy_timeout`` (30 s by default) instead of failing later with "database is locked" when a
  read transaction tries to upgrade.
- ``synchronous=NORMAL``: no fsync per commit (WAL keeps the file consistent; after a power cut the
  last commits may be lost, never corrupted). ``?synchronous=full`` trades throughput for that.
- opening races (two processes creating the schema or switching to WAL at once) are retried until
  the busy timeout.
- a missing file is created, with its directories, only when the target allows it (``create``; read
  commands pass False and get StoreNotFoundError, nothing created). A file this user cannot write (an
  operator reading the service user's database) is opened read-only (``mode=ro``; when the directory is
  not writable either and no WAL is in use, ``immutable=1``): reads work, a write is StoreReadOnlyError.

Every ``sqlite3.Error`` is translated here, once, into the lkpersist error family (:func:`translate`).
"""

from __future__ import annotations

import asyncio
import os
import random
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from lkpersist.exceptions import StoreError, StoreNotFoundError, StoreUnavailableError
from lkpersist.stores.sqlite.errors import is_busy, no_shared_memory, translate
from lkpersist.stores.sqlite.schema import check_schema, prepare_schema
from lkpersist.stores.sqlite.url import SQLiteTarget

T = TypeVar("T")


def open_connection(target: SQLiteTarget) -> sqlite3.Connection:
    """Open the file, set the pragmas, create or check the schema.

    Missing: created with its directories when ``target.create``, else StoreNotFoundError (nothing is
    created, not even by a race: the URI's ``mode=rw`` never creates). Not writable by this user: opened
    read-only, the schema only checked.
    """
    if target.path.exists():
        if not writable(target.path):
            return _open_read_only(target)
    elif target.create:
        target.path.parent.mkdir(parents=True, exist_ok=True)
    else:
        raise StoreNotFoundError(f"SQLite store {str(target.path)!r} does not exist (nothing was created)",
                                 str(target.path))
    conn = _connect(target, "rwc" if target.create else "rw")
    try:
        _retry_while_busy(lambda: _prepare(conn, target), time.monotonic() + target.timeout)
    except BaseException:
        conn.close()
        raise
    return conn


def writable(path: Path) -> bool:
    """Whether this process may write the database: the file, and its directory or else both WAL files
    (a WAL database's writers need the ``-wal`` and ``-shm`` beside it)."""
    if not os.access(path, os.W_OK):
        return False
    if os.access(path.parent, os.W_OK | os.X_OK):
        return True
    return all(os.access(f"{path}{suffix}", os.W_OK) for suffix in ("-wal", "-shm"))


def _connect(target: SQLiteTarget, mode: str, *extra: str) -> sqlite3.Connection:
    uri = f"file:{quote(str(target.path))}?" + "&".join((f"mode={mode}", *extra))
    return sqlite3.connect(uri, uri=True, timeout=target.timeout, isolation_level=None)


def _open_read_only(target: SQLiteTarget) -> sqlite3.Connection:
    """A read-only connection. Reading a WAL database needs its ``-shm``; when it is absent and cannot be
    created here (the directory is not ours), and there is no ``-wal`` either (no writer has anything
    unsaved), the file is complete on its own and ``immutable=1`` reads it without one."""
    conn = _connect(target, "ro")
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(target.timeout * 1000)}")
        check_schema(conn)
        return conn
    except sqlite3.OperationalError as exc:
        conn.close()
        if not no_shared_memory(exc) or Path(f"{target.path}-wal").exists():
            raise
    conn = _connect(target, "ro", "immutable=1")
    try:
        check_schema(conn)
    except BaseException:
        conn.close()
        raise
    return conn


def _prepare(conn: sqlite3.Connection, target: SQLiteTarget) -> None:
    conn.execute(f"PRAGMA busy_timeout = {int(target.timeout * 1000)}")
    conn.execute(f"PRAGMA synchronous = {target.synchronous.upper()}")
    if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
        conn.execute("PRAGMA journal_mode = WAL")
    prepare_schema(conn)


def _retry_while_busy(step: Callable[[], None], deadline: float) -> None:
    """Switching to WAL or creating the schema can meet SQLITE_BUSY without the busy handler running."""
    while True:
        try:
            step()
            return
        except sqlite3.OperationalError as exc:
            if not is_busy(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.005 + random.random() * 0.02)


class Database:
    """One lazily opened connection on its own single worker thread; ``run`` is the only way in."""

    def __init__(self, target: SQLiteTarget) -> None:
        self.target = target
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None
        self._closed = False
        self._pid = os.getpid()

    async def run(self, work: Callable[..., T], *args: Any) -> T:
        """Run ``work(connection, *args)`` on the worker thread; sqlite3 errors come back translated."""
        if self._closed:
            raise StoreError(f"SQLite store {str(self.target.path)!r} is closed")
        if self._pid != os.getpid():
            self._forget_parent_process()
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lkpersist-sqlite")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._call, work, args)

    def _call(self, work: Callable[..., T], args: tuple[Any, ...]) -> T:
        try:
            if self._conn is None:
                self._conn = open_connection(self.target)
            return work(self._conn, *args)
        except sqlite3.Error as exc:
            raise translate(exc, self.target) from exc
        except OSError as exc:  # creating the parent directory, or checking access to the file
            raise StoreUnavailableError(
                f"SQLite store {str(self.target.path)!r}: {os.strerror(exc.errno or 0) or exc}"
            ) from exc

    def _forget_parent_process(self) -> None:
        """After a fork the worker thread is gone and a SQLite connection must not cross into the child:
        start over with a thread and a connection of this process's own."""
        self._pid, self._executor, self._conn = os.getpid(), None, None

    async def close(self) -> None:
        """Close the connection on its own thread, then let the thread go; closing twice is fine."""
        if self._closed:
            return
        self._closed = True
        executor, self._executor = self._executor, None
        if executor is None:
            return
        try:
            await asyncio.get_running_loop().run_in_executor(executor, self._close_connection)
        finally:
            executor.shutdown(wait=False)

    def _close_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
