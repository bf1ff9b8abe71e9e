"""The Lua scripts of the Redis backend: each mutating operation is one script, so one round trip.

Per-identity scripts share ``_PRELUDE`` and the same KEYS (see ``IdentityKeys``; the turn scripts take only the
three a turn touches, see ``_TURNS_PRELUDE``): 1 session hash, 2 metadata hash, 3 context hash, 4 turns list,
5 item-id set, 6 bucket ``seen`` index, 7 bucket ``deadline`` index; ARGV[1] is the encoded identity (the index
member), ARGV[2] the caller's clock in ms (never Redis TIME: clocks are injected so a virtual clock works),
ARGV[3] the grace added to native key TTLs. The session hash keeps integer milliseconds only and no script ever decodes or
re-encodes a JSON or codec-encoded value (Lua's cjson is lossy). The rules are those of
:mod:`lkpersist.model.lifecycle` (connect_transition and friends), restated here because they must run in Redis.
Session hash fields: j joined_at, l last_seen, r reconnect_count, c connected (0/1), e expires_at (absent while
connected), t ttl, d disconnect_count, g greeted_epoch, v schema, L language (encoded). Analytics: analytics.py.
A malformed hash raises an ``LKPCORRUPT`` error; a key of the wrong type raises Redis' ``WRONGTYPE``;
a session the client could not decode, ``LKPUNREADABLE <key id|plaintext|damaged|nokey>`` (nothing written).
Scripts that publish session events (connect, disconnect, delete, purge; see ``events.py`` here and
:mod:`lkpersist.model.events` for the rule) take the events channel as their LAST argument, ``ARGV[#ARGV]``.
"""

from __future__ import annotations

from lkpersist.stores.redis.analytics import TALLY_CONNECT, TALLY_TURN

CORRUPT_MARKER = "LKPCORRUPT"
UNREADABLE_MARKER = "LKPUNREADABLE"

# publish_event(channel, kind, member, t ms, reconnect_count or nil): one session event as a small JSON
# object built without cjson (format in events.py), PUBLISHed in the script that made the change.
PUBLISH_EVENT = """
local function publish_event(channel, kind, id, t, r)
  local count = 'null'
  if r then count = string.format('%d', r) end
  redis.call('PUBLISH', channel, '{"kind":"' .. kind .. '","id":"' .. id .. '","t":' ..
    string.format('%d', t) .. ',"r":' .. count .. '}')
end
"""

_PRELUDE = PUBLISH_EVENT + """
local member, now, grace = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])

local function int(x) return string.format('%d', x) end

-- The session hash, or nil when there is none. s.raw: its fields as stored, in the order of
-- records.SESSION_FIELDS (false where absent); s.l, s.t ... the numbers the rules need.
local function load()
  local f = redis.call('HMGET', KEYS[1], 'j', 'l', 'r', 'c', 't', 'd', 'g', 'v', 'L', 'e')
  if not f[2] and redis.call('EXISTS', KEYS[1]) == 0 then return nil end
  local s = {raw = f, c = f[4], L = f[9], l = tonumber(f[2]), r = tonumber(f[3]), t = tonumber(f[5]),
    d = tonumber(f[6]), g = tonumber(f[7]), e = tonumber(f[10])}
  if not (s.l and s.t and s.r and s.d and s.g) or (f[10] and not s.e) then
    error({err = 'LKPCORRUPT session hash has missing or non-numeric fields'})
  end
  return s
end

local function deadline(s)
  if s.c == '1' or not s.e then return s.l + s.t end
  return s.e
end

local function live()
  local s = load()
  if s and now < deadline(s) then return s end
  return nil
end

local function expire(first, last, dl)
  local ttl = int(math.max(dl - now, 0) + grace)
  for i = first, last do redis.call('PEXPIRE', KEYS[i], ttl) end
end

-- Refuse, before anything is written, a session whose personal values (s.L, the metadata hash m and
-- context hash x, flat) this client could not decode: encrypted under a key id not in the comma-separated
-- `kids`, or plaintext when `plain_ok` is '0'; '*' accepts everything (a codec that does not encrypt).
-- Only the `enc:v1:<kid>:` header is read: nothing is decrypted here (see crypto.readable_forms).
local function check_readable(plain_ok, kids, s, m, x)
  if plain_ok == '*' then return end
  local known = ',' .. kids .. ','
  local function check(value)
    if string.match(value, '^enc:v%d+:') then
      local kid = string.match(value, '^enc:v1:(%x%x%x%x%x%x%x%x):')
      if kids == '' then error({err = 'LKPUNREADABLE nokey'}) end
      if not kid or not string.find(known, ',' .. kid .. ',', 1, true) then
        error({err = 'LKPUNREADABLE ' .. (kid or 'damaged')})
      end
    elseif plain_ok ~= '1' then
      error({err = 'LKPUNREADABLE plaintext'})
    end
  end
  if s.L then check(s.L) end
  for i = 2, #m, 2 do check(m[i]) end
  for i = 2, #x, 2 do check(x[i]) end
end

local function reindex(last_seen, dl)
  redis.call('ZADD', KEYS[6], int(last_seen), member)
  redis.call('ZADD', KEYS[7], int(dl), member)
  expire(1, 5, dl)
end
"""

