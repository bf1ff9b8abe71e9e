"""``memory://``: sessions in this process only. For tests, the simulation and single-process demos.

An asyncio lock makes each operation atomic within the event loop; nothing survives the process.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import AsyncIterator, Sequence
from typing import Any

from lkpersist.clock import to_ms
from lkpersist.exceptions import SessionNotFoundError
from lkpersist.model.analytics import DailyStats, SessionCounters, offline_tally
from lkpersist.model.events import arrival_events, removal_event
from lkpersist.model.lifecycle import is_present, merge_update, should_purge
from lkpersist.model.presence import (
    ArrivalRequest,
    arrive_transition,
    beat_transition,
    claim_transition,
    leave_outcome,
)
from lkpersist.model.reconcile import OfflineDelta, Reconciled, reconcile
from lkpersist.model.results import Arrival, Census, CorruptRecord, Page, PurgeResult, StorageInfo
from lkpersist.model.session import SUMMARY_KEY, CoveredTurns, Session, SessionChanges, Status, Turn
from lkpersist.model.transfer import ConflictRule, ImportOutcome, SessionRecord, decide_import
from lkpersist.stores.base import PurgeProgress, RecordPage, SessionStore
from lkpersist.stores.events import EventSource
from lkpersist.stores.memory.analytics import MemoryAnalytics
from lkpersist.stores.memory.events import EventHub
from lkpersist.stores.memory.locks import MemoryLocks
from lkpersist.stores.memory.raw import NothingStored
from lkpersist.stores.paging import Position, encode_cursor
from lkpersist.stores.raw import StoredValues


class MemoryStore(SessionStore):
    """A dict of sessions and an ordered dict of turns per identity, guarded by one asyncio lock."""

    scheme = "memory"

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._sessions: dict[str, Session] = {}
        self._turns: dict[str, OrderedDict[str, Turn]] = {}
        self._lock = asyncio.Lock()
        self._anonymous_turns = 0
        self._events = EventHub()
        self._locks = MemoryLocks()
        self._analytics = MemoryAnalytics(self.analytics)

    def _live(self, identity: str) -> Session | None:
        session = self._sessions.get(identity)
        if session is None or session.is_expired(self.now()):
            return None
        return session

    async def _arrive(self, identity: str, request: ArrivalRequest) -> Arrival:
        async with self._lock:
            previous, now = self._sessions.get(identity), self.now()
            session, visit = arrive_transition(previous, identity, request, now, self.settings.presence)
            replaced = None
            if visit.is_new_session and previous is not None:  # it replaced an expired one, turns and all
                self._turns.pop(identity, None)
                replaced = previous.reconnect_count
            self._sessions[identity] = session
            turns = self._newest(identity, request.restore_turns) if visit.wants_turns(request) else []
            arrival = visit.arrival(self._copy(session), turns)
            self._events.publish(arrival_events(arrival, now, replaced))
            if arrival.new_visit:  # analytics count visits (returns, new sessions), not joined connections
                self._analytics.connected(arrival.as_connect(), now)
            return arrival

    async def _leave(self, identity: str, connection: str, reason: str | None) -> Session | None:
        async with self._lock:
            current, now = self._live(identity), self.now()
            if current is None:
                return None
            updated, events = leave_outcome(current, connection, now, self.settings.presence, reason)
            self._sessions[identity] = updated
            self._events.publish(events)
            return self._copy(updated)

    async def _beat(self, identity: str, connection: str) -> bool:
        async with self._lock:
            current = self._live(identity)
            beaten = None if current is None else beat_transition(current, connection, self.now(), self.settings.presence)
            if beaten is None:
                return False
            self._sessions[identity] = beaten
            return True

    async def _claim_greeting(self, identity: str) -> bool:
        async with self._lock:
            current = self._live(identity)
            claimed = None if current is None else claim_transition(current, self.now(), self.settings.presence)
            if claimed is None:
                return False
            self._sessions[identity] = claimed
            return True

    def _newest(self, identity: str, limit: int) -> list[Turn]:
        return list(self._turns.get(identity, {}).values())[-limit:]

    def _copy(self, session: Session) -> Session:
        """What a read hands out: a copy (callers must not change the stored one), with its turn count."""
        copy = Session.from_dict(session.to_dict())
        copy.turn_count = len(self._turns.get(session.identity, ()))
        return copy

    async def _get(self, identity: str) -> Session | None:
        session = self._live(identity)
        return None if session is None else self._copy(session)

    async def _update(self, identity: str, changes: SessionChanges) -> Session:
        async with self._lock:
            current = self._live(identity)
            if current is None:
                raise SessionNotFoundError(identity)
            updated = self._sessions[identity] = merge_update(current, changes)
            return Session.from_dict(updated.to_dict())

    async def _delete(self, identity: str) -> bool:
        async with self._lock:
            self._turns.pop(identity, None)
            removed = self._sessions.pop(identity, None)
            if removed is not None:
                self._events.publish([removal_event(removed, self.now(), deleted=True)])
            return removed is not None

    async def _append_turn(self, identity: str, turn: Turn) -> bool:
        async with self._lock:
            if self._live(identity) is None:
                raise SessionNotFoundError(identity)
            turns = self._turns.setdefault(identity, OrderedDict())
            if turn.item_id in turns:
                return False
            turns[self._turn_key(turn)] = turn
            while len(turns) > self.max_turns:
                turns.popitem(last=False)
            self._analytics.recorded_turn(identity, self.now())
            return True

    async def _recent_turns(self, identity: str, limit: int | None) -> list[Turn]:
        if self._live(identity) is None:
            return []
        turns = list(self._turns.get(identity, {}).values())
        return turns if limit is None else turns[-limit:]

    async def _compact_turns(self, identity: str, summary: str, covered: CoveredTurns) -> bool:
        async with self._lock:
            current = self._live(identity)
            if current is None:
                raise SessionNotFoundError(identity)
            turns = self._turns.get(identity, OrderedDict())
            oldest = list(turns.values())[: covered.count]
            ends = (oldest[0].item_id, oldest[-1].item_id) if oldest else None
            if len(oldest) != covered.count or ends != (covered.first, covered.last):
                return False
            for key in list(turns)[: covered.count]:
                del turns[key]
            self._sessions[identity] = merge_update(current, SessionChanges(context={SUMMARY_KEY: summary}))
            return True

    async def _apply_offline(self, delta: OfflineDelta) -> Session | None:
        identity = delta.identity
        async with self._lock:
            stored_turns = list(self._turns.get(identity, {}).values())
            stored = self._sessions.get(identity)
            result = reconcile(stored, stored_turns, delta, self.now(), self.ttl_policy, self.max_turns)
            self._store_whole(identity, result)
            tally = offline_tally(self.analytics, delta, stored, result.session)
            if tally is not None:
                self._analytics.offline(identity, tally, self.now())
            return None if result.session is None else Session.from_dict(result.session.to_dict())

    def _store_whole(self, identity: str, result: Reconciled) -> None:
        """Replace one identity's record and turns with a merge's result and publish its events."""
        self._events.publish(result.events)
        if result.session is None:
            self._sessions.pop(identity, None)
            self._turns.pop(identity, None)
            return
        self._sessions[identity] = result.session
        self._turns[identity] = OrderedDict((self._turn_key(turn), turn) for turn in result.turns)

    # --- moving sessions between stores ------------------------------------------------------------

    def _record(self, identity: str) -> SessionRecord | None:
        session = self._sessions.get(identity)
        if session is None:
            return None
        return SessionRecord(Session.from_dict(session.to_dict()), tuple(self._turns.get(identity, {}).values()))

    async def _scan_records(self, status: Status, page_size: int) -> AsyncIterator[RecordPage]:
        identities = list(self._sessions)
        for start in range(0, len(identities), page_size):
            now = self.now()
            found = [self._record(identity) for identity in identities[start:start + page_size]]
            page: RecordPage = [r for r in found if r is not None and r.session.matches(status, now)]
            if page:
                yield page

    async def _load_records(self, identities: Sequence[str]) -> list[SessionRecord | CorruptRecord | None]:
        return [self._record(identity) for identity in identities]

    async def _import_records(self, records: Sequence[SessionRecord], rule: ConflictRule) -> list[ImportOutcome]:
        outcomes = []
        async with self._lock:
            for record in records:
                identity = record.session.identity
                stored = self._record(identity)
                session, turns = (None, ()) if stored is None else (stored.session, stored.turns)
                decision = decide_import(session, turns, record, rule, self.now(), self.max_turns)
                if decision.write is not None:
                    self._store_whole(identity, decision.write)
                outcomes.append(decision.outcome)
        return outcomes

    def _turn_key(self, turn: Turn) -> str:
        """A turn's item id, or a unique key for a turn without one (those are never deduplicated)."""
        if turn.item_id is not None:
            return turn.item_id
        self._anonymous_turns += 1
        return f"\0anon{self._anonymous_turns}"

    async def _list_page(self, status: Status, limit: int, after: Position | None) -> Page:
        now = self.now()
        ordered = sorted(self._sessions.values(), key=lambda s: (-to_ms(s.last_seen), s.identity))
        if after is not None:
            last_ms, last_identity = after
            ordered = [s for s in ordered if (-to_ms(s.last_seen), s.identity) > (-last_ms, last_identity)]
        matching = [s for s in ordered if s.matches(status, now)]
        items = [self._copy(s) for s in matching[:limit]]
        more = len(matching) > limit
        next_cursor = encode_cursor(to_ms(items[-1].last_seen), items[-1].identity) if more else None
        return Page(items=list(items), next_cursor=next_cursor)

    async def _count(self, status: Status) -> int:
        now = self.now()
        return sum(1 for s in self._sessions.values() if s.matches(status, now))

    async def _census(self, now: float, stale_after: float) -> Census:
        sessions = list(self._sessions.values())
        expired = [s for s in sessions if s.is_expired(now)]
        return Census(
            active=len(sessions) - len(expired),
            expired=len(expired),
            stale=sum(1 for s in expired if s.deadline <= now - stale_after),
            connected=sum(1 for s in sessions if is_present(s, now, self.ttl_policy)),
            turns=sum(len(turns) for turns in self._turns.values()),
        )

    async def _storage_info(self) -> StorageInfo:
        return StorageInfo(backend="memory")

    async def _purge(self, now: float, cutoff: float | None, dry_run: bool, progress: PurgeProgress) -> PurgeResult:
        async with self._lock:
            doomed = [i for i, s in self._sessions.items() if should_purge(s, now, cutoff)]
            if not dry_run:
                removed = [self._sessions.pop(identity) for identity in doomed]
                for identity in doomed:
                    self._turns.pop(identity, None)
                self._events.publish([removal_event(session, now) for session in removed])
                progress(len(doomed))  # one chunk: everything at once
                self._analytics.purge(now)
            return PurgeResult(purged=len(doomed), dry_run=dry_run)

    async def _daily_stats(self, dates: list[str]) -> DailyStats:
        return self._analytics.daily(dates)

    async def _session_counters(self, identity: str, identity_hash: str) -> SessionCounters | None:
        return self._analytics.counters(identity_hash)

    async def close(self) -> None:
        """Nothing to release; the data lives as long as this object."""

    # --- events, locks and raw values (this process only) ----------------------------------------

    def _event_source(self) -> EventSource:
        return self._events.source()

    async def _acquire_lock(self, name: str, ttl: float) -> str | None:
        return self._locks.acquire(name, ttl, self.now())

    async def _release_lock(self, name: str, token: str) -> bool:
        return self._locks.release(name, token, self.now())

    async def _extend_lock(self, name: str, token: str, ttl: float) -> bool:
        return self._locks.extend(name, token, ttl, self.now())

    def stored_values(self) -> StoredValues:
        return NothingStored()


__all__ = ["MemoryStore"]
