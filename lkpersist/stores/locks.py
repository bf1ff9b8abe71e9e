"""Named locks in the store, so that two cron hosts never run the same maintenance at once.

``async with store.lock("purge", ttl=60):`` takes the lock or raises :class:`LockHeldError`. Each
acquisition gets a fresh random token, and release and extend act only while that token still holds
the lock. That is the fix for the seed's lock (SET NX, then a plain DEL): a holder that overran its ttl
and lost the lock to someone else can no longer delete the other holder's lock.

Semantics, the same on every backend:

- A lock is held from ``acquire`` until ``release`` or until ``ttl`` seconds have passed on the store's
  clock, whichever comes first; an expired lock can be taken over by anyone.
- Expiry is judged by the store's clock (the wall clock by default: the same clock that judges session
  expiry), so hosts sharing a store must keep their clocks in sync (NTP), as they already must for
  sessions. Tests may give both holders one VirtualClock. ``wait`` is real waiting time (monotonic).
- ``extend`` succeeds only while the lock is still held by this token and not expired: a holder whose
  ttl ran out must treat the lock as lost, even if nobody has taken it yet.
- ``release`` deletes the lock only when it holds this token; it says whether the lock was still held
  (False: the work overran its ttl, and the lock was expired or is now someone else's).
- ``refresh=True`` extends the lock every ``ttl / 3`` seconds in the background while the block runs,
  so a long job keeps it and a crashed one loses it ``ttl`` seconds after its last refresh.

Backends: memory (this process only), SQLite (a ``lkpersist_locks`` table in the store file, shared by
every process on the machine), Redis (one key per lock under the prefix, compare-and-delete in Lua).
"""

from __future__ import annotations

import asyncio
import random
import secrets
import time
from types import TracebackType
from typing import Protocol, Self

from lkpersist.exceptions import InvalidInputError, LkPersistError, LockHeldError
from lkpersist.logsafe import get_logger

logger = get_logger(__name__)

MAX_LOCK_NAME = 200
_POLL_FIRST = 0.02
_POLL_MAX = 0.5


class LockBackend(Protocol):
    """The three primitives a store offers for its named locks (every :class:`SessionStore` has them)."""

    async def acquire_lock(self, name: str, ttl: float) -> str | None:
        """Take the named lock for ``ttl`` seconds if free or expired; return its new token, else None."""
        ...

    async def release_lock(self, name: str, token: str) -> bool:
        """Delete the lock only if ``token`` holds it; True when it was still held (not expired)."""
        ...

    async def extend_lock(self, name: str, token: str, ttl: float) -> bool:
        """Set the lock's expiry to now + ``ttl`` if ``token`` holds it unexpired; else False."""
        ...


def new_token() -> str:
    """A fresh, unguessable token for one acquisition."""
    return secrets.token_hex(16)


def check_lock(name: str, ttl: float) -> None:
    """Validate a lock name and ttl (every backend calls this first)."""
    check_lock_name(name)
    if not ttl > 0:
        raise InvalidInputError(f"a lock ttl must be a positive number of seconds, not {ttl!r}")


def check_lock_name(name: str) -> str:
    if not isinstance(name, str) or not name or len(name) > MAX_LOCK_NAME:
        raise InvalidInputError(f"a lock name must be 1 to {MAX_LOCK_NAME} characters")
    return name


class Lock:
    """One acquisition of a named store lock; an async context manager (see the module docstring)."""

    def __init__(self, store: LockBackend, name: str, ttl: float, *, wait: float = 0.0, refresh: bool = False):
        check_lock(name, ttl)
        if wait < 0:
            raise InvalidInputError("a lock wait must not be negative")
        self.store, self.name, self.ttl, self.wait, self.refresh = store, name, float(ttl), float(wait), refresh
        self.token: str | None = None
        self._refresher: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    @property
    def held(self) -> bool:
        """Whether this object acquired the lock and has not released it (it may have expired since)."""
        return self.token is not None

    async def acquire(self) -> bool:
        """Try to take the lock, retrying for up to ``wait`` seconds; True when taken."""
        deadline = time.monotonic() + self.wait
        pause = _POLL_FIRST
        while True:
            self.token = await self.store.acquire_lock(self.name, self.ttl)
            if self.token is not None:
                self._start_refreshing()
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            await asyncio.sleep(min(left, pause * (0.5 + random.random())))
            pause = min(pause * 2, _POLL_MAX)

    async def extend(self, ttl: float | None = None) -> bool:
        """Push the expiry to now + ``ttl`` (default: the lock's ttl); False when the lock was lost."""
        if self.token is None:
            return False
        return await self.store.extend_lock(self.name, self.token, self.ttl if ttl is None else ttl)

    async def release(self) -> bool:
        """Release the lock if this acquisition still holds it; False when it had expired or been taken."""
        await self._stop_refreshing()
        token, self.token = self.token, None
        if token is None:
            return False
        return await self.store.release_lock(self.name, token)

    async def __aenter__(self) -> Self:
        if not await self.acquire():
            raise LockHeldError(self.name)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if not await self.release():
            logger.warning("lock %r had expired before it was released: the work overran its ttl", self.name)

    def _start_refreshing(self) -> None:
        if self.refresh:
            self._stopping.clear()
            self._refresher = asyncio.create_task(self._keep_extending())

    async def _keep_extending(self) -> None:
        try:
            while await self._sleep_then_extend():
                pass
        except LkPersistError as exc:  # the store failed: the lock may expire under the work
            logger.warning("could not extend lock %r: %s", self.name, exc)
            return
        if self._stopping.is_set():
            return  # released
        logger.warning("lock %r was lost while held: another holder may run at the same time", self.name)

    async def _sleep_then_extend(self) -> bool:
        try:
            await asyncio.wait_for(self._stopping.wait(), self.ttl / 3)
            return False  # released: stop between two extends, never in the middle of one
        except TimeoutError:
            return await self.extend()

    async def _stop_refreshing(self) -> None:
        task, self._refresher = self._refresher, None
        if task is not None:
            # Let an extend in flight finish: a store command cancelled half-way can leave a pooled
            # connection (redis-py's Cluster client in particular) waiting for a reply that never comes.
            self._stopping.set()
            await asyncio.wait({task}, timeout=self.ttl)
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise  # our caller is being cancelled, not just the refresher: let it through
            except Exception as exc:  # noqa: BLE001 - the refresher already logged its own failures
                logger.debug("lock %r refresher ended with %s", self.name, type(exc).__name__)


__all__ = ["MAX_LOCK_NAME", "Lock", "LockBackend", "check_lock", "check_lock_name", "new_token"]
