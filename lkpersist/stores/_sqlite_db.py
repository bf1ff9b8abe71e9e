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

Every ``sqlite3.Error`` is translated here, once, into the lkpersist error family (:func:`translate`).
"""

from __future__ import annotations

import asyncio
import os
import random
import sqlite3
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit

from lkpersist.exceptions import InvalidStoreURLError, StoreError, StoreUnavailableError
from lkpersist.stores._sqlite_events import EVENTS_SCHEMA
from lkpersist.stores._sqlite_locks import LOCKS_SCHEMA

T = TypeVar("T")

STORAGE_VERSION = 2  # version of the table layout below, recorded in lkpersist_meta (2: events, locks)
DEFAULT_TIMEOUT = 30.0
_SYNCHRONOUS = ("normal", "full")
_BUSY_CODES = (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
_UNUSABLE_CODES = (sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT)

# Times are integer milliseconds. ``deadline`` is Session.deadline (connected: last_seen + ttl;
# disconnected: expires_at), rewritten on every write so count/list/purge filter on an index and never
# look at the JSON. Personal columns (language, metadata, context, payload) hold codec output.
SCHEMA = (
    """CREATE TABLE IF NOT EXISTS lkpersist_meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS lkpersist_sessions (
        id INTEGER PRIMARY KEY,
        identity TEXT NOT NULL UNIQUE,
        joined_at INTEGER NOT NULL,
        last_seen INTEGER NOT NULL,
        reconnect_count INTEGER NOT NULL,
        connected INTEGER NOT NULL,
        expires_at INTEGER,
        ttl INTEGER NOT NULL,
        deadline INTEGER NOT NULL,
        disconnect_count INTEGER NOT NULL,
        greeted_epoch INTEGER NOT NULL,
        schema_version INTEGER NOT NULL,
        language TEXT,
        metadata TEXT NOT NULL,
        context TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS lkpersist_sessions_by_deadline ON lkpersist_sessions (deadline)",
    # The listing order, covering the status filter so paging never reads the table for skipped rows.
    """CREATE INDEX IF NOT EXISTS lkpersist_sessions_by_last_seen
        ON lkpersist_sessions (last_seen DESC, identity, deadline)""",
    """CREATE TABLE IF NOT EXISTS lkpersist_turns (
        id INTEGER PRIMARY KEY,
        session_id INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        item_id TEXT,
        payload TEXT NOT NULL,
        UNIQUE (session_id, seq),
        UNIQUE (session_id, item_id)
    )""",
    *EVENTS_SCHEMA,
    *LOCKS_SCHEMA,
)


@dataclass(frozen=True, slots=True)
class SQLiteTarget:
    """Everything a ``sqlite://`` URL says, checked: an absolute file path and connection options."""

    path: Path
    timeout: float = DEFAULT_TIMEOUT
    synchronous: str = "normal"


def parse_sqlite_url(url: str, cwd: Path | None = None) -> SQLiteTarget:
    """``sqlite:///relative.db`` (from ``cwd``) or ``sqlite:////absolute.db``, ``?timeout=&synchronous=``."""
    try:
        parts = urlsplit(url)
        if parts.netloc:
            raise ValueError("a SQLite URL has no host: use sqlite:///relative.db or sqlite:////absolute.db")
        raw = unquote(parts.path.removeprefix("/"))
        if not raw or raw.endswith("/"):
            raise ValueError("no database file named (e.g. sqlite:///sessions.db)")
        path = (cwd or Path.cwd()) / raw
        if path.is_dir():
            raise ValueError(f"{str(path)!r} is a directory, not a database file")
        return SQLiteTarget(path=path, **_options(parts.query))
    except ValueError as exc:
        raise InvalidStoreURLError(f"invalid SQLite URL {url!r}: {exc}") from None


def _options(query: str) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for name, value in parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query)):
        if name == "timeout":
            options["timeout"] = check_timeout(_number(value))
        elif name == "synchronous":
            options["synchronous"] = check_synchronous(value)
        else:
            raise ValueError(f"unknown option {name!r} (known: synchronous, timeout)")
    return options


def _number(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"timeout={value!r} is not a number of seconds") from None


def check_timeout(seconds: float) -> float:
    if not seconds > 0:
        raise ValueError(f"timeout must be a positive number of seconds, not {seconds!r}")
    return float(seconds)


def check_synchronous(value: str) -> str:
    if value.lower() not in _SYNCHRONOUS:
        raise ValueError(f"synchronous must be one of {', '.join(_SYNCHRONOUS)}, not {value!r}")
    return value.lower()


def translate(exc: sqlite3.Error, target: SQLiteTarget) -> StoreError:
    """The one mapping from sqlite3 exceptions to lkpersist's, with a one-line message naming the file."""
    code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF
    detail = " ".join(str(exc).split()) or type(exc).__name__
    where = f"SQLite store {str(target.path)!r}"
    if code in _UNUSABLE_CODES:
        return StoreError(f"{where} is unusable: {detail}")
    if code in _BUSY_CODES:
        return StoreUnavailableError(
            f"{where}: {detail} (another process held it longer than the {target.timeout:g} s busy timeout)"
        )
    if isinstance(exc, sqlite3.OperationalError):
        return StoreUnavailableError(f"{where}: {detail}")
    return StoreError(f"{where}: {detail}")


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


def is_busy(exc: sqlite3.Error) -> bool:
    return ((getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF) in _BUSY_CODES


def open_connection(target: SQLiteTarget) -> sqlite3.Connection:
    """Open the file (creating it and its directories), set the pragmas, create or check the schema."""
    target.path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(target.path, timeout=target.timeout, isolation_level=None)
    try:
        _retry_while_busy(lambda: _prepare(conn, target), time.monotonic() + target.timeout)
    except BaseException:
        conn.close()
        raise
    return conn


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


def _prepare(conn: sqlite3.Connection, target: SQLiteTarget) -> None:
    conn.execute(f"PRAGMA busy_timeout = {int(target.timeout * 1000)}")
    conn.execute(f"PRAGMA synchronous = {target.synchronous.upper()}")
    if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
        conn.execute("PRAGMA journal_mode = WAL")
    if _stored_version(conn) != STORAGE_VERSION:
        with immediate(conn):
            for statement in SCHEMA:
                conn.execute(statement)
            conn.execute(  # older layouts are upgraded in place: every version so far only added tables
                "INSERT INTO lkpersist_meta (key, value) VALUES ('schema_version', ?1) ON CONFLICT (key) "
                "DO UPDATE SET value = ?1 WHERE CAST(value AS INTEGER) < CAST(?1 AS INTEGER)",
                (str(STORAGE_VERSION),),
            )
            _check_version(_stored_version(conn))


def _stored_version(conn: sqlite3.Connection) -> int | None:
    try:
        row = conn.execute("SELECT value FROM lkpersist_meta WHERE key = 'schema_version'").fetchone()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return None
        raise
    return None if row is None else int(row[0])


def _check_version(version: int | None) -> None:
    if version is not None and version > STORAGE_VERSION:
        raise sqlite3.DatabaseError(
            f"its schema version {version} is newer than this lkpersist supports ({STORAGE_VERSION}); upgrade"
        )


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
        except OSError as exc:  # creating the parent directory
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