# connect. ARGV[4..6] ttl ms for first / returning / frequent, ARGV[7] frequent_after, ARGV[8] schema,
# ARGV[9] presence timeout ms (a connected session not refreshed that long counts as having left),
# ARGV[10..11] what the client can decode (check_readable: a returning session it could not read is
# refused before it is touched); KEYS[8..10] and the three ARGV before the channel: tally_connect's (analytics.py).
# Returns {returning 0/1, was_connected 0/1, session fields, metadata flat, context flat}: the session hash as it
# now is, its values in SESSION_FIELDS order (nil where absent), built from what was read and written.
CONNECT = _PRELUDE + TALLY_CONNECT + """
local function ttl_for(count)
  if count <= 0 then return tonumber(ARGV[4]) end
  if count < tonumber(ARGV[7]) then return tonumber(ARGV[5]) end
  return tonumber(ARGV[6])
end
local s = load()
local returning, was_connected, ttl = 0, 0, ttl_for(0)
local m, x, f = {}, {}, nil
local channel = ARGV[#ARGV]
if s == nil or now >= deadline(s) then
  if s then publish_event(channel, 'expired', member, now, s.r)
  elseif redis.call('ZSCORE', KEYS[7], member) then publish_event(channel, 'expired', member, now, nil) end
  redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5])
  f = {int(now), int(now), '0', '1', int(ttl), '0', '-1', ARGV[8], false, false}
  redis.call('HSET', KEYS[1], 'j', f[1], 'l', f[2], 'r', f[3], 'c', f[4], 't', f[5], 'd', f[6], 'g', f[7], 'v', f[8])
else
  m, x = redis.call('HGETALL', KEYS[2]), redis.call('HGETALL', KEYS[3])
  check_readable(ARGV[10], ARGV[11], s, m, x)
  returning = 1
  ttl = ttl_for(s.r + 1)
  f = s.raw
  if s.c == '1' and now - s.l >= tonumber(ARGV[9]) then
    f[6] = int(s.d + 1)
    redis.call('HSET', KEYS[1], 'd', f[6])
  elseif s.c == '1' then
    was_connected = 1
  end
  f[2], f[3], f[4], f[5] = int(now), int(s.r + 1), '1', int(ttl)
  redis.call('HSET', KEYS[1], 'l', f[2], 'r', f[3], 'c', f[4], 't', f[5])
  if s.e then redis.call('HDEL', KEYS[1], 'e') end
  f[10] = false
end
reindex(now, now + ttl)
if returning == 1 then publish_event(channel, 'returned', member, now, s.r + 1)
else publish_event(channel, 'created', member, now, 0) end
tally_connect(KEYS[8], KEYS[9], KEYS[10], ARGV[#ARGV - 3], tonumber(ARGV[#ARGV - 2]), ARGV[#ARGV - 1], now, returning, f[1])
return {returning, was_connected, f, m, x}
"""

# disconnect. ARGV[4..5] what the client can decode (check_readable). Returns nil when there is no
# live session, else {session, metadata, context} flat.
DISCONNECT = _PRELUDE + """
local s = live()
if not s then return false end
local m, x = redis.call('HGETALL', KEYS[2]), redis.call('HGETALL', KEYS[3])
check_readable(ARGV[4], ARGV[5], s, m, x)
local expires = now + s.t
redis.call('HSET', KEYS[1], 'c', '0', 'l', int(now), 'e', int(expires), 'd', int(s.d + 1))
reindex(now, expires)
publish_event(ARGV[#ARGV], 'disconnected', member, now, s.r)
return {redis.call('HGETALL', KEYS[1]), m, x}
"""

