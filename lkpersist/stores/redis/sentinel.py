"""Sentinel discovery that fails fast when no sentinel answers, and connections that follow failovers.

Two things redis-py 8.1 does not do on its own:

- :class:`RediscoveringSentinelConnection`: ``SentinelManagedConnection`` looks the master up only in
  ``connect()``, which the pool calls when it hands out a connection. A command that was in flight when
  the master died is retried on the *same* connection object, which reconnects through
  ``connect_check_health`` to the address it remembers: the dead master. Measured here, those operations
  retried against the dead port for the whole retry budget (~9 s) and then failed, long after the other
  tasks had moved to the promoted replica. Re-resolving the address whenever the connection is not
  connected fixes that; it costs one sentinel query per (re)connect, never per command.
- :class:`Sentinels`: when *no* sentinel answers, redis-py raises ``MasterNotFoundError`` (a
  ConnectionError), which the failover retry budget retries — 20 times, each discovery itself retried
  with backoff by every sentinel client: 92 s of silence, then a 1,500-character line of client reprs.
  The retry budget is for a master that was reachable and died, not for a deployment nobody can reach:
  here that case raises :class:`SentinelsUnreachableError`, which is not retried, naming the sentinels
  tried, after one connect attempt per sentinel (``socket_connect_timeout`` each).
"""

from __future__ import annotations

from typing import Any

from redis.asyncio.sentinel import MasterNotFoundError, Sentinel, SentinelManagedConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError


class SentinelsUnreachableError(RedisError):
    """No sentinel of the URL answered. Not a ConnectionError, so no retry policy retries it."""

    def __init__(self, tried: list[str]) -> None:
        self.tried = tried
        super().__init__(f"no sentinel answered (tried {', '.join(tried)})")


class Sentinels(Sentinel):
    """redis-py's Sentinel, telling "no sentinel answered" apart from "the sentinels know no master"."""

    async def discover_master(self, service_name: str) -> tuple[str, int]:
        unreachable: list[str] = []
        for position, sentinel in enumerate(self.sentinels):
            try:
                masters = await sentinel.sentinel_masters()
            except (RedisConnectionError, RedisTimeoutError):
                unreachable.append(_address(sentinel))
                continue
            state = masters.get(service_name) if isinstance(masters, dict) else None
            if state and self.check_master_state(state, service_name):
                # ask this one first next time, as redis-py does
                self.sentinels[0], self.sentinels[position] = sentinel, self.sentinels[0]
                return state["ip"], state["port"]
        if len(unreachable) == len(self.sentinels):
            raise SentinelsUnreachableError(unreachable)
        raise MasterNotFoundError(f"the sentinels know no healthy master for {service_name!r} (a failover under way?)")


def _address(sentinel: Any) -> str:
    kwargs = sentinel.connection_pool.connection_kwargs
    return f"{kwargs.get('host')}:{kwargs.get('port')}"


class RediscoveringSentinelConnection(SentinelManagedConnection):
    """Reconnects to whatever the sentinels name as master now, not where it was connected before."""

    async def connect_check_health(self, check_health: bool = True, retry_socket_connect: bool = True) -> None:
        if not self.is_connected and self.connection_pool.is_master:
            self.host, self.port = await self.connection_pool.get_master_address()
        # one attempt per call: the caller's retry loop comes back here and asks the sentinels again
        await super().connect_check_health(check_health=check_health, retry_socket_connect=False)
