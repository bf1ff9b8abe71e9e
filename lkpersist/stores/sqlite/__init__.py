"""``sqlite:///path``: the embedded default, one file shared by the agent workers and the CLI.

Each mutating operation is one ``BEGIN IMMEDIATE`` transaction (:mod:`~lkpersist.stores.sqlite.operations`)
that reads the row, applies the pure rule from :mod:`lkpersist.model.lifecycle` and writes the result, so
processes racing on one identity queue on the write lock and never lose an update. Liveness, counting,
listing and purging use the indexed ``deadline`` column (:mod:`~lkpersist.stores.sqlite.queries`) and
never decode JSON, so a corrupt record only affects reads of that record.

The presence writes (arrive, leave, beat, the greeting) go through ``Database.run_short``: done on the
loop's own thread when the write lock is free at once, else on the worker (:mod:`~lkpersist.stores.sqlite.inline`).

The package, as every backend's: ``url`` (the URL and its options), ``db`` (the file, its worker thread
and pragmas), ``inline`` (short writes without the thread hop), ``schema`` (every table), ``errors`` (sqlite3 → lkpersist errors), ``rows`` (rows ↔
sessions), ``operations`` and ``queries`` (the SQL), ``events``, ``locks``, ``raw`` (encryption
migration) and ``reconcile`` (merging an outage back).
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from lkpersist.clock import to_ms
from lkpersist.exceptions import CorruptRecordError, InvalidStoreURLError
from lkpersist.model.analytics import DailyStats, SessionCounters
from lkpersist.model.presence import ArrivalRequest
from lkpersist.model.reconcile import OfflineDelta
from lkpersist.model.results import Arrival, Census, CorruptRecord, Page, PurgeResult, StorageInfo
from lkpersist.model.session import CoveredTurns, Session, SessionChanges, Status, Turn
from lkpersist.model.transfer import ConflictRule, ImportOutcome, SessionRecord
from lkpersist.stores.base import PURGE_BATCH, PurgeProgress, RecordPage, SessionStore
from lkpersist.stores.events import EventSource
from lkpersist.stores.locks import new_token
from lkpersist.stores.paging import Position, encode_cursor
from lkpersist.stores.raw import StoredValues
from lkpersist.stores.sqlite import analytics, locks, operations, queries, reconcile, transfer
from lkpersist.stores.sqlite.db import Database
from lkpersist.stores.sqlite.events import SQLiteEventSource
from lkpersist.stores.sqlite.raw import SQLiteStoredValues
from lkpersist.stores.sqlite.rows import Row, encode_turn, session_from_row, turns_from_payloads
from lkpersist.stores.sqlite.schema import STORAGE_VERSION
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
        create: bool = True,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        try:
            target = SQLiteTarget(
                Path(path).absolute(), check_timeout(timeout), check_synchronous(synchronous), create
            )
        except ValueError as exc:
            raise InvalidStoreURLError(f"invalid SQLite store options: {exc}") from None
        self._db = Database(target)

    @classmethod
    def from_url(cls, url: str, *, create: bool = True, **options: Any) -> SQLiteStore:
        """Open ``sqlite:///relative.db`` or ``sqlite:////absolute.db``; the file is opened on first use.

        ``create=False``: a missing file is StoreNotFoundError at first use, and nothing is created.
        """
        target = parse_sqlite_url(url)
        return cls(target.path, timeout=target.timeout, synchronous=target.synchronous, create=create, **options)

    @property
    def path(self) -> Path:
        """The absolute path of the database file."""
        return self._db.target.path

    def _now_ms(self) -> int:
        return to_ms(self.now())

    # --- lifecycle ---------------------------------------------------------------------------------

    async def _arrive(self, identity: str, request: ArrivalRequest) -> Arrival:
        return await self._db.run_short(operations.arrive, self.settings, identity, self._now_ms(), request)

    async def _leave(self, identity: str, connection: str, reason: str | None) -> Session | None:
        return await self._db.run_short(operations.leave, self.settings, identity, self._now_ms(), connection, reason)

    async def _beat(self, identity: str, connection: str) -> bool:
        return await self._db.run_short(operations.beat, self.settings, identity, self._now_ms(), connection)

    async def _claim_greeting(self, identity: str) -> bool:
        return await self._db.run_short(operations.claim_greeting, self.settings, identity, self._now_ms())

    # --- reads and edits ---------------------------------------------------------------------------

    async def _get(self, identity: str) -> Session | None:
        return await self._db.run(queries.live_session, identity, self._now_ms(), self.codec)

    async def _update(self, identity: str, changes: SessionChanges) -> Session:
        return await self._db.run(operations.update, self.settings, identity, self._now_ms(), changes)

    async def _delete(self, identity: str) -> bool:
        return await self._db.run(queries.delete, identity, self._now_ms())

    async def _append_turn(self, identity: str, turn: Turn) -> bool:
        payload = encode_turn(turn, self.codec)
        return await self._db.write(operations.append_turn, self.settings, identity, self._now_ms(), payload, turn.item_id)

    async def _recent_turns(self, identity: str, limit: int | None) -> list[Turn]:
        count = -1 if limit is None else limit
        payloads = await self._db.run(queries.recent_payloads, identity, self._now_ms(), count)
        return turns_from_payloads(identity, payloads[::-1], self.codec)

    async def _compact_turns(self, identity: str, summary: str, covered: CoveredTurns) -> bool:
        now_ms = self._now_ms()
        return await self._db.run(operations.compact_turns, self.settings, identity, now_ms, summary, covered)

    async def _apply_offline(self, delta: OfflineDelta) -> Session | None:
        return await self._db.run(reconcile.apply_offline, self.settings, delta, self._now_ms())

    # --- listing and housekeeping ------------------------------------------------------------------

    async def _list_page(self, status: Status, limit: int, after: Position | None) -> Page:
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

    async def _count(self, status: Status) -> int:
        return await self._db.run(queries.count, status, self._now_ms())

    async def _purge(self, now: float, cutoff: float | None, dry_run: bool, progress: PurgeProgress) -> PurgeResult:
        """Delete expired sessions, then (with a cutoff) those last seen before it.

        Each chunk is one transaction that picks and deletes its rows in a single statement, so two
        purges at once (two cron hosts) or a participant coming back mid-purge are safe: a row is
        deleted once, and only if it still qualifies. Nothing is decoded, so corrupt rows are purged too.
        """
        params = {"now": to_ms(now), "cutoff": None if cutoff is None else to_ms(cutoff), "batch": PURGE_BATCH}
        if dry_run:
            return PurgeResult(purged=await self._db.run(queries.count_purgeable, params), dry_run=True)
        conditions = ["deadline <= :now"] + ([] if cutoff is None else ["last_seen < :cutoff"])
        purged = 0
        for condition in conditions:
            while True:  # one chunk per call, so other work on this store interleaves with a long purge
                deleted = await self._db.run(queries.purge_chunk, condition, params)
                purged += deleted
                if deleted:
                    progress(purged)
                if deleted < PURGE_BATCH:
                    break
        await self._db.run(analytics.purge, self.analytics, to_ms(now))
        return PurgeResult(purged=purged)

    async def _census(self, now: float, stale_after: float) -> Census:
        fresh = now - self.ttl_policy.presence_timeout
        active, expired, stale, connected, turns = await self._db.run(
            queries.census_counts, to_ms(now), to_ms(now - stale_after), to_ms(fresh)
        )
        return Census(active=active, expired=expired, stale=stale, connected=connected, turns=turns)

    async def _storage_info(self) -> StorageInfo:
        version = await self._db.run(queries.layout_version)
        return StorageInfo("sqlite", version, STORAGE_VERSION, f"SQLite {sqlite3.sqlite_version}")

    async def _daily_stats(self, dates: list[str]) -> DailyStats:
        return await self._db.run(analytics.daily, dates)

    async def _session_counters(self, identity: str, identity_hash: str) -> SessionCounters | None:
        return await self._db.run(analytics.counters, identity)  # kept in its session row, by identity

    async def _analytics_secret(self) -> str | None:
        return await self._db.run(analytics.kept_secret)

    async def close(self) -> None:
        await self._db.close()

    # --- moving sessions between stores --------------------------------------------------------------

    async def _scan_records(self, status: Status, page_size: int) -> AsyncIterator[RecordPage]:
        after: int | None = 0
        while after is not None:
            page, after = await self._db.run(transfer.scan_page, self.codec, status, self._now_ms(), after, page_size)
            if page:
                yield page

    async def _load_records(self, identities: Sequence[str]) -> list[SessionRecord | CorruptRecord | None]:
        return await self._db.run(transfer.load, self.codec, identities)

    async def _import_records(self, records: Sequence[SessionRecord], rule: ConflictRule) -> list[ImportOutcome]:
        return await self._db.run(transfer.import_batch, self.settings, records, rule, self._now_ms())

    # --- events, locks and raw values (shared by every process using this file) --------------------

    def _event_source(self) -> EventSource:
        return SQLiteEventSource(self._db)

    async def _acquire_lock(self, name: str, ttl: float) -> str | None:
        token = new_token()
        taken = await self._db.run(locks.acquire, name, token, self._now_ms(), to_ms(ttl))
        return token if taken else None

    async def _release_lock(self, name: str, token: str) -> bool:
        return await self._db.run(locks.release, name, token, self._now_ms())

    async def _extend_lock(self, name: str, token: str, ttl: float) -> bool:
        return await self._db.run(locks.extend, name, token, self._now_ms(), to_ms(ttl))

    def stored_values(self) -> StoredValues:
        return SQLiteStoredValues(self._db)


__all__ = ["SQLiteStore"]
