"""``sqlite:///path``: the embedded default, one file shared by the agent workers and the CLI.

Each mutating operation is one ``BEGIN IMMEDIATE`` transaction that reads the row, applies the pure rule
from :mod:`lkpersist.model.lifecycle` and writes the result, so processes racing on one identity queue on the
write lock and never lose an update. Liveness, counting, listing and purging use the indexed ``deadline``
column (see :mod:`~lkpersist.stores.sqlite.schema` for the tables, :mod:`~lkpersist.stores.sqlite.db` for the pragmas and file rules) and never decode
JSON, so a corrupt record only affects reads of that record.

URL forms: ``sqlite:///relative/path.db`` (relative to the working directory when the store is opened),
``sqlite:////absolute/path.db``; missing parent directories are created. Options: ``?timeout=30``
(seconds a writer waits for the lock) and ``?synchronous=normal|full``.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from lkpersist.clock import from_ms, to_ms
from lkpersist.exceptions import CorruptRecordError, InvalidStoreURLError, SessionNotFoundError
from lkpersist.model.events import SessionEvent, connect_events
from lkpersist.model.lifecycle import (
    connect_transition,
    disconnect_transition,
    greeting_owed,
    heartbeat_transition,
    merge_update,
    purge_cutoff,
)
from lkpersist.model.reconcile import OfflineDelta
from lkpersist.model.results import ConnectResult, CorruptRecord, Page, PurgeResult
from lkpersist.model.session import Session, Status, Turn, validate_identity
from lkpersist.stores.base import DEFAULT_PAGE_SIZE, PURGE_BATCH, SessionStore
from lkpersist.stores.events import EventStream
from lkpersist.stores.locks import check_lock, new_token
from lkpersist.stores.paging import check_limit, check_status, decode_cursor, encode_cursor
from lkpersist.stores.sqlite import locks as _sqlite_locks
from lkpersist.stores.sqlite import queries
from lkpersist.stores.sqlite import reconcile as _reconcile_sqlite
from lkpersist.stores.sqlite.db import Database
from lkpersist.stores.sqlite.events import SQLiteEventSource, record_events
from lkpersist.stores.sqlite.rows import (
    INSERT_SESSION,
    UPDATE_OPS,
    UPDATE_PERSONAL,
    Row,
    encode_turn,
    ops_params,
    personal_params,
    session_from_row,
    turn_from_payload,
)
from lkpersist.stores.sqlite.transactions import immediate
from lkpersist.stores.sqlite.url import (
    DEFAULT_TIMEOUT,
    SQLiteTarget,
    check_synchronous,
    check_timeout,
    parse_sqlite_url,
)


class SQLiteStore(SessionStore):
    """Sessions in one SQLite file, safe to share between processes on one machine."""

    scheme = "sqlite"

    def __init__(
        self,
        path: str | Path,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        synchronous: str = "normal",
        **options: Any,
    ) -> None:
        super().__init__(**options)
        try:
            target = SQLiteTarget(Path(path).absolute(), check_timeout(timeout), check_synchronous(synchronous))
        except ValueError as exc:
            raise InvalidStoreURLError(f"invalid SQLite store options: {exc}") from None
        self._db = Database(target)

    @classmethod
    def from_url(cls, url: str, **options: Any) -> SQLiteStore:
        """Open ``sqlite:///relative.db`` or ``sqlite:////absolute.db``; the file is opened on first use."""
        target = parse_sqlite_url(url)
        return cls(target.path, timeout=target.timeout, synchronous=target.synchronous, **options)

    @property
    def path(self) -> Path:
        """The absolute path of the database file."""
        return self._db.target.path

    def _now_ms(self) -> int:
        return to_ms(self.now())

    # --- lifecycle ---------------------------------------------------------------------------------

    async def connect(self, identity: str) -> ConnectResult:
        validate_identity(identity)
        return await self._db.run(self._connect, identity, self._now_ms())

    def _connect(self, conn: sqlite3.Connection, identity: str, now_ms: int) -> ConnectResult:
        with immediate(conn):
            found = queries.live(conn, identity, now_ms, self)
            result = connect_transition(found and found[1], identity, from_ms(now_ms), self.ttl_policy)
            replaced = None
            if found is not None and result.returning:
                conn.execute(UPDATE_OPS, {**ops_params(result.session), "id": found[0]})
            else:  # a new session replaces an absent or expired one, and its turns go with it
                replaced = queries.reconnect_count(conn, identity)
                params = {**ops_params(result.session), **personal_params(result.session, self.codec)}
                (session_id,) = conn.execute(INSERT_SESSION, params).fetchone()
                conn.execute("DELETE FROM lkpersist_turns WHERE session_id = ?", (session_id,))
            record_events(conn, connect_events(result, from_ms(now_ms), replaced))
            return result

    async def disconnect(self, identity: str) -> Session | None:
        validate_identity(identity)
        return await self._db.run(self._disconnect, identity, self._now_ms())

    def _disconnect(self, conn: sqlite3.Connection, identity: str, now_ms: int) -> Session | None:
        with immediate(conn):
            found = queries.live(conn, identity, now_ms, self)
            if found is None:
                return None
            updated = disconnect_transition(found[1], from_ms(now_ms))
            conn.execute(UPDATE_OPS, {**ops_params(updated), "id": found[0]})
            record_events(conn, [SessionEvent("disconnected", identity, updated.last_seen, updated.reconnect_count)])
            return updated

    async def heartbeat(self, identity: str) -> bool:
        validate_identity(identity)
        return await self._db.run(self._heartbeat, identity, self._now_ms())

    def _heartbeat(self, conn: sqlite3.Connection, identity: str, now_ms: int) -> bool:
        with immediate(conn):
            found = queries.live(conn, identity, now_ms, self, personal=False)
            if found is None:
                return False
            session_id, current = found
            conn.execute(UPDATE_OPS, {**ops_params(heartbeat_transition(current, from_ms(now_ms))), "id": session_id})
            return True

    async def claim_greeting(self, identity: str) -> bool:
        validate_identity(identity)
        return await self._db.run(self._claim_greeting, identity, self._now_ms())

    def _claim_greeting(self, conn: sqlite3.Connection, identity: str, now_ms: int) -> bool:
        with immediate(conn):
            found = queries.live(conn, identity, now_ms, self, personal=False)
            if found is None or not greeting_owed(found[1]):
                return False
            session_id, current = found
            conn.execute(
                "UPDATE lkpersist_sessions SET greeted_epoch = ? WHERE id = ?", (current.disconnect_count, session_id)
            )
            return True

    # --- reads and edits ---------------------------------------------------------------------------

    async def get(self, identity: str) -> Session | None:
        validate_identity(identity)
        return await self._db.run(queries.live_session, identity, self._now_ms(), self)

    async def update(
        self,
        identity: str,
        *,
        language: str | None = None,
        metadata: dict[str, Any] | None = None,
        context: dict[str, Any] | None = None,
    ) -> Session:
        validate_identity(identity)
        changes = {"language": language, "metadata": metadata, "context": context}
        return await self._db.run(self._update, identity, self._now_ms(), changes)

    def _update(self, conn: sqlite3.Connection, identity: str, now_ms: int, changes: dict[str, Any]) -> Session:
        with immediate(conn):
            found = queries.live(conn, identity, now_ms, self)
            if found is None:
                raise SessionNotFoundError(identity)
            updated = merge_update(found[1], **changes)
            conn.execute(UPDATE_PERSONAL, {**personal_params(updated, self.codec), "id": found[0]})
            return updated

    async def delete(self, identity: str) -> bool:
        validate_identity(identity)
        return await self._db.run(queries.delete, identity, self._now_ms())

    async def append_turn(self, identity: str, turn: Turn) -> bool:
        validate_identity(identity)
        return await self._db.run(self._append_turn, identity, encode_turn(turn, self.codec), turn.item_id,
                                  self._now_ms())

    def _append_turn(
        self, conn: sqlite3.Connection, identity: str, payload: str, item_id: str | None, now_ms: int
    ) -> bool:
        with immediate(conn):
            row = conn.execute(f"SELECT id FROM lkpersist_sessions WHERE {queries.LIVE}", (identity, now_ms)).fetchone()
            if row is None:
                raise SessionNotFoundError(identity)
            inserted = conn.execute(
                "INSERT OR IGNORE INTO lkpersist_turns (session_id, seq, item_id, payload) VALUES "
                "(?1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM lkpersist_turns WHERE session_id = ?1), ?2, ?3)",
                (row[0], item_id, payload),
            ).rowcount
            conn.execute(
                "DELETE FROM lkpersist_turns WHERE session_id = ?1 AND seq <= (SELECT seq FROM lkpersist_turns "
                "WHERE session_id = ?1 ORDER BY seq DESC LIMIT 1 OFFSET ?2)",
                (row[0], self.max_turns),
            )
            return inserted == 1

    async def recent_turns(self, identity: str, limit: int | None = None) -> list[Turn]:
        validate_identity(identity)
        count = -1 if limit is None else check_limit(limit)
        payloads = await self._db.run(queries.recent_payloads, identity, self._now_ms(), count)
        return [turn_from_payload(identity, payload, self.codec) for payload in reversed(payloads)]

    async def apply_offline(self, delta: OfflineDelta) -> Session | None:
        validate_identity(delta.identity)
        return await self._db.run(_reconcile_sqlite.apply_offline, delta, self._now_ms(), self)

    # --- listing and housekeeping ------------------------------------------------------------------

    async def list_page(
        self, status: Status = "active", limit: int = DEFAULT_PAGE_SIZE, cursor: str | None = None
    ) -> Page:
        check_status(status)
        check_limit(limit)
        after = None if cursor is None else decode_cursor(cursor)
        rows = await self._db.run(queries.page_rows, status, self._now_ms(), limit + 1, after)
        items = [self._listed(row) for row in rows[:limit]]
        more = len(rows) > limit
        next_cursor = encode_cursor(int(rows[limit - 1][3]), rows[limit - 1][1]) if more else None
        return Page(items=items, next_cursor=next_cursor)

    def _listed(self, row: Row) -> Session | CorruptRecord:
        try:
            return session_from_row(row, self.codec)
        except CorruptRecordError as exc:
            return CorruptRecord(identity=exc.identity, reason=exc.reason)

    async def count(self, status: Status = "active") -> int:
        check_status(status)
        return await self._db.run(queries.count, status, self._now_ms())

    async def purge(self, *, older_than: float | None = None, dry_run: bool = False) -> PurgeResult:
        """Delete expired sessions, then (with ``older_than``) those last seen before the cutoff.

        Each chunk is one transaction that picks and deletes its rows in a single statement, so two
        purges at once (two cron hosts) or a participant coming back mid-purge are safe: a row is
        deleted once, and only if it still qualifies. Nothing is decoded, so corrupt rows are purged too.
        """
        now_ms = self._now_ms()
        cutoff = purge_cutoff(from_ms(now_ms), older_than)
        params = {"now": now_ms, "cutoff": None if cutoff is None else to_ms(cutoff), "batch": PURGE_BATCH}
        if dry_run:
            return PurgeResult(purged=await self._db.run(queries.count_purgeable, params), dry_run=True)
        conditions = ["deadline <= :now"] + ([] if cutoff is None else ["last_seen < :cutoff"])
        purged = 0
        for condition in conditions:
            while True:  # one chunk per call, so other work on this store interleaves with a long purge
                deleted = await self._db.run(queries.purge_chunk, condition, params)
                purged += deleted
                if deleted < PURGE_BATCH:
                    break
        return PurgeResult(purged=purged)

    async def close(self) -> None:
        await self._db.close()

    # --- events and locks (shared by every process using this file) ----------------------------------

    def events(self, identity: str | None = None) -> EventStream:
        return EventStream(SQLiteEventSource(self._db), identity)

    async def acquire_lock(self, name: str, ttl: float) -> str | None:
        check_lock(name, ttl)
        token = new_token()
        taken = await self._db.run(_sqlite_locks.acquire, name, token, self._now_ms(), to_ms(ttl))
        return token if taken else None

    async def release_lock(self, name: str, token: str) -> bool:
        return await self._db.run(_sqlite_locks.release, name, token, self._now_ms())

    async def extend_lock(self, name: str, token: str, ttl: float) -> bool:
        check_lock(name, ttl)
        return await self._db.run(_sqlite_locks.extend, name, token, self._now_ms(), to_ms(ttl))
