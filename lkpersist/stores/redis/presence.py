"""Presence on Redis: arrive, leave, beat and claim_greeting, each one Lua script (one round trip).

The rules are :mod:`lkpersist.model.presence` (``arrive_transition`` and friends), restated in Lua because
they must run inside Redis: connections are ``c:<id>`` fields of the session hash (``<since ms>,<beat ms>``),
so an arrival reads and writes one hash, its metadata and context, and the bucket's two index entries;
the devices hash is touched only when a device is given or the session has recorded one. Every write
drops the stale connections it sees (``settle``), so a worker SIGKILLed without a leave stops holding the
visit once ``presence_timeout`` passes; its session's deadline index entry (last beat + ttl) is what the
expired listing, count and purge see meanwhile.

Arrive's reply is built for a cheap decode: integers as Lua numbers (no string parsing in Python), no
field names, and only what the Arrival needs (:func:`~lkpersist.stores.redis.records.session_from_values`).
"""

from __future__ import annotations

from typing import Any

from redis.asyncio.cluster import RedisCluster
from redis.commands.core import AsyncScript

from lkpersist.clock import to_ms
from lkpersist.model.presence import DUPLICATE_IDENTITY, MAX_DEVICES, ArrivalRequest
from lkpersist.model.results import Arrival
from lkpersist.model.session import SCHEMA_VERSION, Session
from lkpersist.stores.redis.analytics import TALLY_CONNECT, RedisAnalytics
from lkpersist.stores.redis.context import RedisContext
from lkpersist.stores.redis.lua import PRELUDE
from lkpersist.stores.redis.pipeline import Coalescer
from lkpersist.stores.redis.readable import readable_args
from lkpersist.stores.redis.records import session_from_values, turns_from_frames

ARRIVAL_BATCH = 16
"""Most arrivals one call of the batch script carries (see ``Coalescer``): 64 concurrent arrivals as four
calls ran at about twice the throughput of one call of 64 (client and Redis overlap); 8 and 32 measured
about the same as 16, so the batch stays short enough that Redis is never held long by one call."""

# The presence helpers every presence script shares, after PRELUDE. ARGV from 4 on is the script's own.
# The store's constants are Lua literals before the script (``presence_script``: each store registers
# its own copies, one SHA per settings, so no call packs or parses them): ttl_first / ttl_returning /
# ttl_frequent ms, frequent_after, schema (version, a string), max_devices, timeout (presence, ms),
# switch_grace ms, plain_ok and kids (what the client can decode: check_readable), channel (events).
#   settle(s, del, keep): drop the stale connections (their fields go to `del`, but for connection `keep`'s,
#     which the caller writes again); with none live left, the visit ended at last_seen (c 0, e = l + t).
#     Returns the number of live connections.
#   save(s, set, del): one HDEL and one HSET of the hash, plus
#     what a legacy hash needs to be stored in the new form (G, its live connection '-', no d and g).
#   values(s): the session as the client builds it: {j, l, r, connected 0/1, t, G, v, e, w, L,
#     connections flat (id, 'since,beat', ...)}, false where absent.
#   devices(s): the devices hash flat, or {} when the session never recorded one (no read).
_PRESENCE = PRELUDE + """

local function settle(s, del, keep)
  local n = 0
  for id, c in pairs(s.conns) do
    if now - c[2] > timeout then
      s.conns[id] = nil
      if id ~= keep then del[#del + 1] = 'c:' .. id end
    else
      n = n + 1
    end
  end
  if n == 0 and s.connected then
    s.connected, s.e, s.ended = false, s.l + s.t, true
  end
  return n
end

local function save(s, set, del)
  if s.legacy then
    set[#set + 1] = 'G'
    set[#set + 1] = int(s.G)
    del[#del + 1] = 'g'
    del[#del + 1] = 'd'
    local c = s.conns['-']
    if c and not s.touched then
      set[#set + 1] = 'c:-'
      set[#set + 1] = int(c[1]) .. ',' .. int(c[2])
    end
  end
  if s.ended then
    set[#set + 1] = 'c'
    set[#set + 1] = '0'
    set[#set + 1] = 'e'
    set[#set + 1] = int(s.e)
  end
  if #del > 0 then redis.call('HDEL', KEYS[1], unpack(del)) end
  if #set > 0 then redis.call('HSET', KEYS[1], unpack(set)) end
end

local function values(s)
  local flat = {}
  for id, c in pairs(s.conns) do
    flat[#flat + 1] = id
    flat[#flat + 1] = int(c[1]) .. ',' .. int(c[2])
  end
  return {s.j, s.l, s.r, s.connected and 1 or 0, s.t, s.G, tonumber(s.f.v) or false, s.e or false, s.w or false,
    s.f.L or false, flat}
end

local function devices(s)
  if s.f.D then return redis.call('HGETALL', KEYS[8]) end
  return {}
end
"""

