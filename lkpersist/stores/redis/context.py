"""What the Redis helpers need from a store, as one object: the client, the key layout, the scripts,
and the one way a per-identity script runs.

Listing, raw value access, reconciliation and events take a :class:`RedisContext` rather than the
:class:`~lkpersist.stores.redis.RedisStore`, so none of them depends on the store that uses them.
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio.cluster import RedisCluster
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

from lkpersist.clock import to_ms
from lkpersist.stores.redis import lua
from lkpersist.stores.redis.errors import REDIS_ERRORS, translate, translated
from lkpersist.stores.redis.keys import KeyLayout
from lkpersist.stores.redis.pipeline import Coalescer
from lkpersist.stores.redis.wait import ReplicaWait
from lkpersist.stores.settings import StoreSettings

TURN_BATCH = 16
"""Most turn reads or appends one pipeline of a ``Coalescer`` carries: as for arrivals (presence.ARRIVAL_BATCH),
several short pipelines let Redis and the client overlap (at 64 concurrent appends 1.6x the throughput of
one pipeline of all of them, reads 1.5x)."""
NATIVE_TTL_GRACE = 3600.0
"""Seconds Redis keeps a session's keys past its logical deadline before dropping them by itself."""


@dataclass(frozen=True)
class RedisScripts:
    """The Lua scripts registered on one client (EVALSHA, loaded again on NOSCRIPT); the presence scripts
    are registered by :class:`~lkpersist.stores.redis.presence.RedisPresence`."""

    update: AsyncScript
    append_turn: AsyncScript
    recent_turns: AsyncScript
    read: AsyncScript
    read_record: AsyncScript
    delete: AsyncScript
    list_scan: AsyncScript
    purge: AsyncScript
    sum_lengths: AsyncScript
    compact_turns: AsyncScript

    @classmethod
    def register(cls, client: Any) -> RedisScripts:
        sources = {
            "update": lua.UPDATE,
            "append_turn": lua.APPEND_TURN,
            "recent_turns": lua.RECENT_TURNS,
            "read": lua.READ,
            "read_record": lua.READ_RECORD,
            "delete": lua.DELETE,
            "list_scan": lua.LIST_SCAN,
            "purge": lua.PURGE,
            "sum_lengths": lua.SUM_LENGTHS,
            "compact_turns": lua.COMPACT_TURNS,
        }
        return cls(**{name: client.register_script(source) for name, source in sources.items()})

    def all(self) -> tuple[AsyncScript, ...]:
        """Every script, to load them all at once (a server answered NOSCRIPT to a pipeline)."""
        return tuple(getattr(self, name) for name in self.__dataclass_fields__)


