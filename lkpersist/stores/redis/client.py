"""The redis-py asyncio client for a checked Redis URL: plain or TLS, Sentinel master, or Cluster.

Client construction is the only thing that differs between the Redis deployments; everything above it
(scripts, keys, pipelines per bucket) is the same.
"""

from __future__ import annotations

import functools
from typing import Any

from lkpersist.exceptions import InvalidStoreURLError
from lkpersist.stores.redis.url import DEFAULT_MAX_CONNECTIONS, RedisTarget


def build_client(target: RedisTarget) -> Any:
    """The redis-py asyncio client for ``target``: plain/TLS, Sentinel master, or Cluster."""
    kwargs = target.connection_kwargs()
    if target.scheme == "redis+cluster":
        from redis.asyncio.cluster import ClusterNode, RedisCluster

        kwargs.pop("max_connections", None)
        nodes = [ClusterNode(host, port) for host, port in target.nodes]
        return RedisCluster(startup_nodes=nodes, **kwargs)
    if target.scheme == "redis+sentinel":
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        from lkpersist.stores.redis.sentinel import RediscoveringSentinelConnection, Sentinels

        # One attempt per sentinel per discovery: the master connection's retry policy is the one budget.
        sentinel_kwargs = {k: kwargs[k] for k in ("socket_timeout", "socket_connect_timeout")}
        sentinel_kwargs["retry"] = Retry(NoBackoff(), 0)
        sentinel = Sentinels(target.nodes, sentinel_kwargs=sentinel_kwargs, **kwargs)  # type: ignore[no-untyped-call]
        return sentinel.master_for(target.service or "", db=target.db, connection_class=RediscoveringSentinelConnection)
    return _plain_client(target, kwargs)


def _plain_client(target: RedisTarget, kwargs: dict[str, Any]) -> Any:
    """A client whose pool makes callers wait for a free connection (up to the socket timeout) instead
    of failing with "Too many connections" when a burst of participants arrives at once."""
    from redis.asyncio import BlockingConnectionPool, Redis
    from redis.asyncio.connection import Connection, SSLConnection

    if len(target.nodes) > 1:
        raise InvalidStoreURLError("several hosts need redis+sentinel:// or redis+cluster://")
    host, port = target.nodes[0]
    connection_class = _hiredis_packing(SSLConnection if kwargs.pop("ssl", False) else Connection)
    pool = BlockingConnectionPool(
        connection_class=connection_class,
        max_connections=kwargs.pop("max_connections", DEFAULT_MAX_CONNECTIONS),
        timeout=kwargs["socket_timeout"],
        host=host,
        port=port,
        db=target.db,
        **kwargs,
    )
    return Redis.from_pool(pool)


@functools.cache
def _hiredis_packing(base: type) -> type:
    """``base`` packing commands with hiredis' C packer, as redis-py's sync client already does.

    The asyncio client packs in Python; for our scripts (a dozen keys and arguments a call) that was
    a fifth of the client's time per connect. Without hiredis the class is ``base`` unchanged."""
    from redis.connection import HiredisRespSerializer
    from redis.utils import HIREDIS_AVAILABLE

    if not HIREDIS_AVAILABLE:
        return base
    import hiredis

    serializer = HiredisRespSerializer()
    pack = hiredis.pack_command

    def pack_command(self: Any, *args: Any) -> list[bytes]:
        # The serializer splits a multi-word command name ("SCRIPT LOAD") and copies bytearrays per
        # argument, in Python; a one-word name with str/bytes/int/float/memoryview arguments (all our
        # hot calls) packs to the same bytes directly. Anything else takes the serializer's path.
        command = args[0]
        if type(command) is str and " " not in command:
            try:
                return [pack(args)]
            except TypeError:
                pass
        return serializer.pack(*args)  # type: ignore[no-any-return]

    return type(f"Hiredis{base.__name__}", (base,), {"pack_command": pack_command})

