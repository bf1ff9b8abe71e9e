"""``FallbackStore``: keep serving sessions from memory while the real store is down, then merge back.

Wrap any store (in practice Redis)::

    store = FallbackStore(open_store("redis://127.0.0.1:6379/0"))

While the primary answers, every call goes to it (bounded by ``operation_timeout``). When a call fails
with :class:`~lkpersist.exceptions.StoreUnavailableError` or times out, the store becomes *degraded*:
it logs one WARNING, serves every call from an in-memory :class:`MemoryStore` (seeded with the sessions
this process last saw, so a known participant is still welcomed back), journals what each identity did
(:mod:`~lkpersist.stores.fallback.journal`), and one background task retries the primary every
``retry_interval``. When the primary answers, each identity's journal is merged into it with
``apply_offline`` — atomically per identity, adding to what other agents wrote meanwhile rather than
overwriting it (the rule: :func:`lkpersist.model.reconcile.reconcile`) — and calls go to the primary
again once nothing is left to merge.

What it cannot do: a call that timed out after the primary had applied it is applied again when merged
(reconnect increments are at-least-once; turns with item ids exactly-once). A session the primary lost
during the outage (purged, deleted, or a Redis restarted without persistence) is created again from
what happened during the outage only; its earlier turns and counts are gone. While degraded, listing,
counting and purging see only this process's memory, locks and events are not available, and
``compact_turns`` answers False (turns stay until a summary can be stored on the primary). Census,
export and import always go to the primary (an operator's view must never be this process's memory).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from enum import Enum
from typing import Any, TypeVar

from lkpersist.exceptions import InvalidInputError, LkPersistError, StoreUnavailableError
from lkpersist.logsafe import get_logger
from lkpersist.model.presence import ArrivalRequest
from lkpersist.model.reconcile import OfflineDelta
from lkpersist.model.results import Arrival, Page, PurgeResult
from lkpersist.model.session import CoveredTurns, Session, SessionChanges, Status, Turn
from lkpersist.stores.base import PurgeProgress, SessionStore
from lkpersist.stores.fallback.journal import OfflineJournal
from lkpersist.stores.fallback.local import LocalStore, RecentCopies
from lkpersist.stores.fallback.primary import PrimaryOnly
from lkpersist.stores.paging import Position

log = get_logger("lkpersist.fallback")
T = TypeVar("T")

PROBE_IDENTITY = "lkpersist-fallback-probe"
"""Read (never written) to ask the primary whether it answers when nothing waits to be merged."""
_DROP_LOG_EVERY = 100


class State(Enum):
    """Where a FallbackStore's calls go."""

    PRIMARY = "primary"
    """The primary answers: every call goes to it."""
    DEGRADED = "degraded"
    """The primary did not answer: calls are served from memory and journaled; a task retries it."""