# heartbeat. Returns 1, or 0 when there is no live session.
HEARTBEAT = _PRELUDE + """
local s = live()
if not s then return 0 end
redis.call('HSET', KEYS[1], 'l', int(now), 'c', '1')
if s.e then redis.call('HDEL', KEYS[1], 'e') end
reindex(now, now + s.t)
return 1
"""

# claim_greeting. Returns 1 for the one caller that takes this visit's greeting, else 0.
CLAIM_GREETING = _PRELUDE + """
local s = live()
if not s or s.g >= s.d then return 0 end
redis.call('HSET', KEYS[1], 'g', int(s.d))
return 1
"""

# update. ARGV[4] '1' to set language to ARGV[5]; ARGV[6..7] what the client can decode
# (check_readable); then quads from ARGV[8]: KEYS index (2 metadata, 3 context), op ('s' set /
# 'd' delete), field, encoded value. Returns nil when not live, else the {session, metadata, context}
# flat after the merge.
UPDATE = _PRELUDE + """
local s = live()
if not s then return false end
check_readable(ARGV[6], ARGV[7], s, redis.call('HGETALL', KEYS[2]), redis.call('HGETALL', KEYS[3]))
if ARGV[4] == '1' then redis.call('HSET', KEYS[1], 'L', ARGV[5]) end
for i = 8, #ARGV, 4 do
  local key = KEYS[tonumber(ARGV[i])]
  if ARGV[i + 1] == 's' then redis.call('HSET', key, ARGV[i + 2], ARGV[i + 3])
  else redis.call('HDEL', key, ARGV[i + 2]) end
end
expire(2, 3, deadline(s))
return {redis.call('HGETALL', KEYS[1]), redis.call('HGETALL', KEYS[2]), redis.call('HGETALL', KEYS[3])}
"""

# The turn scripts (append_turn, recent_turns) take only what a turn touches: KEYS 1 session hash, 2 turns
# list, 3 item-id set; ARGV 1 now ms, 2 grace ms. live_deadline() is _PRELUDE's load() and deadline()
# over the fields liveness needs (l, t, c, e): the session's deadline when it is live, else nil; a hash
# without a numeric l and t, or with a non-numeric e, raises LKPCORRUPT.
_TURNS_PRELUDE = """
local now = tonumber(ARGV[1])
local function live_deadline()
  local f = redis.call('HMGET', KEYS[1], 'l', 't', 'c', 'e')
  if not f[1] and redis.call('EXISTS', KEYS[1]) == 0 then return nil end
  local last, ttl, expires = tonumber(f[1]), tonumber(f[2]), tonumber(f[4])
  if not (last and ttl) or (f[4] and not expires) then
    error({err = 'LKPCORRUPT session hash has missing or non-numeric fields'})
  end
  if f[3] == '1' or not expires then expires = last + ttl end
  if now < expires then return expires end
  return nil
end
"""

# append_turn. ARGV[3] max turns, ARGV[4] '1' when the turn has an item id ARGV[5], ARGV[6] the framed
# turn ("<id byte length>:<id><payload>", or "-:<payload>" without id); KEYS[4..5], ARGV[7..8] tally_turn's
# (analytics.py). Returns 1 stored, 0 duplicate item id, -1 no live session. Trimmed turns release their item ids.
APPEND_TURN = _TURNS_PRELUDE + TALLY_TURN + """
local deadline = live_deadline()
if not deadline then return -1 end
if ARGV[4] == '1' and redis.call('SADD', KEYS[3], ARGV[5]) == 0 then return 0 end
local excess = redis.call('RPUSH', KEYS[2], ARGV[6]) - tonumber(ARGV[3])
if excess > 0 then
  for _, frame in ipairs(redis.call('LPOP', KEYS[2], excess)) do
    local colon = string.find(frame, ':', 1, true)
    local size = colon and tonumber(string.sub(frame, 1, colon - 1))
    if size then redis.call('SREM', KEYS[3], string.sub(frame, colon + 1, colon + size)) end
  end
end
local ttl = string.format('%d', math.max(deadline - now, 0) + tonumber(ARGV[2]))
redis.call('PEXPIRE', KEYS[2], ttl)
redis.call('PEXPIRE', KEYS[3], ttl)
tally_turn(KEYS[4], KEYS[5], tonumber(ARGV[7]), ARGV[8], now)
return 1
"""

