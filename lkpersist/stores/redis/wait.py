"""Opt-in synchronous replication for session writes: ``?wait_replicas=N&wait_timeout_ms=T``.

Redis replicates asynchronously: a write is acknowledged by the master before any replica has it, so
when Sentinel promotes a replica after the master dies, the writes of the last moments (typically a few
milliseconds, at worst everything since the replica fell behind) are gone — a reconnect counted, a turn
recorded, a greeting claimed. With ``wait_replicas`` each session write is followed, on the same
connection and in the same round trip, by ``WAIT N T``: the call returns once N replicas have
acknowledged it, or after T milliseconds. That narrows the window (a promoted replica that acknowledged
holds the write) at the cost of a replica round trip on every write; it is still not a guarantee
(Redis' WAIT does not make a master refuse writes, and a failover may pick a replica that did not
acknowledge). When fewer than N replicas acknowledge in time the write has still happened on the
master: the operation succeeds, a warning is logged and ``shortfalls`` counts it (raising would invite
a retry that applies the write twice). Reads never wait. Not available on Redis Cluster, whose pipeline
cannot send the keyless WAIT on the connection that made the write.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lkpersist.logsafe import get_logger

logger = get_logger("lkpersist.redis")

DEFAULT_WAIT_TIMEOUT_MS = 100


@dataclass
class ReplicaWait:
    """Follow each write with WAIT ``replicas`` ``timeout_ms`` and count the writes that fell short."""

    replicas: int
    timeout_ms: int = DEFAULT_WAIT_TIMEOUT_MS
    shortfalls: int = 0

    async def evalsha(self, client: Any, sha: str, keys: Sequence[bytes], argv: Sequence[Any]) -> Any:
        """EVALSHA then WAIT in one pipeline (one connection, one round trip); the script's reply."""
        async with client.pipeline(transaction=False) as pipe:
            pipe.execute_command("EVALSHA", sha, len(keys), *keys, *argv)
            pipe.execute_command("WAIT", self.replicas, self.timeout_ms)
            reply, acknowledged = await pipe.execute()
        if int(acknowledged) < self.replicas:
            self.shortfalls += 1
            logger.warning(
                "write acknowledged by %d of %d replicas within %d ms", acknowledged, self.replicas, self.timeout_ms
            )
        return reply
