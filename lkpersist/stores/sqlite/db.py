"""The SQLite file underneath :class:`~lkpersist.stores.sqlite.SQLiteStore`: URL, schema, pragmas, errors.

One :class:`Database` owns one ``sqlite3`` connection, created in and only ever used by one dedicated
worker thread, so blocking file I/O never runs on the event loop and calls from one store are serial.
The one exception is ``run_short``: a short write tried first on the loop's thread with a connection
that never waits for the lock (:mod:`~lkpersist.stores.sqlite.inline`), and queued here when it would.
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
import queue
import random
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from lkpersist.exceptions import StoreError, StoreNotFoundError, StoreUnavailableError
from lkpersist.stores.sqlite.errors import is_busy, no_shared_memory, translate
from lkpersist.stores.sqlite.inline import InlineWriter
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


Job = tuple["asyncio.Future[Any]", Any, tuple[Any, ...]]
Outcome = tuple["asyncio.Future[Any]", Any, "BaseException | None"]
_WRITE = object()
"""The marker of a job ``Database.write`` queued (its args are the work and the work's arguments)."""
MAX_GROUP = 64
"""Writes one shared transaction takes at most, so the file's write lock is never held for long."""
CATCH_UP_ROUNDS = 3
CATCH_UP_FRAMES = 200
"""A checkpoint of the inline writes stops catching up after this many rounds, or once a round had this
few new WAL frames to copy (about 30 arrivals'), and copies the rest with them paused."""


class Database:
    """One lazily opened connection on its own single worker thread; ``run`` and ``write`` are the way in.

    The thread is ours rather than a ``ThreadPoolExecutor``'s because of what a call costs at agent
    concurrency: ``run_in_executor`` chains a concurrent future to an asyncio one and wakes the event loop
    (a write to its self-pipe) once per call. Here a job carries the caller's asyncio future, and results
    reach the loop in batches: the worker wakes a loop only when its list of finished jobs was empty, so
    while the loop is busy, jobs finishing meanwhile cost no wake-up. As with an executor, a job whose caller
    was cancelled before it started never runs, one that had started completes.
    """

    def __init__(self, target: SQLiteTarget) -> None:
        self.target = target
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._conn: sqlite3.Connection | None = None
        self._closed = False
        self._pid = os.getpid()
        self._finished: dict[asyncio.AbstractEventLoop, list[Outcome]] = {}
        self._finished_lock = threading.Lock()
        self._inline = InlineWriter(target, self._checkpoint_soon)

    async def run_short(self, work: Callable[..., T], *args: Any) -> T:
        """``run`` for a short write transaction: done at once on the calling thread when the write lock
        is free (:mod:`~lkpersist.stores.sqlite.inline`), else on the worker, waiting for the lock."""
        self._check_usable()
        if self._conn is not None:  # the worker opened the file (and prepared its schema) already
            done, result = self._inline.attempt(work, args)
            if done:
                return result  # type: ignore[return-value]
        return await self.run(work, *args)

    def _checkpoint_soon(self) -> None:
        """Ask the worker for a checkpoint of the inline writes (whose connection never checkpoints itself)."""
        self._submit(self._call, self._checkpoint_and_resume, ()).add_done_callback(_ignore_outcome)

    def _checkpoint_and_resume(self, conn: sqlite3.Connection) -> None:
        """Passive checkpoints while inline writes go on (the long part: syncing the WAL, copying its pages),
        each catching up with what was written during the last, then one with inline writes paused, so the
        WAL ends fully copied and the next write starts it over (:mod:`~lkpersist.stores.sqlite.inline`);
        inline writes resume even if the loop that asked is gone by then."""
        try:
            copied = 0
            for _ in range(CATCH_UP_ROUNDS):  # a round that had little to copy leaves less for the paused one
                frames = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1]
                if frames - copied <= CATCH_UP_FRAMES:
                    break
                copied = frames
            self._inline.pause()
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        finally:
            self._inline.resume()

    async def run(self, work: Callable[..., T], *args: Any) -> T:
        """Run ``work(connection, *args)`` on the worker thread; sqlite3 errors come back translated."""
        self._check_usable()
        return await self._submit(self._call, work, args)  # type: ignore[no-any-return]

    async def write(self, work: Callable[..., T], *args: Any) -> T:
        """Run ``work(connection, *args)`` in a ``BEGIN IMMEDIATE`` transaction the worker opens, and may
        share with the writes queued right behind it (a group commit: one COMMIT, one fsync under
        ``synchronous=full``, for all of them). ``work`` must not begin or end a transaction itself. Each
        write runs in its own savepoint, so one that raises is undone alone; every caller has its outcome
        only after the COMMIT, so a write that returned is committed."""
        self._check_usable()
        return await self._submit(_WRITE, work, args)  # type: ignore[no-any-return]

    def _check_usable(self) -> None:
        if self._closed:
            raise StoreError(f"SQLite store {str(self.target.path)!r} is closed")
        if self._pid != os.getpid():
            self._forget_parent_process()

    def _submit(self, call: Any, *args: Any) -> asyncio.Future[Any]:
        if self._thread is None:
            self._thread = threading.Thread(target=self._serve, name="lkpersist-sqlite", daemon=True)
            self._thread.start()
        future = asyncio.get_running_loop().create_future()
        self._jobs.put((future, call, args))
        return future

    def _serve(self) -> None:
        """The worker thread: jobs in order (writes queued together share a transaction) until ``None``."""
        held: Job | None = None
        while True:
            job = held if held is not None else self._jobs.get()
            held = None
            if job is None:
                return
            if job[1] is not _WRITE:
                self._run_one(job)
                continue
            writes, stopping = [job], False
            while len(writes) < MAX_GROUP:
                try:
                    queued = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if queued is None or queued[1] is not _WRITE:
                    held, stopping = queued, queued is None
                    break
                writes.append(queued)
            self._run_writes([write for write in writes if not write[0].cancelled()])
            if stopping:
                return

    def _run_one(self, job: Job) -> None:
        future, call, args = job
        if future.cancelled():
            return
        try:
            self._done(future, call(*args), None)
        except BaseException as exc:  # noqa: BLE001 - the caller's to handle, as with an executor
            self._done(future, None, exc)

    def _run_writes(self, writes: list[Job]) -> None:
        """One transaction for ``writes``, each in a savepoint; if the transaction itself fails (busy past
        the timeout, disk full at COMMIT), every one of them fails with that error and none is kept."""
        if not writes:
            return
        outcomes: list[Outcome] = []
        conn = None
        try:
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
            outcomes = [(future, *self._in_savepoint(conn, *args)) for future, _, args in writes]
            conn.execute("COMMIT")
        except BaseException as exc:  # noqa: BLE001 - every caller's to handle
            self._roll_back(conn)
            error = self._translated(exc)
            outcomes = [(future, None, error) for future, _, _ in writes]
        for outcome in outcomes:
            self._done(*outcome)

    @staticmethod
    def _roll_back(conn: sqlite3.Connection | None) -> None:
        """Undo a failed shared transaction; one that cannot even be rolled back is gone with the
        connection's state, which the next transaction's BEGIN reports, so the worker lives on."""
        try:
            if conn is not None and conn.in_transaction:
                conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass

    def _in_savepoint(self, conn: sqlite3.Connection, work: Callable[..., Any], args: tuple[Any, ...]) -> tuple[Any, Any]:
        conn.execute("SAVEPOINT lkpersist_write")
        try:
            result = work(conn, *args)
        except BaseException as exc:
            if not conn.in_transaction:  # SQLite rolled the whole transaction back (an I/O error)
                raise
            conn.execute("ROLLBACK TO lkpersist_write")
            conn.execute("RELEASE lkpersist_write")
            return None, self._translated(exc)
        conn.execute("RELEASE lkpersist_write")
        return result, None

    def _done(self, future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
        loop = future.get_loop()
        with self._finished_lock:
            batch = self._finished.setdefault(loop, [])
            batch.append((future, result, error))
            wake = len(batch) == 1
        if wake:
            try:
                loop.call_soon_threadsafe(self._deliver, loop)
            except RuntimeError:  # that loop is closed: nobody is waiting any more
                with self._finished_lock:
                    self._finished.pop(loop, None)

    def _deliver(self, loop: asyncio.AbstractEventLoop) -> None:
        """On ``loop``: hand every job finished since the last delivery its outcome."""
        with self._finished_lock:
            batch = self._finished.pop(loop, [])
        for future, result, error in batch:
            if future.cancelled():
                continue
            if error is None:
                future.set_result(result)
            else:
                future.set_exception(error)

    def _call(self, work: Callable[..., T], args: tuple[Any, ...]) -> T:
        try:
            return work(self._connection(), *args)
        except sqlite3.Error as exc:
            raise translate(exc, self.target) from exc

    def _connection(self) -> sqlite3.Connection:
        """The worker's connection, opened on first use."""
        if self._conn is None:
            try:
                self._conn = open_connection(self.target)
            except sqlite3.Error as exc:
                raise translate(exc, self.target) from exc
            except OSError as exc:  # creating the parent directory, or checking access to the file
                raise StoreUnavailableError(
                    f"SQLite store {str(self.target.path)!r}: {os.strerror(exc.errno or 0) or exc}"
                ) from exc
        return self._conn

    def _translated(self, exc: BaseException) -> BaseException:
        if isinstance(exc, sqlite3.Error):
            error = translate(exc, self.target)
            error.__cause__ = exc
            return error
        return exc

    def _forget_parent_process(self) -> None:
        """After a fork the worker thread is gone and a SQLite connection must not cross into the child:
        start over with a thread and a connection of this process's own."""
        self._pid, self._thread, self._conn = os.getpid(), None, None
        self._jobs, self._finished, self._finished_lock = queue.SimpleQueue(), {}, threading.Lock()

    async def close(self) -> None:
        """Close the connection on its own thread, then let the thread go; closing twice is fine."""
        if self._closed:
            return
        self._closed = True
        if self._pid != os.getpid():  # the parent's thread does not exist here; its connection is not ours
            self._forget_parent_process()
        self._inline.close()
        if self._thread is None:
            return
        try:
            await self._submit(self._close_connection)
        finally:
            self._jobs.put(None)
            self._thread = None

    def _close_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()


def _ignore_outcome(future: asyncio.Future[Any]) -> None:
    """A checkpoint nobody awaits: a failure is left for the next one (and the next write) to meet."""
    if not future.cancelled():
        future.exception()

