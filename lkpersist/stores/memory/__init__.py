"""``memory://``: sessions in this process only. For tests, the simulation and single-process demos.

An asyncio lock makes each operation atomic within the event loop; nothing survives the process.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from typing import Any

from lkpersist.clock import to_ms
from lkpersist.exceptions import SessionNotFoundError
from lkpersist.model.events import SessionEvent, connect_events, removal_event
from lkpersist.model.lifecycle import (
    connect_transition,
    disconnect_transition,
    greeting_owed,
    heartbeat_transition,
    merge_update,
    purge_cutoff,
    should_purge,
)
from lkpersist.model.reconcile import OfflineDelta, reconcile
from lkpersist.model.results import ConnectResult, Page, PurgeResult
from lkpersist.model.session import Session, Status, Turn, validate_identity
from lkpersist.stores.base import DEFAULT_PAGE_SIZE, SessionStore
from lkpersist.stores.events import EventStream
from lkpersist.stores.locks import check_lock
from lkpersist.stores.memory.events import EventHub
from lkpersist.stores.memory.locks import MemoryLocks
from lkpersist.stores.paging import check_limit, check_status, decode_cursor, encode_cursor


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

    def _live(self, identity: str) -> Session | None:
        session = self._sessions.get(identity)
        if session is None or session.is_expired(self.now()):
            return None
        return session

    async def connect(self, identity: str) -> ConnectResult:
        validate_identity(identity)
        async with self._lock:
            previous, now = self._sessions.get(identity), self.now()
            result = connect_transition(previous, identity, now, self.ttl_policy)
            if not result.returning:
                self._turns.pop(identity, None)
            self._sessions[identity] = result.session
            replaced = None if previous is None else previous.reconnect_count
            self._events.publish(connect_events(result, now, replaced))
            return result

    async def disconnect(self, identity: str) -> Session | None:
        validate_identity(identity)
        async with self._lock:
            current = self._live(identity)
            if current is None:
                return None
            updated = self._sessions[identity] = disconnect_transition(current, self.now())
            self._events.publish([SessionEvent("disconnected", identity, updated.last_seen, updated.reconnect_count)])
            return updated

    async def heartbeat(self, identity: str) -> bool:
        validate_identity(identity)
        async with self._lock:
            current = self._live(identity)
            if current is None:
                return False
            self._sessions[identity] = heartbeat_transition(current, self.now())
            return True

    async def claim_greeting(self, identity: str) -> bool:
        validate_identity(identity)
        async with self._lock:
            current = self._live(identity)
            if current is None or not greeting_owed(current):
                return False
            current.greeted_epoch = current.disconnect_count
            return True

    async def get(self, identity: str) -> Session | None:
        validate_identity(identity)
        session = self._live(identity)
        return None if session is None else Session.from_dict(session.to_dict())

    async def update(
        self,
        identity: str,
        *,
        language: str | None = None,
        metadata: dict[str, Any] | None = None,
        context: dict[str, Any] | None = None,
    ) -> Session:
        validate_identity(identity)
        async with self._lock:
            current = self._live(identity)
            if current is None:
                raise SessionNotFoundError(identity)
            updated = merge_update(current, language=language, metadata=metadata, context=context)
            self._sessions[identity] = updated
            return Session.from_dict(updated.to_dict())

    async def delete(self, identity: str) -> bool:
        validate_identity(identity)
        async with self._lock:
            self._turns.pop(identity, None)
            removed = self._sessions.pop(identity, None)
            if removed is not None:
                self._events.publish([removal_event(removed, self.now(), deleted=True)])
            return removed is not None

    async def append_turn(self, identity: str, turn: Turn) -> bool:
        validate_identity(identity)
        async with self._lock:
            if self._live(identity) is None:
                raise SessionNotFoundError(identity)
            turns = self._turns.setdefault(identity, OrderedDict())
            if turn.item_id in turns:
                return False
            turns[self._turn_key(turn)] = turn
            while len(turns) > self.max_turns:
                turns.popitem(last=False)
            return True

    async def recent_turns(self, identity: str, limit: int | None = None) -> list[Turn]:
        validate_identity(identity)
        if self._live(identity) is None:
            return []
        turns = list(self._turns.get(identity, {}).values())
        return turns if limit is None else turns[-check_limit(limit):]

    async def apply_offline(self, delta: OfflineDelta) -> Session | None:
        identity = validate_identity(delta.identity)
        async with self._lock:
            stored_turns = list(self._turns.get(identity, {}).values())
            result = reconcile(
                self._sessions.get(identity), stored_turns, delta, self.now(), self.ttl_policy, self.max_turns
            )
            self._events.publish(result.events)
            if result.session is None:
                self._sessions.pop(identity, None)
                self._turns.pop(identity, None)
                return None
            self._sessions[identity] = result.session
            self._turns[identity] = OrderedDict((self._turn_key(turn), turn) for turn in result.turns)
            return Session.from_dict(result.session.to_dict())

    def _turn_key(self, turn: Turn) -> str:
        """A turn's item id, or a unique key for a turn without one (those are never deduplicated)."""
        if turn.item_id is not None:
            return turn.item_id
        self._anonymous_turns += 1
        return f"\0anon{self._anonymous_turns}"

    async def list_page(
        self, status: Status = "active", limit: int = DEFAULT_PAGE_SIZE, cursor: str | None = None
    ) -> Page:
        check_status(status)
        check_limit(limit)
        now = self.now()
        ordered = sorted(self._sessions.values(), key=lambda s: (-to_ms(s.last_seen), s.identity))
        if cursor is not None:
            last_ms, last_identity = decode_cursor(cursor)
            ordered = [s for s in ordered if (-to_ms(s.last_seen), s.identity) > (-last_ms, last_identity)]
        matching = [s for s in ordered if s.matches(status, now)]
        items = [Session.from_dict(s.to_dict()) for s in matching[:limit]]
        more = len(matching) > limit
        next_cursor = encode_cursor(to_ms(items[-1].last_seen), items[-1].identity) if more else None
        return Page(items=list(items), next_cursor=next_cursor)

    async def count(self, status: Status = "active") -> int:
        check_status(status)
        now = self.now()
        return sum(1 for s in self._sessions.values() if s.matches(status, now))

    async def purge(self, *, older_than: float | None = None, dry_run: bool = False) -> PurgeResult:
        async with self._lock:
            now = self.now()
            cutoff = purge_cutoff(now, older_than)
            doomed = [i for i, s in self._sessions.items() if should_purge(s, now, cutoff)]
            if not dry_run:
                removed = [self._sessions.pop(identity) for identity in doomed]
                for identity in doomed:
                    self._turns.pop(identity, None)
                self._events.publish([removal_event(session, now) for session in removed])
            return PurgeResult(purged=len(doomed), dry_run=dry_run)

    async def close(self) -> None:
        """Nothing to release; the data lives as long as this object."""

    # --- events and locks (this process only) --------------------------------------------------------

    def events(self, identity: str | None = None) -> EventStream:
        return EventStream(self._events.source(), identity)

    async def acquire_lock(self, name: str, ttl: float) -> str | None:
        check_lock(name, ttl)
        return self._locks.acquire(name, ttl, self.now())

    async def release_lock(self, name: str, token: str) -> bool:
        return self._locks.release(name, token, self.now())

    async def extend_lock(self, name: str, token: str, ttl: float) -> bool:
        check_lock(name, ttl)
        return self._locks.extend(name, token, ttl, self.now())