# arrive. ARGV[4] connection id, ARGV[5] '1' to claim the visit's greeting if owed, ARGV[6] how many of the
# newest turns to return to the caller greeting a return (0: none), ARGV[7] device id ('' none), ARGV[8]
# its label, ARGV[9..11] and KEYS[9..11] tally_connect's (analytics.py: called for an arrival that opens a
# visit). Returns {flags, values, metadata flat, context flat, devices flat, turn
# frames}; flags = 1 returning + 2 new visit + 4 greet + 8 switched.
ARRIVE = _PRESENCE + TALLY_CONNECT + """
local conn = ARGV[4]
local function ttl_for(count)
  if count <= 0 then return ttl_first end
  if count < frequent_after then return ttl_returning end
  return ttl_frequent
end
local s, m, x = load(), {}, {}
local set, del = {'c', '1'}, {}
local returning, new_visit, switched = false, false, false
if s == nil or now >= deadline(s) then
  local known = s ~= nil or redis.call('ZSCORE', KEYS[7], member)
  if known then
    publish_event(channel, 'expired', member, now, s and s.r)
    redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[8])
  end
  s = {f = {v = schema}, conns = {}, j = now, r = 0, t = ttl_for(0), G = 0, fresh = true}
  new_visit = true
  set[#set + 1], set[#set + 2], set[#set + 3], set[#set + 4] = 'j', int(now), 'v', schema
else
  m, x = redis.call('HGETALL', KEYS[2]), redis.call('HGETALL', KEYS[3])
  check_readable(plain_ok, kids, s, m, x)
  if settle(s, del, conn) == 0 then
    if s.w and now < s.w then
      switched = true
    else
      s.r = s.r + 1
      s.t = ttl_for(s.r)
      returning, new_visit = true, true
    end
  end
  s.ended = false
  if s.f.e then del[#del + 1] = 'e' end
  if s.f.w then del[#del + 1] = 'w' end
end
local c = s.conns[conn]
c = {c and c[1] or now, now}
s.conns[conn], s.touched = c, conn == '-'
s.l, s.connected, s.e, s.w = now, true, nil, nil
local greet = ARGV[5] == '1' and s.G < s.r + 1
if greet then s.G = s.r + 1 end
local kept = s.fresh and {1} or {1, 4, 5}
if #m > 0 then kept[#kept + 1] = 2 end
if #x > 0 then kept[#kept + 1] = 3 end
if ARGV[7] ~= '' then
  local old = redis.call('HGET', KEYS[8], ARGV[7])
  local first, label = now, ARGV[8]
  if old then
    local at = string.find(old, ',', 1, true)
    first = tonumber(string.sub(old, 1, at - 1)) or now
    if label == '' then label = string.sub(old, string.find(old, ',', at + 1, true) + 1) end
  end
  redis.call('HSET', KEYS[8], ARGV[7], int(first) .. ',' .. int(now) .. ',' .. label)
  if s.f.N then expire({8}, tonumber(s.f.N)) end
  local flat = redis.call('HGETALL', KEYS[8])
  if #flat > 2 * max_devices then
    local oldest, oldest_seen = nil, nil
    for i = 1, #flat, 2 do
      local seen = tonumber(string.match(flat[i + 1], '^%d+,(%d+),'))
      if flat[i] ~= ARGV[7] and (not oldest_seen or seen < oldest_seen) then oldest, oldest_seen = flat[i], seen end
    end
    redis.call('HDEL', KEYS[8], oldest)
  end
  s.f.D = '1'
  set[#set + 1], set[#set + 2] = 'D', '1'
end
if s.f.D then kept[#kept + 1] = 8 end
set[#set + 1], set[#set + 2], set[#set + 3], set[#set + 4] = 'l', int(now), 'r', int(s.r)
set[#set + 1], set[#set + 2], set[#set + 3], set[#set + 4] = 't', int(s.t), 'G', int(s.G)
set[#set + 1], set[#set + 2] = 'c:' .. conn, int(c[1]) .. ',' .. int(now)
local at, due = native(s, now + s.t, set)
save(s, set, del)
if due then expire(kept, at) end
reindex(now, now + s.t)
local turns = {}
if greet and returning and tonumber(ARGV[6]) > 0 then turns = redis.call('LRANGE', KEYS[4], -tonumber(ARGV[6]), -1) end
if returning then publish_event(channel, 'returned', member, now, s.r)
elseif new_visit then publish_event(channel, 'created', member, now, 0) end
if new_visit then
  tally_connect(KEYS[9], KEYS[10], KEYS[11], ARGV[9], tonumber(ARGV[10]), ARGV[11], now, returning and 1 or 0, int(s.j))
end
local flags = (returning and 1 or 0) + (new_visit and 2 or 0) + (greet and 4 or 0) + (switched and 8 or 0)
return {flags, values(s), m, x, devices(s), turns}
"""