class FallbackStore(PrimaryOnly, SessionStore):
    """A store that survives its primary's outages; see the module docstring.

    ``retry_interval``: seconds between attempts to reach the primary while degraded.
    ``operation_timeout``: longest wait for one primary call before switching (None: the backend's own
    timeouts). Keep it well under the agent's ``store_timeout`` so the fallback still answers in time.
    ``journal_limit``: identities journaled at most; past it the least recently active is dropped.
    ``close_primary``: whether :meth:`close` closes the primary too (False when the caller owns it).
    """

    scheme = "fallback"

    def __init__(
        self,
        primary: SessionStore,
        *,
        retry_interval: float = 2.0,
        operation_timeout: float | None = 1.0,
        journal_limit: int = 10_000,
        close_primary: bool = True,
    ) -> None:
        if retry_interval <= 0 or (operation_timeout is not None and operation_timeout <= 0) or journal_limit < 1:
            raise InvalidInputError("retry_interval and operation_timeout must be positive, journal_limit >= 1")
        super().__init__(
            clock=primary.clock, ttl_policy=primary.ttl_policy, max_turns=primary.max_turns, codec=primary.codec,
            switch_grace=primary.settings.switch_grace,
        )
        self.primary = primary
        self.retry_interval = retry_interval
        self.operation_timeout = operation_timeout
        self.close_primary = close_primary
        self.outages = 0
        self.fallback_operations = 0
        self.reconciled = 0
        self.reconcile_failures = 0
        self._journal = OfflineJournal(journal_limit, primary.max_turns, on_drop=self._dropped)
        self._known = RecentCopies()
        self.state = State.PRIMARY
        self._local = self._new_local()
        self._closed = False
        self._inflight = 0
        self._degraded_since: float | None = None
        self._retry_task: asyncio.Task[None] | None = None
        self._merging = asyncio.Lock()  # one reconciler at a time: the background task or retry_now()

    # --- state and metrics -------------------------------------------------------------------------

    @property
    def degraded(self) -> bool:
        """True while calls are served from memory because the primary did not answer."""
        return self.state is State.DEGRADED

    @property
    def journal_dropped(self) -> int:
        """Identities whose offline changes were dropped because the journal was full."""
        return self._journal.dropped

    def stats(self) -> dict[str, Any]:
        """Counters for metrics: outages, calls served from memory, identities merged, waiting, dropped."""
        return {
            "degraded": self.degraded,
            "degraded_seconds": 0.0 if self._degraded_since is None else time.monotonic() - self._degraded_since,
            "outages": self.outages,
            "fallback_operations": self.fallback_operations,
            "pending_identities": len(self._journal),
            "reconciled": self.reconciled,
            "reconcile_failures": self.reconcile_failures,
            "journal_dropped": self._journal.dropped,
        }

    # --- lifecycle (the primitives: arguments were checked by the public methods) -----------------

    async def _arrive(self, identity: str, request: ArrivalRequest) -> Arrival:
        arrival, local = await self._call(identity, lambda store: store._arrive(identity, request))
        if local:
            self._journal.arrived(arrival, self._continues(identity))
        else:
            self._known.remember(arrival.session)
        return arrival

    async def _leave(self, identity: str, connection: str, reason: str | None) -> Session | None:
        session, local = await self._call(identity, lambda store: store._leave(identity, connection, reason))
        if session is not None and local:
            self._journal.left(session, self._continues(identity))
        elif session is not None:
            self._known.remember(session)
        return session

    async def _beat(self, identity: str, connection: str) -> bool:
        alive, local = await self._call(identity, lambda store: store._beat(identity, connection))
        if alive and local:
            self._journal.heartbeat(identity, self.now(), self._continues(identity))
        elif alive:
            self._known.refreshed(identity, connection, self.now(), self.settings.presence)
        return alive

    async def _claim_greeting(self, identity: str) -> bool:
        claimed, local = await self._call(identity, lambda store: store._claim_greeting(identity))
        if claimed and local:
            self._journal.greeted(identity, self.now(), self._continues(identity))
        elif claimed:
            self._known.greeted(identity)
        return claimed

    # --- reads and edits ---------------------------------------------------------------------------

    async def _get(self, identity: str) -> Session | None:
        session, local = await self._call(identity, lambda store: store._get(identity))
        if session is not None and not local:
            self._known.remember(session)
        return session

    async def _update(self, identity: str, changes: SessionChanges) -> Session:
        session, local = await self._call(identity, lambda store: store._update(identity, changes))
        if local:
            self._journal.updated(identity, self.now(), self._continues(identity), changes)
        else:
            self._known.remember(session)
        return session

    async def _delete(self, identity: str) -> bool:
        existed, local = await self._call(identity, lambda store: store._delete(identity))
        self._known.forget(identity)
        if local:
            self._journal.deleted(identity, self.now())
        return existed

    async def _append_turn(self, identity: str, turn: Turn) -> bool:
        stored, local = await self._call(identity, lambda store: store._append_turn(identity, turn))
        if stored and local:
            self._journal.appended(identity, turn, self._continues(identity))
        return stored

    async def _recent_turns(self, identity: str, limit: int | None) -> list[Turn]:
        turns, _ = await self._call(identity, lambda store: store._recent_turns(identity, limit))
        return turns

    async def _compact_turns(self, identity: str, summary: str, covered: CoveredTurns) -> bool:
        """Primary only; False while degraded, so the merge back never meets turns dropped on one side."""
        if self.state is State.PRIMARY:
            try:
                return await self._on_primary(lambda store: store._compact_turns(identity, summary, covered))
            except (StoreUnavailableError, TimeoutError) as exc:
                self._degrade(exc)
        return False

    async def _apply_offline(self, delta: OfflineDelta) -> Session | None:
        """Merge straight into the primary (a fallback's own journal is merged by its reconciler)."""
        return await self.primary._apply_offline(delta)

    # --- listing and housekeeping (while degraded: this process's memory only) --------------------

    async def _list_page(self, status: Status, limit: int, after: Position | None) -> Page:
        page, _ = await self._call(None, lambda store: store._list_page(status, limit, after))
        return page

    async def _count(self, status: Status) -> int:
        counted, _ = await self._call(None, lambda store: store._count(status))
        return counted

    async def _purge(self, now: float, cutoff: float | None, dry_run: bool, progress: PurgeProgress) -> PurgeResult:
        result, _ = await self._call(None, lambda store: store._purge(now, cutoff, dry_run, progress))
        return result

    async def close(self) -> None:
        """Stop retrying, make one last bounded attempt to merge what is pending, then close the primary."""
        if self._closed:
            return
        self._closed = True
        task, self._retry_task = self._retry_task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if self.state is State.DEGRADED and len(self._journal):
            await self._last_attempt()
        if self.close_primary:
            await self.primary.close()

    # --- the switch ----------------------------------------------------------------------------------

    async def _call(self, identity: str | None, operation: Callable[[SessionStore], Awaitable[T]]) -> tuple[T, bool]:
        """Run ``operation`` on the primary, or on memory while degraded; True in the result means memory."""
        if self.state is State.PRIMARY:
            try:
                return await self._on_primary(operation), False
            except (StoreUnavailableError, TimeoutError) as exc:
                if self._closed:
                    raise
                self._degrade(exc)
        return await self._on_local(identity, operation), True

    async def _on_primary(self, operation: Callable[[SessionStore], Awaitable[T]]) -> T:
        if self.operation_timeout is None:
            return await operation(self.primary)
        async with asyncio.timeout(self.operation_timeout):
            return await operation(self.primary)

    async def _on_local(self, identity: str | None, operation: Callable[[SessionStore], Awaitable[T]]) -> T:
        local = self._local
        self._inflight += 1  # the switch back waits for calls already running on memory
        try:
            if identity is not None:
                local.seed(self._known.get(identity))
            return await operation(local)
        finally:
            self._inflight -= 1
            self.fallback_operations += 1

    def _degrade(self, exc: BaseException) -> None:
        if self.state is State.DEGRADED or self._closed:
            return
        self.state, self._local = State.DEGRADED, self._new_local()
        self.outages += 1
        self._degraded_since = time.monotonic()
        reason = str(exc) or f"no answer within {self.operation_timeout:g} s"
        log.warning(
            "session store unavailable (%s): serving sessions from memory, retrying every %g s",
            reason, self.retry_interval,
        )
        if self._retry_task is None or self._retry_task.done():
            loop = asyncio.get_running_loop()
            self._retry_task = loop.create_task(self._recover(), name="lkpersist-fallback-retry")

    async def retry_now(self) -> bool:
        """Try the primary now and merge what is pending; True when no longer degraded.

        The background task does this every ``retry_interval``; call it from a health check, or to
        reconcile at a moment of your choosing.
        """
        if self.state is State.PRIMARY:
            return True
        async with self._merging:
            merged = await self._reconcile_pending()
            if merged and self.state is State.DEGRADED and not len(self._journal) and not self._inflight:
                self._recovered()
        return not self.degraded

    async def _recover(self) -> None:
        """The one background task of an outage: retry and merge until the store is no longer degraded."""
        while True:
            await asyncio.sleep(self.retry_interval)
            try:
                if await self.retry_now():
                    return
            except Exception:  # a bug here must not leave the store degraded for good
                log.exception("merging offline changes failed; retrying in %g s", self.retry_interval)

    async def _reconcile_pending(self) -> bool:
        """Merge every waiting identity into the primary; False as soon as the primary does not answer."""
        if not len(self._journal):
            try:
                await self._on_primary(lambda store: store.get(PROBE_IDENTITY))
            except (StoreUnavailableError, TimeoutError):
                return False
        while (delta := self._journal.take()) is not None:
            if not await self._apply(delta):
                return False
        return True

    async def _apply(self, delta: OfflineDelta) -> bool:
        try:
            session = await self._on_primary(lambda store: store.apply_offline(delta))
        except (StoreUnavailableError, TimeoutError):
            self._journal.failed(delta)
            return False
        except LkPersistError as exc:  # a corrupt or unreadable record: this identity cannot be merged
            self._journal.done(delta)
            self.reconcile_failures += 1
            log.error("could not merge offline changes into the store: %s", exc)
            return True
        except BaseException:
            self._journal.failed(delta)
            raise
        self._journal.done(delta)
        self.reconciled += 1
        if session is not None:
            self._known.remember(session)
        return True

    def _recovered(self) -> None:
        since, self._degraded_since = self._degraded_since, None
        self.state = State.PRIMARY
        log.warning(
            "session store is back after %.1f s: offline changes merged (%d identities so far, %d dropped)",
            0.0 if since is None else time.monotonic() - since,
            self.reconciled, self._journal.dropped,
        )

    async def _last_attempt(self) -> None:
        timeout = 2 * (self.operation_timeout or 1.0)
        try:
            async with asyncio.timeout(timeout):
                await self.retry_now()
        except TimeoutError:
            pass
        if len(self._journal):
            log.warning(
                "closing while the session store is unavailable: offline changes of %d identities are lost",
                len(self._journal),
            )

    # --- bookkeeping -------------------------------------------------------------------------------

    def _new_local(self) -> LocalStore:
        """A fresh, empty memory store for one outage (what it held in an earlier one is merged or lost)."""
        return LocalStore(
            clock=self.clock, ttl_policy=self.ttl_policy, max_turns=self.max_turns, switch_grace=self.settings.switch_grace
        )

    def _continues(self, identity: str) -> float | None:
        return self._local.continues(identity) if self.state is State.DEGRADED else None

    def _dropped(self, identity: str) -> None:
        if self.state is State.DEGRADED:
            self._local.forget(identity)
        if self._journal.dropped % _DROP_LOG_EVERY == 1:
            log.warning(
                "offline journal full (%d identities): dropped the least recently active one (%d dropped so far)",
                self._journal.limit, self._journal.dropped,
            )


__all__ = ["PROBE_IDENTITY", "FallbackStore", "State"]