@dataclass(eq=False)
class RedisContext:
    """One store's client, keys and scripts; ``display_url`` (password redacted) names it in errors."""

    client: Any
    keys: KeyLayout
    settings: StoreSettings
    display_url: str
    replica_wait: ReplicaWait | None = None
    scripts: RedisScripts = field(init=False)
    _reads: frozenset[str] = field(init=False)
    _cluster_cold: bool = field(init=False)
    _grace_ms: bytes = field(init=False)
    _turn_reads: Coalescer = field(init=False)
    _turn_appends: Coalescer = field(init=False)

    def __post_init__(self) -> None:
        self.scripts = RedisScripts.register(self.client)
        self._turn_reads = Coalescer(self.client, self.scripts.recent_turns, self.scripts.all(), batch_size=TURN_BATCH)
        self._turn_appends = Coalescer(
            self.client, self.scripts.append_turn, self.scripts.all(), batch_size=TURN_BATCH)
        self._reads = frozenset((self.scripts.read.sha, self.scripts.recent_turns.sha, self.scripts.read_record.sha))
        self._cluster_cold = isinstance(self.client, RedisCluster)
        self._grace_ms = b"%d" % to_ms(NATIVE_TTL_GRACE)

    @property
    def events_channel(self) -> bytes:
        """The pub/sub channel of session events, as the scripts take it (their last argument)."""
        return self.keys.events_channel.encode("utf-8")

    def now(self) -> float:
        return self.settings.clock.now()

    async def ensure_ready(self) -> None:
        """Initialise a Redis Cluster client before its first use. redis-py's RedisCluster, when many
        tasks race its lazy first initialisation, can break a connection another task is using (an
        AttributeError on a None writer); initialising once, up front, avoids that."""
        if self._cluster_cold:
            with translated(self.display_url):
                await self.client.initialize()
            self._cluster_cold = False

    def script_call(
        self, identity: str, args: tuple[Any, ...], now: float | None = None
    ) -> tuple[tuple[bytes, ...], tuple[Any, ...]]:
        """KEYS and ARGV of one per-identity script call: the identity's keys; member, now ms (the store
        clock's unless the caller read it already), grace ms, ``args``."""
        member, keys = self.keys.packed_keys_for(identity)
        return keys, (member, b"%d" % to_ms(self.now() if now is None else now), self._grace_ms, *args)

    def turn_call(
        self, identity: str, args: tuple[Any, ...], more_keys: tuple[Any, ...] = ()
    ) -> tuple[tuple[bytes, ...], tuple[Any, ...]]:
        """KEYS and ARGV of a turn script call: the session hash, turns list and item-id set only (what a
        turn touches, packed and routed on every append and return) then ``more_keys``; now ms, grace ms, ``args``."""
        keys = self.keys.packed_turn_keys(identity)
        return (*keys, *more_keys) if more_keys else keys, (b"%d" % to_ms(self.now()), self._grace_ms, *args)

    async def run(self, script: AsyncScript, identity: str, *args: Any) -> Any:
        """Run one per-identity script (KEYS: the identity's keys; ARGV: member, now ms, grace ms, ``args``)."""
        keys, argv = self.script_call(identity, args)
        return await self._call(script, identity, keys, argv)

    async def run_with(self, script: AsyncScript, identity: str, more_keys: tuple[Any, ...], *args: Any) -> Any:
        """:meth:`run` with ``more_keys`` after the identity's (the analytics keys a script also updates)."""
        keys, argv = self.script_call(identity, args)
        return await self._call(script, identity, (*keys, *more_keys), argv)

    async def run_on_turns(self, script: AsyncScript, identity: str, *args: Any, more_keys: tuple[Any, ...] = ()) -> Any:
        """Run a turn script (KEYS and ARGV: :meth:`turn_call`)."""
        keys, argv = self.turn_call(identity, args, more_keys)
        return await self._call(script, identity, keys, argv)

    async def run_coalesced(
        self, coalescer: Coalescer, identity: str, now: float, more_keys: tuple[Any, ...], *args: Any
    ) -> Any:
        """:meth:`run` of ``coalescer``'s script at ``now`` (the caller's one reading of the clock) with
        ``more_keys`` after the identity's, pipelined with the calls of that script made at the same moment;
        with replica waits, on its own (EVALSHA + WAIT)."""
        keys, argv = self.script_call(identity, args, now)
        if more_keys:
            keys = (*keys, *more_keys)
        if self.replica_wait is not None:
            return await self._call(coalescer.script, identity, keys, argv)
        return await self._coalesced(coalescer, identity, keys, argv)

    async def read_turns(self, identity: str, *args: Any) -> Any:
        """``recent_turns``' script (KEYS and ARGV: :meth:`turn_call`), pipelined with the reads of
        turns made at the same moment (see :class:`~lkpersist.stores.redis.pipeline.Coalescer`)."""
        return await self._coalesced(self._turn_reads, identity, *self.turn_call(identity, args))

    async def append_turn(self, identity: str, more_keys: tuple[Any, ...], *args: Any) -> Any:
        """``append_turn``'s script, as :meth:`read_turns` (with the analytics ``more_keys``); with replica
        waits, on its own (EVALSHA + WAIT)."""
        if self.replica_wait is not None:
            return await self.run_on_turns(self.scripts.append_turn, identity, *args, more_keys=more_keys)
        return await self._coalesced(self._turn_appends, identity, *self.turn_call(identity, args, more_keys))

    async def _coalesced(
        self, coalescer: Coalescer, identity: str, keys: tuple[bytes, ...], argv: tuple[Any, ...]
    ) -> Any:
        if self._cluster_cold:
            await self.ensure_ready()
        try:
            return await coalescer.call(keys, argv)
        except REDIS_ERRORS as exc:
            raise translate(exc, self.display_url, identity) from exc

    async def _call(self, script: AsyncScript, identity: str, keys: tuple[bytes, ...], argv: tuple[Any, ...]) -> Any:
        if self._cluster_cold:
            await self.ensure_ready()
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
            return self.client.execute_command("EVALSHA", sha, len(keys), *keys, *argv)  # type: ignore[no-any-return]
        return self.replica_wait.evalsha(self.client, sha, keys, argv)


__all__ = ["NATIVE_TTL_GRACE", "TURN_BATCH", "RedisContext", "RedisScripts"]