# Many arrivals in one call (the Coalescer's batches off a Cluster, whose keys would span slots): ARGV[1]
# and ARGV[2] how many KEYS and ARGV each arrival has, then every arrival's KEYS (and, from ARGV[3], ARGV)
# one after the other, each as ARRIVE takes them. Each runs in its own pcall, exactly as its own ARRIVE
# would (what it wrote before failing stays written, as with one script). Returns each arrival's reply,
# or its error as an error reply in its place.
_EACH = """
local replies, nk, na = {}, tonumber(ARGV[1]), tonumber(ARGV[2])
for i = 0, #KEYS / nk - 1 do
  local keys, args = {}, {}
  for j = 1, nk do keys[j] = KEYS[i * nk + j] end
  for j = 1, na do args[j] = ARGV[2 + i * na + j] end
  local ok, reply = pcall(arrive, keys, args)
  if ok then replies[#replies + 1] = reply
  elseif type(reply) == 'table' and reply.err then replies[#replies + 1] = {err = reply.err}
  else replies[#replies + 1] = {err = 'ERR ' .. tostring(reply)} end
end
return replies
"""


def each_arrival(body: str) -> str:
    """The script running many arrivals of ``body`` (ARRIVE, or a variant of it) in one call (``_EACH``)."""
    return f"local function arrive(KEYS, ARGV)\n{body}\nend\n{_EACH}"


# leave. ARGV[4] connection id, ARGV[5] '1' when LiveKit gave duplicate_identity (a device switch may
# follow). Returns false when there is no live session, else {values, metadata flat,
# context flat, devices flat} after the leave.
LEAVE = _PRESENCE + """
local s = live()
if not s then return false end
local m, x = redis.call('HGETALL', KEYS[2]), redis.call('HGETALL', KEYS[3])
check_readable(plain_ok, kids, s, m, x)
local set, del = {}, {}
local n = settle(s, del)
local was = s.connected
local conn = ARGV[4]
local left = s.conns[conn] ~= nil
if left then
  s.conns[conn], s.touched = nil, conn == '-'
  del[#del + 1] = 'c:' .. conn
  s.l = now
  set[#set + 1], set[#set + 2] = 'l', int(now)
  if n == 1 then
    s.connected, s.e, s.ended = false, now + s.t, true
    if ARGV[5] == '1' then
      s.w = now + switch_grace
      set[#set + 1], set[#set + 2] = 'w', int(s.w)
    end
  end
end
local at, due = false, false
if left then at, due = native(s, deadline(s), set) end
save(s, set, del)
if due then expire(RECORD_KEYS, at) end
if left then reindex(s.l, deadline(s)) end
if was and not s.connected then publish_event(channel, 'disconnected', member, now, s.r) end
return {values(s), m, x, devices(s)}
"""

# beat. ARGV[4] connection id. Returns 1, or 0 when the connection is not live (no live
# session, or it went stale: the caller arrives again).
BEAT = _PRESENCE + """
local s = live()
if not s then return 0 end
local set, del = {}, {}
settle(s, del)
local c = s.conns[ARGV[4]]
if c then
  s.touched = ARGV[4] == '-'
  set[#set + 1], set[#set + 2] = 'c:' .. ARGV[4], int(c[1]) .. ',' .. int(now)
  set[#set + 1], set[#set + 2] = 'l', int(now)
end
local at, due = false, false
if c then at, due = native(s, now + s.t, set) end
save(s, set, del)
if not c then return 0 end
if due then expire(RECORD_KEYS, at) end
reindex(now, now + s.t)
return 1
"""

# claim_greeting. No ARGV of its own. Returns 1 for the one caller that takes
# this visit's greeting (a live connection must hold the visit), else 0.
CLAIM_GREETING = _PRESENCE + """
local s = live()
if not s then return 0 end
local set, del = {}, {}
settle(s, del)
local owed = s.connected and s.G < s.r + 1
if owed then
  s.G = s.r + 1
  if not s.legacy then set[#set + 1], set[#set + 2] = 'G', int(s.G) end
end
save(s, set, del)
return owed and 1 or 0
"""


_CONSTANT_NAMES = ("ttl_first", "ttl_returning", "ttl_frequent", "frequent_after", "schema", "max_devices",
                   "timeout", "switch_grace", "plain_ok", "kids", "channel")
_STRING_CONSTANTS = frozenset(("schema", "plain_ok", "kids", "channel"))
_SAFE = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:._-"
_LUA_CHARS = [chr(byte) if chr(byte) in _SAFE else f"\\{byte:03d}" for byte in range(256)]
"""Each byte as it is written in a Lua string literal."""


