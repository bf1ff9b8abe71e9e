"""The storage contract every backend implements (memory, SQLite, Redis, and the fallback around them).

A backend subclasses :class:`SessionStore` and implements its primitives, the ``_``-prefixed abstract
methods. The public methods are written once, here: each checks its arguments (identities, limits,
statuses, cursors, durations, lock names) and then calls the primitive, so a backend receives only
valid input and never repeats a check (the template-method shape of Django's ``commit()`` →
``_commit()``). Behaviour that can be stated once (pagination into a stream, ``require``, purging under
the store lock) lives here too. The lifecycle rules themselves are in :mod:`lkpersist.model.lifecycle`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Sequence
from types import TracebackType
from typing import Any, Self

from lkpersist.clock import Clock, SystemClock
from lkpersist.crypto.codec import PLAIN, ValueCodec
from lkpersist.exceptions import SessionNotFoundError
from lkpersist.model.analytics import Analytics, AnalyticsSettings
from lkpersist.model.lifecycle import check_older_than, purge_cutoff
from lkpersist.model.presence import DEFAULT_SWITCH_GRACE, settled
from lkpersist.model.reconcile import OfflineDelta
from lkpersist.model.results import Census, CorruptRecord, Page, PurgeResult, StorageInfo
from lkpersist.model.session import (
    DEFAULT_MAX_TURNS,
    CoveredTurns,
    Session,
    SessionChanges,
    Status,
    Turn,
    check_summary,
    validate_identity,
)
from lkpersist.model.transfer import ConflictRule, ImportOutcome, SessionRecord, check_conflict_rule, prepared
from lkpersist.model.ttl import DEFAULT_TTL_POLICY, TTLPolicy
from lkpersist.stores.analytics import AnalyticsContract
from lkpersist.stores.events import EventSource, EventStream
from lkpersist.stores.locks import Lock, check_lock, check_lock_name
from lkpersist.stores.paging import Position, check_limit, check_status, decode_cursor
from lkpersist.stores.presence import PresenceContract
from lkpersist.stores.raw import StoredValues
from lkpersist.stores.settings import StoreSettings

DEFAULT_PAGE_SIZE = 500
PURGE_BATCH = 1000
PURGE_LOCK = "purge"
PURGE_LOCK_TTL = 60.0
"""Seconds the purge lock outlives a purge that died; a running purge extends it every ttl/3."""
STALE_AFTER = 3600.0
"""Seconds after its deadline an unpurged session counts as stale in :meth:`SessionStore.census`."""

RecordPage = list[SessionRecord | CorruptRecord]

PurgeProgress = Callable[[int], None]
"""Called by a purge with the number of sessions removed so far, after each chunk."""


def _no_progress(purged: int) -> None:
    """The progress callback of a purge nobody watches."""


class SessionStore(PresenceContract, AnalyticsContract, ABC):
    """Per-participant sessions and their recent conversation turns.

    All methods are coroutines and safe to call concurrently from one event loop; every mutating
    method is atomic across processes sharing the same backing store. Presence (arrive, leave, beat,
    the greeting, and their single-connection form connect/disconnect/heartbeat) is the contract's other
    half, :class:`~lkpersist.stores.presence.PresenceContract`.
    """

    scheme: str = ""

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        ttl_policy: TTLPolicy = DEFAULT_TTL_POLICY,
        max_turns: int = DEFAULT_MAX_TURNS,
        codec: ValueCodec = PLAIN,
        analytics: AnalyticsSettings | None = None,
        switch_grace: float = DEFAULT_SWITCH_GRACE,
    ) -> None:
        self.settings = StoreSettings(
            clock or SystemClock(), ttl_policy, max_turns, codec, Analytics(analytics), switch_grace=switch_grace
        )

    @property
    def clock(self) -> Clock:
        """The clock every expiry of this store is judged by (injected: a VirtualClock in simulations)."""
        return self.settings.clock

    @property
    def ttl_policy(self) -> TTLPolicy:
        return self.settings.ttl_policy

    @property
    def max_turns(self) -> int:
        """The hard ceiling of turns kept per session: past it the oldest are dropped as new ones arrive.

        A summariser compacts well before it (``compact_turns``); the ceiling only bounds storage when
        nothing summarises, or when summaries kept failing for that many turns."""
        return self.settings.max_turns

    @property
    def codec(self) -> ValueCodec:
        """How personal values are stored (plain, or encrypted at rest)."""
        return self.settings.codec

    # --- reads and edits ---------------------------------------------------------------------------

    async def get(self, identity: str) -> Session | None:
        """Return the live session as it stands now (stale connections left out), or None when absent or expired."""
        session = await self._get(validate_identity(identity))
        return None if session is None else self._settled(session)

    async def update(
        self,
        identity: str,
        *,
        language: str | None = None,
        metadata: dict[str, Any] | None = None,
        context: dict[str, Any] | None = None,
    ) -> Session:
        """Atomically merge metadata/context and set language; raise SessionNotFoundError if absent."""
        changes = SessionChanges(language=language, metadata=metadata, context=context)
        return await self._update(validate_identity(identity), changes)

    async def delete(self, identity: str) -> bool:
        """Remove the session and its turns, expired or not; False if there was nothing."""
        return await self._delete(validate_identity(identity))

    async def append_turn(self, identity: str, turn: Turn) -> bool:
        """Record a turn, keeping the newest ``max_turns``; False if its item_id was already recorded."""
        return await self._append_turn(validate_identity(identity), turn)

    async def recent_turns(self, identity: str, limit: int | None = None) -> list[Turn]:
        """Return the newest turns of a live session (all kept ones without ``limit``), oldest first."""
        return await self._recent_turns(validate_identity(identity), None if limit is None else check_limit(limit))

    async def compact_turns(self, identity: str, summary: str, covered: Sequence[Turn]) -> bool:
        """Atomically set ``context["summary"]`` and drop the ``covered`` turns, if they are still the oldest.

        ``covered`` are the oldest turns as ``recent_turns`` returned them (both ends with item ids);
        ``summary`` must already include what the previous summary said (it replaces it). False, with
        nothing changed, when those turns are no longer exactly the oldest (appended turns are fine;
        another compaction or an outage merge meanwhile is not); SessionNotFoundError when not live.
        """
        span = CoveredTurns.of(covered)
        return await self._compact_turns(validate_identity(identity), check_summary(summary), span)

    async def apply_offline(self, delta: OfflineDelta) -> Session | None:
        """Atomically merge what happened to one identity while this store was unreachable.

        The rule is :func:`lkpersist.model.reconcile.reconcile`; None when no session is left.
        """
        validate_identity(delta.identity)
        return await self._apply_offline(delta)

    async def require(self, identity: str) -> Session:
        """Return the live session or raise SessionNotFoundError."""
        session = await self.get(identity)
        if session is None:
            raise SessionNotFoundError(identity)
        return session

    # --- listing and housekeeping ------------------------------------------------------------------

    async def list_page(
        self, status: Status = "active", limit: int = DEFAULT_PAGE_SIZE, cursor: str | None = None
    ) -> Page:
        """Return one page of sessions, newest ``last_seen`` first, in a stable order."""
        after = None if cursor is None else decode_cursor(cursor)
        page = await self._list_page(check_status(status), check_limit(limit), after)
        items = [item if isinstance(item, CorruptRecord) else self._settled(item) for item in page.items]
        return Page(items, page.next_cursor)

    async def iter_sessions(
        self, status: Status = "active", page_size: int = DEFAULT_PAGE_SIZE
    ) -> AsyncIterator[Session | CorruptRecord]:
        """Stream every matching session page by page; memory stays bounded by ``page_size``."""
        check_status(status)
        cursor: str | None = None
        while True:
            page = await self.list_page(status, page_size, cursor)
            for item in page.items:
                yield item
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def count(self, status: Status = "active") -> int:
        """Count sessions without loading them."""
        return await self._count(check_status(status))

    async def purge(
        self,
        *,
        older_than: float | None = None,
        dry_run: bool = False,
        lock: bool = False,
        progress: PurgeProgress | None = None,
    ) -> PurgeResult:
        """Delete expired sessions (and, with ``older_than`` seconds, those last seen before that), in chunks.

        ``lock=True`` holds the store lock ``purge`` while deleting (refreshed as long as it runs), as
        ``lkpersist sessions purge`` does, so two cron hosts never purge at once: LockHeldError when
        another purge holds it. Without the lock it is still safe, since every deletion re-checks its
        condition atomically; the lock only saves the duplicate work. A dry run takes no lock.
        ``progress`` is called with the number removed so far after each chunk (never on a dry run).
        """
        check_older_than(older_than)
        report = progress or _no_progress
        if not lock or dry_run:
            return await self._purge_now(older_than, dry_run, report)
        async with self.lock(PURGE_LOCK, PURGE_LOCK_TTL, refresh=True):
            return await self._purge_now(older_than, dry_run, report)

    async def _purge_now(self, older_than: float | None, dry_run: bool, progress: PurgeProgress) -> PurgeResult:
        now = self.now()
        return await self._purge(now, purge_cutoff(now, older_than), dry_run, progress)

    async def census(self, stale_after: float = STALE_AFTER) -> Census:
        """Count active, expired, stale and connected sessions and stored turns, from indexes only."""
        check_older_than(stale_after)
        return await self._census(self.now(), stale_after)

    async def storage_info(self) -> StorageInfo:
        """Say what this store is: its backend, stored layout version, server version and clock."""
        return await self._storage_info()

    @abstractmethod
    async def close(self) -> None:
        """Release connections and files."""

    # --- moving sessions between stores (export / import) ------------------------------------------

    async def iter_records(
        self, status: Status = "active", identities: Sequence[str] | None = None, page_size: int = DEFAULT_PAGE_SIZE
    ) -> AsyncIterator[RecordPage]:
        """Stream matching sessions with all their kept turns, a page at a time, in the store's own order.

        Each record is read in one snapshot (a session and its turns agree). With ``identities``, only
        those (absent ones are left out); memory stays bounded by ``page_size`` sessions.
        """
        check_status(status)
        check_limit(page_size)
        if identities is None:
            async for page in self._scan_records(status, page_size):
                yield page
            return
        wanted = [validate_identity(identity) for identity in identities]
        for start in range(0, len(wanted), page_size):
            found = await self._load_records(wanted[start:start + page_size])
            now = self.now()
            yield [r for r in found if r is not None and (isinstance(r, CorruptRecord) or r.session.matches(status, now))]

    async def import_records(
        self, records: Sequence[SessionRecord], on_conflict: ConflictRule = "merge"
    ) -> list[ImportOutcome]:
        """Write whole sessions with their turns, each atomically, under the conflict rule; one outcome each.

        The rule is :func:`lkpersist.model.transfer.decide_import`. Records are detached (a connected
        session arrives disconnected) and capped to ``max_turns``; a batch is one round trip where the
        backend allows, but every session is its own atomic step: none is ever half-written.
        """
        rule = check_conflict_rule(on_conflict)
        for record in records:
            validate_identity(record.session.identity)
        return await self._import_records([prepared(record, self.max_turns) for record in records], rule)

    # --- events, locks and raw values ----------------------------------------------------------------

    def events(self, identity: str | None = None) -> EventStream:
        """Return a stream of the session events published from now on (one identity's, if given)."""
        return EventStream(self._event_source(), identity)

    async def acquire_lock(self, name: str, ttl: float) -> str | None:
        """Take the named lock for ``ttl`` seconds if free or expired; return its new token, else None."""
        check_lock(name, ttl)
        return await self._acquire_lock(name, ttl)

    async def release_lock(self, name: str, token: str) -> bool:
        """Delete the lock only if ``token`` holds it; True when it was still held (not expired)."""
        return await self._release_lock(check_lock_name(name), token)

    async def extend_lock(self, name: str, token: str, ttl: float) -> bool:
        """Set the lock's expiry to now + ``ttl`` if ``token`` holds it unexpired; else False."""
        check_lock(name, ttl)
        return await self._extend_lock(name, token, ttl)

    def lock(self, name: str, ttl: float, *, wait: float = 0.0, refresh: bool = False) -> Lock:
        """An async context manager holding the named lock; raises LockHeldError if not taken within ``wait``."""
        return Lock(self, name, ttl, wait=wait, refresh=refresh)

    @abstractmethod
    def stored_values(self) -> StoredValues:
        """Return raw access to the stored personal values (encryption status, migration, rotation)."""

    def _settled(self, session: Session) -> Session:
        """What a read shows: stored presence as of now (a stale connection is dropped by the next write)."""
        return settled(session, self.now(), self.settings.presence_timeout)

    def now(self) -> float:
        """The store clock's now, in epoch seconds: what every expiry is judged against."""
        return self.settings.clock.now()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # --- the backend primitives: arguments already checked by the public methods above ------------

    @abstractmethod
    async def _get(self, identity: str) -> Session | None: ...

    @abstractmethod
    async def _update(self, identity: str, changes: SessionChanges) -> Session: ...

    @abstractmethod
    async def _delete(self, identity: str) -> bool: ...

    @abstractmethod
    async def _append_turn(self, identity: str, turn: Turn) -> bool: ...

    @abstractmethod
    async def _recent_turns(self, identity: str, limit: int | None) -> list[Turn]: ...

    @abstractmethod
    async def _compact_turns(self, identity: str, summary: str, covered: CoveredTurns) -> bool: ...

    @abstractmethod
    async def _apply_offline(self, delta: OfflineDelta) -> Session | None: ...

    @abstractmethod
    async def _list_page(self, status: Status, limit: int, after: Position | None) -> Page:
        """One page after the (last_seen ms, tiebreak) ``after`` position (None: from the newest)."""

    @abstractmethod
    async def _count(self, status: Status) -> int: ...

    @abstractmethod
    async def _purge(self, now: float, cutoff: float | None, dry_run: bool, progress: PurgeProgress) -> PurgeResult:
        """Purge what is expired at ``now`` and, with a ``cutoff``, what was last seen before it; call
        ``progress`` with the running total after each chunk removed (not on a dry run)."""

    @abstractmethod
    async def _census(self, now: float, stale_after: float) -> Census: ...

    @abstractmethod
    async def _storage_info(self) -> StorageInfo: ...

    @abstractmethod
    def _scan_records(self, status: Status, page_size: int) -> AsyncIterator[RecordPage]:
        """Every record matching ``status`` once (if not changed meanwhile), about ``page_size`` at a time."""

    @abstractmethod
    async def _load_records(self, identities: Sequence[str]) -> list[SessionRecord | CorruptRecord | None]:
        """The records of these identities, live or expired; None where there is none."""

    @abstractmethod
    async def _import_records(self, records: Sequence[SessionRecord], rule: ConflictRule) -> list[ImportOutcome]:
        """Apply :func:`~lkpersist.model.transfer.decide_import` to each record, each in one atomic step."""

    @abstractmethod
    def _event_source(self) -> EventSource: ...

    @abstractmethod
    async def _acquire_lock(self, name: str, ttl: float) -> str | None: ...

    @abstractmethod
    async def _release_lock(self, name: str, token: str) -> bool: ...

    @abstractmethod
    async def _extend_lock(self, name: str, token: str, ttl: float) -> bool: ...


__all__ = ["DEFAULT_PAGE_SIZE", "PURGE_BATCH", "PURGE_LOCK", "PURGE_LOCK_TTL", "STALE_AFTER", "PurgeProgress",
           "RecordPage", "SessionStore"]
