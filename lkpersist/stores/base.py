"""The storage contract every backend implements (memory, SQLite, Redis, ...).

A backend subclasses :class:`SessionStore` and implements the abstract methods; behaviour that can be
stated once (pagination into a stream, ``require``, argument checks) lives here so backends never
repeat it. The lifecycle rules themselves live in :mod:`lkpersist.model.lifecycle`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any, Self

from lkpersist.clock import Clock, SystemClock
from lkpersist.crypto.codec import PLAIN, ValueCodec
from lkpersist.exceptions import InvalidInputError, SessionNotFoundError
from lkpersist.model.reconcile import OfflineDelta
from lkpersist.model.results import ConnectResult, CorruptRecord, Page, PurgeResult
from lkpersist.model.session import DEFAULT_MAX_TURNS, Session, Status, Turn
from lkpersist.model.ttl import DEFAULT_TTL_POLICY, TTLPolicy
from lkpersist.stores.events import EventStream
from lkpersist.stores.locks import Lock
from lkpersist.stores.paging import check_status

DEFAULT_PAGE_SIZE = 500
PURGE_BATCH = 1000


class SessionStore(ABC):
    """Per-participant sessions and their recent conversation turns.

    All methods are coroutines and safe to call concurrently from one event loop; every mutating
    method is atomic across processes sharing the same backing store.
    """

    scheme: str = ""

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        ttl_policy: TTLPolicy = DEFAULT_TTL_POLICY,
        max_turns: int = DEFAULT_MAX_TURNS,
        codec: ValueCodec = PLAIN,
    ) -> None:
        if max_turns < 1:
            raise InvalidInputError("max_turns must be at least 1")
        self.clock: Clock = clock or SystemClock()
        self.ttl_policy = ttl_policy
        self.max_turns = max_turns
        self.codec = codec

    # --- lifecycle ---------------------------------------------------------------------------------

    @abstractmethod
    async def connect(self, identity: str) -> ConnectResult:
        """Mark the participant connected; start a new session if absent or expired."""

    @abstractmethod
    async def disconnect(self, identity: str) -> Session | None:
        """Mark the participant gone and start the expiry countdown; None if no live session."""

    @abstractmethod
    async def heartbeat(self, identity: str) -> bool:
        """Refresh a live session's presence; False if there is no live session to refresh."""

    @abstractmethod
    async def claim_greeting(self, identity: str) -> bool:
        """Atomically take the right to greet this visit; True for exactly one caller per return."""

    # --- reads and edits ---------------------------------------------------------------------------

    @abstractmethod
    async def get(self, identity: str) -> Session | None:
        """Return the live session, or None when absent or expired."""

    @abstractmethod
    async def update(
        self,
        identity: str,
        *,
        language: str | None = None,
        metadata: dict[str, Any] | None = None,
        context: dict[str, Any] | None = None,
    ) -> Session:
        """Atomically merge metadata/context and set language; raise SessionNotFoundError if absent."""

    @abstractmethod
    async def delete(self, identity: str) -> bool:
        """Remove the session and its turns, expired or not; False if there was nothing."""

    @abstractmethod
    async def append_turn(self, identity: str, turn: Turn) -> bool:
        """Record a turn, keeping the newest ``max_turns``; False if its item_id was already recorded."""

    @abstractmethod
    async def recent_turns(self, identity: str, limit: int | None = None) -> list[Turn]:
        """Return the newest turns of a live session, oldest first."""

    @abstractmethod
    async def apply_offline(self, delta: OfflineDelta) -> Session | None:
        """Atomically merge what happened to one identity while this store was unreachable; see lkpersist.model.reconcile."""

    # --- listing and housekeeping ------------------------------------------------------------------

    @abstractmethod
    async def list_page(
        self, status: Status = "active", limit: int = DEFAULT_PAGE_SIZE, cursor: str | None = None
    ) -> Page:
        """Return one page of sessions, newest ``last_seen`` first, in a stable order."""

    @abstractmethod
    async def count(self, status: Status = "active") -> int:
        """Count sessions without loading them."""

    @abstractmethod
    async def purge(self, *, older_than: float | None = None, dry_run: bool = False) -> PurgeResult:
        """Delete expired sessions (and, with ``older_than`` seconds, those last seen before that), in chunks."""

    @abstractmethod
    async def close(self) -> None:
        """Release connections and files."""

    # --- events and locks (semantics in lkpersist.stores.events and lkpersist.stores.locks) ------------------------

    @abstractmethod
    def events(self, identity: str | None = None) -> EventStream:
        """Return a stream of the session events published from now on (one identity's, if given)."""

    @abstractmethod
    async def acquire_lock(self, name: str, ttl: float) -> str | None:
        """Take the named lock for ``ttl`` seconds if free or expired; return its new token, else None."""

    @abstractmethod
    async def release_lock(self, name: str, token: str) -> bool:
        """Delete the lock only if ``token`` holds it; True when it was still held (not expired)."""

    @abstractmethod
    async def extend_lock(self, name: str, token: str, ttl: float) -> bool:
        """Set the lock's expiry to now + ``ttl`` if ``token`` holds it unexpired; else False."""

    def lock(self, name: str, ttl: float, *, wait: float = 0.0, refresh: bool = False) -> Lock:
        """An async context manager holding the named lock; raises LockHeldError if not taken within ``wait``."""
        return Lock(self, name, ttl, wait=wait, refresh=refresh)

    # --- shared behaviour --------------------------------------------------------------------------

    async def require(self, identity: str) -> Session:
        """Return the live session or raise SessionNotFoundError."""
        session = await self.get(identity)
        if session is None:
            raise SessionNotFoundError(identity)
        return session

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

    def now(self) -> float:
        return self.clock.now()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


__all__ = ["DEFAULT_PAGE_SIZE", "PURGE_BATCH", "SessionStore"]
