"""Named locks for the Redis backends (semantics in :mod:`lkpersist.stores.locks`).

One hash per lock, ``<prefix>:lock:<name>`` (``KeyLayout.lock_key``): ``o`` the holder's token, ``e`` the
expiry in store-clock milliseconds. Acquire, release (compare-and-delete) and extend are each one Lua
script on that one key, so they are atomic on plain Redis, Sentinel and Cluster alike. Expiry is judged
against the caller's clock (passed in, as for sessions); Redis also drops the key by itself
``NATIVE_GRACE`` seconds after the ttl, so an abandoned lock never lingers.
"""

from __future__ import annotations

from typing import Any

from redis.commands.core import AsyncScript

from lkpersist.clock import to_ms
from lkpersist.stores.locks import new_token
from lkpersist.stores.redis.errors import translated
from lkpersist.stores.redis.keys import KeyLayout

NATIVE_GRACE = 60.0

# acquire. KEYS[1] the lock hash. ARGV: 1 new token, 2 now ms, 3 ttl ms, 4 native grace ms.
# Returns 1 when taken (free, or expired and taken over), 0 when a live holder has it.
ACQUIRE = """
local now, ttl = tonumber(ARGV[2]), tonumber(ARGV[3])
local expires = tonumber(redis.call('HGET', KEYS[1], 'e'))
if expires and now < expires then return 0 end
redis.call('HSET', KEYS[1], 'o', ARGV[1], 'e', string.format('%d', now + ttl))
redis.call('PEXPIRE', KEYS[1], string.format('%d', ttl + tonumber(ARGV[4])))
return 1
"""

# release. KEYS[1] the lock hash. ARGV: 1 token, 2 now ms. Deletes the lock only when it holds this token.
# Returns 1 when it did and the lock had not expired yet, else 0.
RELEASE = """
local held = redis.call('HMGET', KEYS[1], 'o', 'e')
if held[1] ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
local expires = tonumber(held[2])
if expires and tonumber(ARGV[2]) < expires then return 1 end
return 0
"""

# extend. KEYS[1] the lock hash. ARGV: 1 token, 2 now ms, 3 ttl ms, 4 native grace ms.
# Returns 1 when this token held the lock unexpired and its expiry is now + ttl, else 0.
EXTEND = """
local now, ttl = tonumber(ARGV[2]), tonumber(ARGV[3])
local held = redis.call('HMGET', KEYS[1], 'o', 'e')
local expires = tonumber(held[2])
if held[1] ~= ARGV[1] or not expires or now >= expires then return 0 end
redis.call('HSET', KEYS[1], 'e', string.format('%d', now + ttl))
redis.call('PEXPIRE', KEYS[1], string.format('%d', ttl + tonumber(ARGV[4])))
return 1
"""


class RedisLocks:
    """The three lock scripts, registered once per client."""

    def __init__(self, client: Any, keys: KeyLayout, where: str) -> None:
        self._keys, self._where = keys, where
        self._acquire: AsyncScript = client.register_script(ACQUIRE)
        self._release: AsyncScript = client.register_script(RELEASE)
        self._extend: AsyncScript = client.register_script(EXTEND)
        self._grace = to_ms(NATIVE_GRACE)

    async def acquire(self, name: str, ttl: float, now: float) -> str | None:
        token = new_token()
        taken = await self._call(self._acquire, name, token, to_ms(now), to_ms(ttl), self._grace)
        return token if taken == 1 else None

    async def release(self, name: str, token: str, now: float) -> bool:
        return bool(await self._call(self._release, name, token, to_ms(now)) == 1)

    async def extend(self, name: str, token: str, ttl: float, now: float) -> bool:
        return bool(await self._call(self._extend, name, token, to_ms(now), to_ms(ttl), self._grace) == 1)

    async def _call(self, script: AsyncScript, name: str, *args: Any) -> Any:
        with translated(self._where):
            return await script(keys=[self._keys.lock_key(name)], args=list(args))