# recent_turns. ARGV[3] how many of the newest (0: all). Returns the frames, oldest first; none when
# there is no session or it is not live.
RECENT_TURNS = _TURNS_PRELUDE + """
if not live_deadline() then return {} end
local limit = tonumber(ARGV[3])
if limit > 0 then return redis.call('LRANGE', KEYS[2], -limit, -1) end
return redis.call('LRANGE', KEYS[2], 0, -1)
"""

# read (get, list). KEYS as above, no ARGV. Returns {session, metadata, context} flat, live or not, and
# the number of stored turns; the client decides liveness so that listing can show expired sessions too.
READ = """
return {redis.call('HGETALL', KEYS[1]), redis.call('HGETALL', KEYS[2]), redis.call('HGETALL', KEYS[3]),
  redis.call('LLEN', KEYS[4])}
"""

# read record (export). KEYS as above, no ARGV. Returns {session, metadata, context} flat and the turn
# frames oldest first: one whole record in one snapshot, live or not.
READ_RECORD = """
return {redis.call('HGETALL', KEYS[1]), redis.call('HGETALL', KEYS[2]), redis.call('HGETALL', KEYS[3]),
  redis.call('LRANGE', KEYS[4], 0, -1)}
"""

# sum of lengths (census). KEYS: turn lists of one bucket's sampled sessions (one hash slot), no ARGV.
# Returns the sum of their lengths (a missing list counts 0): one call per bucket instead of one per list.
SUM_LENGTHS = """
local total = 0
for _, key in ipairs(KEYS) do total = total + redis.call('LLEN', key) end
return total
"""

# delete. KEYS as above, ARGV[1] the member, ARGV[2] now ms, ARGV[#ARGV] the events channel. Returns 1
# when a session record existed (of any shape).
DELETE = PUBLISH_EVENT + """
local existed = redis.call('EXISTS', KEYS[1])
local count = tonumber(redis.pcall('HGET', KEYS[1], 'r'))
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5])
redis.call('ZREM', KEYS[6], ARGV[1])
redis.call('ZREM', KEYS[7], ARGV[1])
if existed == 1 then publish_event(ARGV[#ARGV], 'deleted', ARGV[1], tonumber(ARGV[2]), count) end
return existed
"""

# list scan, one bucket. KEYS: 1 seen index, 2 deadline index. ARGV: 1 now ms, 2 status (all, active, expired),
# 3 how many matches to return at most, 4 how many entries to examine at most, 5 resume after this last_seen
# score ('' from the top), 6 and this member. Order: last_seen desc, member desc (Redis' reverse order).
# Returns {matches flat (member, score, ...), exhausted 0/1, last examined score, last examined member}; the
# caller resumes from the last examined entry. Expired entries sit behind every newer active one, so 'expired'
# starts past the entries last seen after the newest expired deadline: they are all active, because no session
# is last seen after its deadline (every write indexes last_seen t with deadline t + ttl; see listing.py).
# With half of a million sessions live that jump skips them all in two O(log n) calls instead of walking them.
LIST_SCAN = """
local seen, deadlines = KEYS[1], KEYS[2]
local now, status, want, budget = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local function position(score, id)
  local current = redis.call('ZSCORE', seen, id)
  if current and tonumber(current) == tonumber(score) then return redis.call('ZREVRANK', seen, id) + 1 end
  local start = redis.call('ZCOUNT', seen, '(' .. score, '+inf')
  for _, other in ipairs(redis.call('ZRANGE', seen, score, score, 'BYSCORE', 'REV')) do
    if other >= id then start = start + 1 else break end
  end
  return start
end
local start = 0
if ARGV[5] ~= '' then start = position(ARGV[5], ARGV[6]) end
local out, scanned, last_score, last_id = {}, 0, ARGV[5], ARGV[6]
if status == 'expired' then
  local newest = redis.call('ZRANGE', deadlines, now, '-inf', 'BYSCORE', 'REV', 'LIMIT', 0, 1, 'WITHSCORES')
  if #newest == 0 then return {out, 1, last_score, last_id} end
  start = math.max(start, redis.call('ZCOUNT', seen, '(' .. newest[2], '+inf'))
end
while scanned < budget do
  local chunk = redis.call('ZRANGE', seen, start, start + 127, 'REV', 'WITHSCORES')
  for i = 1, #chunk, 2 do
    local id, score = chunk[i], chunk[i + 1]
    scanned, last_id, last_score = scanned + 1, id, score
    local dl = tonumber(redis.call('ZSCORE', deadlines, id))
    if status == 'all' or (dl and (now >= dl) == (status == 'expired')) then
      out[#out + 1] = id
      out[#out + 1] = score
      if #out >= 2 * want then return {out, 0, last_score, last_id} end
    end
  end
  if #chunk < 256 then return {out, 1, last_score, last_id} end
  start = start + 128
end
return {out, 0, last_score, last_id}
"""