def presence_script(body: str, constants: dict[str, int | bytes]) -> str:
    """``body`` (ARRIVE, LEAVE, BEAT or CLAIM_GREETING) with the store's ``constants`` (every name of
    ``_PRESENCE``'s list) declared before it as Lua literals; in strings every byte but a letter, digit,
    ``:``, ``.``, ``_`` or ``-`` is a decimal escape, so no value (a prefix in the channel name) can end
    the literal."""
    literals = []
    for name in _CONSTANT_NAMES:
        value = constants[name]
        if name in _STRING_CONSTANTS:
            data = value if isinstance(value, bytes) else b"%d" % value
            literals.append('"' + "".join(_LUA_CHARS[byte] for byte in data) + '"')
        else:
            literals.append(str(int(value)))
    return f"local {', '.join(_CONSTANT_NAMES)} = {', '.join(literals)}\n{body}"


def store_constants(ctx: RedisContext) -> dict[str, int | bytes]:
    """The presence scripts' constants for the store behind ``ctx`` (see ``_PRESENCE``)."""
    settings = ctx.settings
    policy = settings.ttl_policy
    plain_ok, kids = readable_args(settings.codec)
    return {
        "ttl_first": to_ms(policy.first), "ttl_returning": to_ms(policy.returning),
        "ttl_frequent": to_ms(policy.frequent), "frequent_after": policy.frequent_after, "schema": SCHEMA_VERSION,
        "max_devices": MAX_DEVICES, "timeout": to_ms(policy.presence_timeout),
        "switch_grace": to_ms(settings.switch_grace), "plain_ok": plain_ok, "kids": kids,
        "channel": ctx.events_channel,
    }


class RedisPresence:
    """Runs the presence scripts for one store (its constants baked into its own copies), the replies
    decoded; arrivals made at once go out as one call of :func:`each_arrival`'s script (on a Cluster one
    pipeline), a lone one as a plain EVALSHA."""

    def __init__(self, ctx: RedisContext, analytics: RedisAnalytics, *, arrive: str = ARRIVE) -> None:
        """``arrive``: the arrive script's body (a benchmark measures a variant of it)."""
        self._ctx, self._analytics = ctx, analytics
        constants = store_constants(ctx)

        def register(body: str) -> AsyncScript:
            script: AsyncScript = ctx.client.register_script(presence_script(body, constants))
            return script

        self._arrive, self._leave, self._beat, self._claim, each = scripts = (
            register(arrive), register(LEAVE), register(BEAT), register(CLAIM_GREETING), register(each_arrival(arrive)))
        sharded = isinstance(ctx.client, RedisCluster)
        self._arrivals = Coalescer(ctx.client, self._arrive, scripts, lone_at_once=True, many=None if sharded else each,
                                   batch_size=ARRIVAL_BATCH)

    async def arrive(self, identity: str, request: ArrivalRequest) -> Arrival:
        device = request.device
        found = (b"", b"") if device is None else (device.device_id.encode("utf-8"), device.label.encode("utf-8"))
        now = self._ctx.now()
        more_keys, tally = self._analytics.connect_part(identity, now)
        args = (b"1" if request.claim else b"0", b"%d" % request.restore_turns, *found, *tally)
        reply = await self._ctx.run_coalesced(self._arrivals, identity, now, more_keys, request.connection, *args)
        flags, values, metadata, context, devices, frames = reply
        if flags & 2:  # the arrival opened a visit, so tally_connect counted it (and added the identity today)
            self._analytics.connected(identity)
        codec = self._ctx.settings.codec
        session = session_from_values(identity, values, metadata, context, devices, codec)
        turns = turns_from_frames(identity, frames, codec) if frames else []
        return Arrival(session, bool(flags & 1), bool(flags & 2), session.reconnect_count + 1, bool(flags & 4),
                       bool(flags & 8), turns)

    async def leave(self, identity: str, connection: str, reason: str | None) -> Session | None:
        switch = b"1" if reason == DUPLICATE_IDENTITY else b"0"
        reply = await self._ctx.run(self._leave, identity, connection, switch)
        return None if reply is None else self._session(identity, reply)

    async def beat(self, identity: str, connection: str) -> bool:
        return bool(await self._ctx.run(self._beat, identity, connection) == 1)

    async def claim_greeting(self, identity: str) -> bool:
        return bool(await self._ctx.run(self._claim, identity) == 1)

    def _session(self, identity: str, reply: Any) -> Session:
        values, metadata, context, devices = reply
        return session_from_values(identity, values, metadata, context, devices, self._ctx.settings.codec)


__all__ = ["ARRIVAL_BATCH", "ARRIVE", "BEAT", "CLAIM_GREETING", "LEAVE", "RedisPresence", "each_arrival", "presence_script", "store_constants"]
