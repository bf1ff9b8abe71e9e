"""``redis://``, ``rediss://``, ``redis+sentinel://``, ``redis+cluster://``: sessions in Redis.

Each lifecycle operation (connect, disconnect, heartbeat, claim_greeting, update, append_turn, delete)
is one Lua script, so one round trip and atomic across every process and host sharing the Redis. The
key layout is in ``keys`` (cluster-ready: one identity's keys and its bucket's indexes share a
hash slot), the scripts in ``_redis_lua``, listing/counting/purging over the bucket indexes in
``_redis_listing``.

Expiry is logical, judged against the injected clock (passed to every script), and Redis also drops
abandoned sessions by itself: every write sets the identity's key TTLs to its deadline plus
``NATIVE_TTL_GRACE``. An index entry whose keys Redis dropped that way is skipped by listing and removed
by the next purge; until then ``count("all")`` and ``count("expired")`` include it.
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

from redis.asyncio.cluster import RedisCluster
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

from lkpersist.clock import to_ms
from lkpersist.exceptions import InvalidInputError, SessionNotFoundError
from lkpersist.model.reconcile import OfflineDelta
from lkpersist.model.results import ConnectResult, Page, PurgeResult
from lkpersist.model.session import SCHEMA_VERSION, Session, Status, Turn, validate_identity
from lkpersist.stores.base import DEFAULT_PAGE_SIZE, SessionStore
from lkpersist.stores.events import EventStream
from lkpersist.stores.locks import check_lock
from lkpersist.stores.paging import check_limit
from lkpersist.stores.redis import listing as _redis_listing
from lkpersist.stores.redis import lua as _redis_lua
from lkpersist.stores.redis import reconcile as _reconcile_redis
from lkpersist.stores.redis.client import build_client
from lkpersist.stores.redis.errors import REDIS_ERRORS, translate, translated
from lkpersist.stores.redis.events import RedisEventSource
from lkpersist.stores.redis.keys import DEFAULT_PREFIX, KeyLayout
from lkpersist.stores.redis.locks import RedisLocks
from lkpersist.stores.redis.readable import ANY_FORM, readable_args
from lkpersist.stores.redis.records import (
    encode_json_value,
    frame_turn,
    session_from_fields,
    session_from_reply,
    turn_from_frame,
)
from lkpersist.stores.redis.url import parse_redis_url
from lkpersist.stores.redis.wait import DEFAULT_WAIT_TIMEOUT_MS, ReplicaWait

NATIVE_TTL_GRACE = 3600.0
"""Seconds Redis keeps a session's keys past its logical deadline before dropping them by itself."""


