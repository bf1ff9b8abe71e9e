"""``redis://``, ``rediss://``, ``redis+sentinel://``, ``redis+cluster://``: sessions in Redis.

Each lifecycle operation (connect, disconnect, heartbeat, claim_greeting, update, append_turn,
compact_turns, delete) is one Lua script, so one round trip and atomic across every process and host
sharing the Redis.

Expiry is logical, judged against the injected clock (passed to every script), and Redis also drops
abandoned sessions by itself: every write sets the identity's key TTLs to its deadline plus
``NATIVE_TTL_GRACE``. An index entry whose keys Redis dropped that way is skipped by listing and removed
by the next purge; until then ``count("all")`` and ``count("expired")`` include it.

The package, as every backend's: ``url`` (the URL and its options) and ``client`` (redis-py client per
deployment, ``sentinel`` its failover-aware connection), ``keys`` (the cluster-ready key layout: one
identity's keys and its bucket's indexes share a hash slot), ``lua`` (the scripts), ``context`` (what
the helpers share), ``records`` (replies ↔ sessions), ``errors``, ``listing`` (listing, counting and
purging over the bucket indexes), ``pipeline``, ``events``, ``locks``, ``readable`` (the encryption
check the scripts make), ``raw`` (encryption migration), ``reconcile`` and ``wait`` (opt-in WAIT).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from lkpersist.exceptions import InvalidInputError, SessionNotFoundError
from lkpersist.model.analytics import DailyStats, SessionCounters
from lkpersist.model.presence import ArrivalRequest
from lkpersist.model.reconcile import OfflineDelta
from lkpersist.model.results import (
    Arrival,
    Census,
    CorruptRecord,
    Page,
    PurgeResult,
    StorageInfo,
)
from lkpersist.model.session import (
    SUMMARY_KEY,
    CoveredTurns,
    Session,
    SessionChanges,
    Status,
    Turn,
)
from lkpersist.model.transfer import ConflictRule, ImportOutcome, SessionRecord
from lkpersist.stores.base import PurgeProgress, RecordPage, SessionStore
from lkpersist.stores.events import EventSource
from lkpersist.stores.paging import Position
from lkpersist.stores.raw import StoredValues
from lkpersist.stores.redis import export, listing, reconcile, transfer
from lkpersist.stores.redis.analytics import RedisAnalytics
from lkpersist.stores.redis.client import build_client
from lkpersist.stores.redis.context import NATIVE_TTL_GRACE, RedisContext
from lkpersist.stores.redis.errors import translated
from lkpersist.stores.redis.events import RedisEventSource
from lkpersist.stores.redis.keys import DEFAULT_PREFIX, KeyLayout
from lkpersist.stores.redis.locks import RedisLocks
from lkpersist.stores.redis.presence import RedisPresence
from lkpersist.stores.redis.raw import RedisStoredValues
from lkpersist.stores.redis.readable import readable_args
from lkpersist.stores.redis.records import (
    encode_json_value,
    frame_turn,
    session_from_reply,
    turns_from_frames,
)
from lkpersist.stores.redis.url import parse_redis_url
from lkpersist.stores.redis.wait import DEFAULT_WAIT_TIMEOUT_MS, ReplicaWait
from lkpersist.stores.url import redact_url


class RedisStore(SessionStore):
    """Sessions in Redis through redis-py's asyncio client (responses stay bytes; we decode)."""

    scheme = "redis"

    def __init__(
        self, client: Any, *, prefix: str = DEFAULT_PREFIX, display_url: str = "redis://",
        replica_wait: ReplicaWait | None = None, **options: Any,
    ):
        super().__init__(**options)
        self.client = client
        self.replica_wait = replica_wait
        self.keys = KeyLayout(prefix)
        self.display_url = display_url
        self._redis = RedisContext(client, self.keys, self.settings, display_url, replica_wait)
        self._channel = self._redis.events_channel
        self._locks = RedisLocks(client, self.keys, display_url)
        self._readable = readable_args(self.codec)
        self._analytics = RedisAnalytics(client, self.keys, self.analytics)
        self._presence = RedisPresence(self._redis, self._analytics)

    @classmethod
    def from_url(cls, url: str, **options: Any) -> RedisStore:
        """Build a store from a Redis URL; ``prefix=`` may be given here or as ``?prefix=`` (not both)."""
        redacted = redact_url(url)
        target = parse_redis_url(url, redacted)
        prefix = options.pop("prefix", None)
        if prefix is not None and target.prefix is not None and prefix != target.prefix:
            raise InvalidInputError(f"two different key prefixes given: {prefix!r} and ?prefix={target.prefix!r}")
        prefix = prefix or target.prefix or DEFAULT_PREFIX
        wait = None
        if "wait_replicas" in target.options:
            wait = ReplicaWait(target.options["wait_replicas"], target.options.get("wait_timeout_ms", DEFAULT_WAIT_TIMEOUT_MS))
        return cls(build_client(target), prefix=prefix, display_url=redacted, replica_wait=wait, **options)

    async def ensure_ready(self) -> None:
        """Initialise a Redis Cluster client before first use (see :meth:`RedisContext.ensure_ready`)."""
        await self._redis.ensure_ready()

    def _session(self, identity: str, reply: Any) -> Session:
        session = session_from_reply(identity, reply, self.codec)
        if session is None:  # the scripts only return a reply with a session in it
            raise SessionNotFoundError(identity)
        return session

    # --- presence ----------------------------------------------------------------------------------

    async def _arrive(self, identity: str, request: ArrivalRequest) -> Arrival:
        if not self.analytics.ready:
            await self._analytics_ready()
        return await self._presence.arrive(identity, request)

    async def _leave(self, identity: str, connection: str, reason: str | None) -> Session | None:
        return await self._presence.leave(identity, connection, reason)

    async def _beat(self, identity: str, connection: str) -> bool:
        return await self._presence.beat(identity, connection)

    async def _claim_greeting(self, identity: str) -> bool:
        return await self._presence.claim_greeting(identity)

    # --- reads and edits ---------------------------------------------------------------------------

    async def _get(self, identity: str) -> Session | None:
        reply = await self._redis.run(self._redis.scripts.read, identity)
        session = session_from_reply(identity, reply, self.codec)
        if session is None or session.is_expired(self.now()):
            return None
        return session

    async def _update(self, identity: str, changes: SessionChanges) -> Session:
        language = changes.language
        args: list[Any] = ["0", ""] if language is None else ["1", self.codec.encode(language)]
        args += self._readable
        for keys_index, mapping in ((2, changes.metadata), (3, changes.context)):
            for key, value in (mapping or {}).items():
                encoded = "" if value is None else encode_json_value(self.codec, value)
                args += [keys_index, "d" if value is None else "s", key, encoded]
        reply = await self._redis.run(self._redis.scripts.update, identity, *args)
        if reply is None:
            raise SessionNotFoundError(identity)
        return self._session(identity, reply)

    async def _delete(self, identity: str) -> bool:
        return bool(await self._redis.run(self._redis.scripts.delete, identity, self._channel) == 1)

    async def _append_turn(self, identity: str, turn: Turn) -> bool:
        item_id = b"" if turn.item_id is None else turn.item_id.encode("utf-8")
        if not self.analytics.ready:
            await self._analytics_ready()
        more_keys, tally = self._analytics.turn_part(identity, self.now())
        result = await self._redis.append_turn(
            identity, more_keys, self.max_turns, "0" if turn.item_id is None else "1",
            item_id, frame_turn(turn, self.codec), *tally,
        )
        if result == -1:
            raise SessionNotFoundError(identity)
        return bool(result == 1)

    async def _recent_turns(self, identity: str, limit: int | None) -> list[Turn]:
        frames = await self._redis.read_turns(identity, limit or 0)
        return turns_from_frames(identity, frames, self.codec)

    async def _compact_turns(self, identity: str, summary: str, covered: CoveredTurns) -> bool:
        span = (covered.count, covered.first.encode("utf-8"), covered.last.encode("utf-8"))
        value = encode_json_value(self.codec, summary)
        args = (*span, SUMMARY_KEY, value, *self._readable)
        result = await self._redis.run(self._redis.scripts.compact_turns, identity, *args)
        if result == -1:
            raise SessionNotFoundError(identity)
        return bool(result == 1)

    async def _apply_offline(self, delta: OfflineDelta) -> Session | None:
        if not self.analytics.ready:
            await self._analytics_ready()
        return await reconcile.apply_offline(self._redis, self._analytics, delta)

    # --- listing and housekeeping ------------------------------------------------------------------

    async def _list_page(self, status: Status, limit: int, after: Position | None) -> Page:
        return await listing.list_page(self._redis, status, limit, after)

    async def _count(self, status: Status) -> int:
        return await listing.count(self._redis, status)

    async def _purge(self, now: float, cutoff: float | None, dry_run: bool, progress: PurgeProgress) -> PurgeResult:
        return await listing.purge(self._redis, now=now, cutoff=cutoff, dry_run=dry_run, progress=progress)

    async def _census(self, now: float, stale_after: float) -> Census:
        return await listing.census(self._redis, now, stale_after)

    async def _storage_info(self) -> StorageInfo:
        return await listing.storage_info(self._redis)

    # --- moving sessions between stores --------------------------------------------------------------

    def _scan_records(self, status: Status, page_size: int) -> AsyncIterator[RecordPage]:
        return export.scan_records(self._redis, status, page_size)

    async def _load_records(self, identities: Sequence[str]) -> list[SessionRecord | CorruptRecord | None]:
        return await transfer.load_records(self._redis, identities)

    async def _import_records(self, records: Sequence[SessionRecord], rule: ConflictRule) -> list[ImportOutcome]:
        return await transfer.import_batch(self._redis, records, rule)

    # --- events, locks and raw values (every process and host on this Redis) -----------------------

    def _event_source(self) -> EventSource:
        return RedisEventSource(self._redis)

    async def _acquire_lock(self, name: str, ttl: float) -> str | None:
        return await self._locks.acquire(name, ttl, self.now())

    async def _release_lock(self, name: str, token: str) -> bool:
        return await self._locks.release(name, token, self.now())

    async def _extend_lock(self, name: str, token: str, ttl: float) -> bool:
        return await self._locks.extend(name, token, ttl, self.now())

    def stored_values(self) -> StoredValues:
        return RedisStoredValues(self._redis)

    async def _analytics_ready(self) -> None:
        await self._redis.ensure_ready()  # a cold Cluster client must not be first used by many tasks at once
        with translated(self.display_url):
            await self._analytics.ensure_secret()

    async def _daily_stats(self, dates: list[str]) -> DailyStats:
        with translated(self.display_url):
            return await self._analytics.daily(dates)

    async def _session_counters(self, identity: str, identity_hash: str) -> SessionCounters | None:
        with translated(self.display_url):
            return await self._analytics.counters(identity)

    async def _analytics_secret(self) -> str | None:
        with translated(self.display_url):
            return await self._analytics.kept_secret()

    async def close(self) -> None:
        """Close the client's connections; errors while closing are not worth reporting."""
        with translated(self.display_url):
            await self.client.aclose()


__all__ = ["NATIVE_TTL_GRACE", "RedisStore"]
