"""A Sentinel-managed connection that asks the sentinels for the master on every reconnect.

redis-py 8.1's ``SentinelManagedConnection`` looks the master up only in ``connect()``, which the pool
calls when it hands out a connection. A command that was in flight when the master died is retried on
the *same* connection object, which reconnects through ``connect_check_health`` to the address it
remembers: the dead master. Measured here, those operations retried against the dead port for the
whole retry budget (~9 s) and then failed, long after the other tasks had moved to the promoted
replica. Re-resolving the address whenever the connection is not connected fixes that; it costs one
sentinel query per (re)connect, never per command.
"""

from __future__ import annotations

from redis.asyncio.sentinel import SentinelManagedConnection


class RediscoveringSentinelConnection(SentinelManagedConnection):
    """Reconnects to whatever the sentinels name as master now, not where it was connected before."""

    async def connect_check_health(self, check_health: bool = True, retry_socket_connect: bool = True) -> None:
        if not self.is_connected and self.connection_pool.is_master:
            self.host, self.port = await self.connection_pool.get_master_address()
        # one attempt per call: the caller's retry loop comes back here and asks the sentinels again
        await super().connect_check_health(check_health=check_health, retry_socket_connect=False)