# purge, one bucket batch. KEYS: 1 seen index, 2 deadline index, then for each candidate its session, metadata,
# context, turns and item-id keys (5 each). ARGV: 1 now ms, 2 last_seen cutoff ms ('' none), 3 '1' dry run,
# 4 '1' to leave expired sessions alone (the older-than pass after the expired pass), 5.. the candidates'
# members, last the events channel. Each candidate is RE-CHECKED against its own record at delete time, so a
# participant who just came back, or a second purge running at once, is safe. A candidate whose keys Redis
# already dropped (native TTL) is judged by its index scores; one whose record is malformed is left alone.
# Each removal publishes ``expired`` (or ``purged`` when it had not expired). Returns {purged (or would
# purge), left alone as malformed}.
PURGE = PUBLISH_EVENT + """
local now, cutoff = tonumber(ARGV[1]), tonumber(ARGV[2])
local dry, keep_expired = ARGV[3] == '1', ARGV[4] == '1'
local purged, malformed, doomed, channel = 0, 0, {}, ARGV[#ARGV]
for i = 5, #ARGV - 1 do
  local member, base = ARGV[i], 2 + (i - 5) * 5
  local f = redis.pcall('HMGET', KEYS[base + 1], 'l', 't', 'c', 'e', 'r')
  local last, dl
  if f.err then
    malformed = malformed + 1
  elseif f[1] or f[2] or f[3] or f[4] then
    last = tonumber(f[1])
    local ttl = tonumber(f[2])
    if last and ttl then
      if f[3] == '1' or not f[4] then dl = last + ttl else dl = tonumber(f[4]) end
    end
    if not dl then malformed = malformed + 1 end
  else
    last = tonumber(redis.call('ZSCORE', KEYS[1], member))
    dl = tonumber(redis.call('ZSCORE', KEYS[2], member))
  end
  if last and dl then
    local expired = now >= dl
    if (expired and not keep_expired) or (cutoff and last < cutoff and not expired) then
      purged = purged + 1
      if not dry then
        redis.call('DEL', KEYS[base + 1], KEYS[base + 2], KEYS[base + 3], KEYS[base + 4], KEYS[base + 5])
        doomed[#doomed + 1] = member
        publish_event(channel, expired and 'expired' or 'purged', member, now, tonumber(f[5]))
      end
    end
  end
end
if #doomed > 0 then
  redis.call('ZREM', KEYS[1], unpack(doomed))
  redis.call('ZREM', KEYS[2], unpack(doomed))
end
return {purged, malformed}
"""

# compact_turns. ARGV[4] how many of the oldest turns the summary covers, ARGV[5] the item id of the
# first of them, ARGV[6] of the last, ARGV[7] the context field of the summary, ARGV[8] the encoded
# summary, ARGV[9..10] what the client can decode (check_readable). Only while those turns are still
# exactly the oldest: drops them (and releases their item ids) and sets the summary. Returns 1 done,
# 0 they are not the oldest any more (nothing written), -1 no live session.
COMPACT_TURNS = _PRELUDE + """
local s = live()
if not s then return -1 end
local count = tonumber(ARGV[4])
local covered = redis.call('LRANGE', KEYS[4], 0, count - 1)
local function item_id(frame)
  local colon = string.find(frame, ':', 1, true)
  local size = colon and tonumber(string.sub(frame, 1, colon - 1))
  if size then return string.sub(frame, colon + 1, colon + size) end
  return nil
end
if #covered ~= count or item_id(covered[1]) ~= ARGV[5] or item_id(covered[count]) ~= ARGV[6] then return 0 end
check_readable(ARGV[9], ARGV[10], s, redis.call('HGETALL', KEYS[2]), redis.call('HGETALL', KEYS[3]))
redis.call('LTRIM', KEYS[4], count, -1)
for _, frame in ipairs(covered) do
  local id = item_id(frame)
  if id then redis.call('SREM', KEYS[5], id) end
end
redis.call('HSET', KEYS[3], ARGV[7], ARGV[8])
expire(2, 5, deadline(s))
return 1
"""