@dataclass(frozen=True)
class RedisScripts:
    """The Lua scripts registered on one client (EVALSHA, loaded again on NOSCRIPT)."""

    connect: AsyncScript
    disconnect: AsyncScript
    heartbeat: AsyncScript
    claim_greeting: AsyncScript
    update: AsyncScript
    append_turn: AsyncScript
    recent_turns: AsyncScript
    read: AsyncScript
    delete: AsyncScript
    list_scan: AsyncScript
    purge: AsyncScript

    @classmethod
    def register(cls, client: Any) -> RedisScripts:
        sources = {
            "connect": _redis_lua.CONNECT,
            "disconnect": _redis_lua.DISCONNECT,
            "heartbeat": _redis_lua.HEARTBEAT,
            "claim_greeting": _redis_lua.CLAIM_GREETING,
            "update": _redis_lua.UPDATE,
            "append_turn": _redis_lua.APPEND_TURN,
            "recent_turns": _redis_lua.RECENT_TURNS,
            "read": _redis_lua.READ,
            "delete": _redis_lua.DELETE,
            "list_scan": _redis_lua.LIST_SCAN,
            "purge": _redis_lua.PURGE,
        }
        return cls(**{name: client.register_script(source) for name, source in sources.items()})

    def all(self) -> tuple[AsyncScript, ...]:
        """Every script, to load them all at once (a server answered NOSCRIPT to a pipeline)."""
        return tuple(getattr(self, name) for name in self.__dataclass_fields__)


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
        self.scripts = RedisScripts.register(client)
        self._channel = self.keys.events_channel.encode("utf-8")
        self._locks = RedisLocks(client, self.keys, display_url)
        self._reads = frozenset((self.scripts.read.sha, self.scripts.recent_turns.sha))
        self._cluster_cold = isinstance(client, RedisCluster)
        self._grace_ms = b"%d" % to_ms(NATIVE_TTL_GRACE)
        self._connect_cache: tuple[object, object, tuple[bytes, ...]] = (None, None, ())
        self._readable_cache: tuple[object, tuple[bytes, bytes]] = (None, ANY_FORM)

    @classmethod
    def from_url(cls, url: str, **options: Any) -> RedisStore:
        """Build a store from a Redis URL; ``prefix=`` may be given here or as ``?prefix=`` (not both)."""
        from lkpersist.stores import redact_url

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

    # --- the one way a per-identity script runs ----------------------------------------------------

    async def ensure_ready(self) -> None:
        """Initialise a Redis Cluster client before its first use. redis-py's RedisCluster, when many
        tasks race its lazy first initialisation, can break a connection another task is using (an
        AttributeError on a None writer); initialising once, up front, avoids that."""
        if self._cluster_cold:
            with translated(self.display_url):
                await self.client.initialize()
            self._cluster_cold = False

    async def _run(self, script: AsyncScript, identity: str, *args: Any) -> Any:
        validate_identity(identity)
        if self._cluster_cold:
            await self.ensure_ready()
        member, keys = self.keys.packed_keys_for(identity)
        argv = (member, b"%d" % to_ms(self.now()), self._grace_ms, *args)
        try:  # what ``translated`` does, without a context manager on the hot path
            try:
                return await self._evalsha(script.sha, keys, argv)
            except NoScriptError:  # a restarted or flushed server: load it and run again
                await self.client.script_load(script.script)
                return await self._evalsha(script.sha, keys, argv)
        except REDIS_ERRORS as exc:
            raise translate(exc, self.display_url, identity) from exc

    def _evalsha(self, sha: str, keys: tuple[bytes, ...], argv: tuple[Any, ...]) -> Awaitable[Any]:
        if self.replica_wait is None or sha in self._reads:
            return self.client.evalsha(sha, len(keys), *keys, *argv)  # type: ignore[no-any-return]
        return self.replica_wait.evalsha(self.client, sha, keys, argv)

    def _connect_args(self) -> tuple[bytes, ...]:
        """connect's arguments after the common three (TTL policy, what the codec reads, the events
        channel), computed again only when the policy or the codec object changes."""
        policy, codec = self.ttl_policy, self.codec
        if self._connect_cache[0] is not policy or self._connect_cache[1] is not codec:
            args = (to_ms(policy.first), to_ms(policy.returning), to_ms(policy.frequent), policy.frequent_after)
            tail = (SCHEMA_VERSION, to_ms(policy.presence_timeout))
            packed = tuple(b"%d" % value for value in (*args, *tail))
            self._connect_cache = (policy, codec, (*packed, *self._readable_args(), self._channel))
        return self._connect_cache[2]

    def _readable_args(self) -> tuple[bytes, bytes]:
        """What the codec can decode, for the scripts that refuse unreadable sessions before writing."""
        if self._readable_cache[0] is not self.codec:
            self._readable_cache = (self.codec, readable_args(self.codec))
        return self._readable_cache[1]

    def _session(self, identity: str, reply: Any) -> Session:
        session = session_from_reply(identity, reply, self.codec)
        if session is None:  # the scripts only return a reply with a session in it
            raise SessionNotFoundError(identity)
        return session

    # --- lifecycle ---------------------------------------------------------------------------------

    async def connect(self, identity: str) -> ConnectResult:
        reply = await self._run(self.scripts.connect, identity, *self._connect_args())
        session = session_from_fields(identity, reply[2], reply[3], reply[4], self.codec)
        return ConnectResult(session=session, returning=reply[0] == 1, was_connected=reply[1] == 1)

    async def disconnect(self, identity: str) -> Session | None:
        reply = await self._run(self.scripts.disconnect, identity, *self._readable_args(), self._channel)
        return None if reply is None else self._session(identity, reply)

    async def heartbeat(self, identity: str) -> bool:
        return bool(await self._run(self.scripts.heartbeat, identity) == 1)

    async def claim_greeting(self, identity: str) -> bool:
        return bool(await self._run(self.scripts.claim_greeting, identity) == 1)

    # --- reads and edits ---------------------------------------------------------------------------

    async def get(self, identity: str) -> Session | None:
        session = session_from_reply(identity, await self._run(self.scripts.read, identity), self.codec)
        if session is None or session.is_expired(self.now()):
            return None
        return session

    async def update(
        self,
        identity: str,
        *,
        language: str | None = None,
        metadata: dict[str, Any] | None = None,
        context: dict[str, Any] | None = None,
    ) -> Session:
        args: list[Any] = ["0", ""] if language is None else ["1", self.codec.encode(language)]
        args += self._readable_args()
        for keys_index, changes in ((2, metadata), (3, context)):
            for key, value in (changes or {}).items():
                encoded = "" if value is None else encode_json_value(self.codec, value)
                args += [keys_index, "d" if value is None else "s", key, encoded]
        reply = await self._run(self.scripts.update, identity, *args)
        if reply is None:
            raise SessionNotFoundError(identity)
        return self._session(identity, reply)

    async def delete(self, identity: str) -> bool:
        return bool(await self._run(self.scripts.delete, identity, self._channel) == 1)

    async def append_turn(self, identity: str, turn: Turn) -> bool:
        item_id = b"" if turn.item_id is None else turn.item_id.encode("utf-8")
        result = await self._run(
            self.scripts.append_turn, identity, self.max_turns, "0" if turn.item_id is None else "1", item_id,
            frame_turn(turn, self.codec),
        )
        if result == -1:
            raise SessionNotFoundError(identity)
        return bool(result == 1)

    async def recent_turns(self, identity: str, limit: int | None = None) -> list[Turn]:
        count = 0 if limit is None else check_limit(limit)
        frames = await self._run(self.scripts.recent_turns, identity, count)
        return [turn_from_frame(identity, frame, self.codec) for frame in frames]

    async def apply_offline(self, delta: OfflineDelta) -> Session | None:
        return await _reconcile_redis.apply_offline(self, delta)

    # --- listing and housekeeping ------------------------------------------------------------------

    async def list_page(
        self, status: Status = "active", limit: int = DEFAULT_PAGE_SIZE, cursor: str | None = None
    ) -> Page:
        return await _redis_listing.list_page(self, status, limit, cursor)

    async def count(self, status: Status = "active") -> int:
        return await _redis_listing.count(self, status)

    async def purge(self, *, older_than: float | None = None, dry_run: bool = False) -> PurgeResult:
        return await _redis_listing.purge(self, older_than=older_than, dry_run=dry_run)

    # --- events and locks (every process and host on this Redis) -----------------------------------

    def events(self, identity: str | None = None) -> EventStream:
        return EventStream(RedisEventSource(self), identity)

    async def acquire_lock(self, name: str, ttl: float) -> str | None:
        check_lock(name, ttl)
        return await self._locks.acquire(name, ttl, self.now())

    async def release_lock(self, name: str, token: str) -> bool:
        return await self._locks.release(name, token, self.now())

    async def extend_lock(self, name: str, token: str, ttl: float) -> bool:
        check_lock(name, ttl)
        return await self._locks.extend(name, token, ttl, self.now())

    async def close(self) -> None:
        """Close the client's connections; errors while closing are not worth reporting."""
        with translated(self.display_url):
            await self.client.aclose()
