"""Session events for the Redis backends: PUBLISH from inside the operation's Lua script, pub/sub to read.

The scripts that change a session's life (connect, disconnect, delete, purge; ``PUBLISH_EVENT`` in
``_redis_lua``) publish on one channel,
``<prefix>:events`` (``KeyLayout.events_channel``), in the same script call as the change, so connect
stays one round trip and an event goes out exactly when its change is made. PUBLISH from a script is
fine on Redis Cluster (classic pub/sub reaches every node) and is replicated to Sentinel replicas. An ACL
user needs the channel permission ``&<prefix>:events`` (or ``&<prefix>*``) besides ``~<prefix>*``.

Wire format (small JSON built in Lua without cjson, so no number is ever re-encoded lossily)::

    {"kind":"returned","id":"<identity, UTF-8 in unpadded base64url>","t":<store clock ms>,"r":<count|null>}

Subscribers filter by identity on their side (exactly, after decoding ``id``), so one channel serves all.
"""

from __future__ import annotations

import json
from typing import Any, cast

from lkpersist.clock import from_ms
from lkpersist.model.events import EVENT_KINDS, EventKind, SessionEvent
from lkpersist.stores.redis.context import RedisContext
from lkpersist.stores.redis.errors import translated
from lkpersist.stores.redis.keys import KeyLayout

POLL_TIMEOUT = 1.0
SUBSCRIBE_TIMEOUT = 5.0



def decode_event(data: bytes, keys: KeyLayout) -> SessionEvent | None:
    """The event in one pub/sub message; None for anything that is not one of ours (skipped)."""
    try:
        raw = json.loads(data)
        kind, count = raw["kind"], raw["r"]
        if kind not in EVENT_KINDS or not (count is None or isinstance(count, int)):
            return None
        return SessionEvent(cast(EventKind, kind), keys.decode_identity(raw["id"]), from_ms(int(raw["t"])), count)
    except (ValueError, TypeError, KeyError):
        return None


class RedisEventSource:
    """One pub/sub connection subscribed to the store's events channel."""

    def __init__(self, ctx: RedisContext) -> None:
        self._client = ctx.client
        self._keys = ctx.keys
        self._where = ctx.display_url
        self._pubsub: Any = None

    async def open(self) -> None:
        """Subscribe and wait for Redis to confirm, so that nothing published afterwards is missed."""
        with translated(self._where):
            await self._client.initialize()  # a cluster client picks the pubsub node from its slot map
            self._pubsub = self._client.pubsub()
            await self._pubsub.subscribe(self._keys.events_channel)
            message = await self._pubsub.get_message(timeout=SUBSCRIBE_TIMEOUT)
            while message is not None and message["type"] != "subscribe":
                message = await self._pubsub.get_message(timeout=SUBSCRIBE_TIMEOUT)

    async def next_batch(self) -> list[SessionEvent]:
        with translated(self._where):
            message = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=POLL_TIMEOUT)
        if message is None or message["type"] != "message":
            return []
        event = decode_event(message["data"], self._keys)
        return [] if event is None else [event]

    async def close(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            with translated(self._where):
                await pubsub.aclose()
