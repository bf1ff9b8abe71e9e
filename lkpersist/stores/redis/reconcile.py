"""``RedisStore.apply_offline``: merge an outage's journal into one identity, atomically, by compare-and-set.

Reconciliation is rare (once per identity after an outage) and its rule (:func:`reconcile`) needs the
turns' timestamps, which live inside codec-encoded payloads that Lua must never decode. So it runs as an
optimistic transaction built from two scripts on the identity's keys (one hash slot, so Redis Cluster
is fine): ``READ_STATE`` returns the record, its turns and a digest of all of it; Python merges; then
``WRITE_STATE`` replaces the record only if the digest is unchanged, else the merge starts again. The
per-operation scripts in ``lua`` are untouched.
"""

from __future__ import annotations

import hashlib
import weakref
from dataclasses import dataclass
from typing import Any

from redis.commands.core import AsyncScript

from lkpersist.clock import to_ms
from lkpersist.crypto.codec import ValueCodec
from lkpersist.exceptions import StoreUnavailableError
from lkpersist.model.analytics import offline_tally
from lkpersist.model.events import SessionEvent
from lkpersist.model.reconcile import OfflineDelta, Reconciled, reconcile
from lkpersist.model.session import Session, Turn
from lkpersist.stores.redis.analytics import TALLY_OFFLINE, RedisAnalytics
from lkpersist.stores.redis.context import RedisContext
from lkpersist.stores.redis.lua import PUBLISH_EVENT, READ_RECORD
from lkpersist.stores.redis.records import (
    device_hash_fields,
    frame_turn,
    json_hash_fields,
    session_from_reply,
    session_hash_fields,
    turns_from_frames,
)

EMPTY_DIGEST = hashlib.sha1(b"0:0:0:").hexdigest()
"""What ``_DIGEST`` computes for an identity that holds nothing (three empty hashes, no turns)."""
MAX_ATTEMPTS = 50
"""Compare-and-set rounds before giving up; each lost round means another writer changed the identity."""

# A digest of the identity's record, metadata, context (fields sorted: hash order is not stable) and
# turns, every string length-prefixed so that different states never serialise alike.
_DIGEST = """
local function lp(s) return #s .. ':' .. s end
local function digest()
  local parts = {}
  for k = 1, 3 do
    local flat, fields = redis.call('HGETALL', KEYS[k]), {}
    for i = 1, #flat, 2 do fields[#fields + 1] = lp(flat[i]) .. lp(flat[i + 1]) end
    table.sort(fields)
    parts[#parts + 1] = lp(table.concat(fields))
  end
  for _, frame in ipairs(redis.call('LRANGE', KEYS[4], 0, -1)) do parts[#parts + 1] = lp(frame) end
  return redis.sha1hex(table.concat(parts))
end
"""

# read state. KEYS 1..8 as every per-identity script (see lua.py); ARGV[1..3] member, now, grace
# (unused). Returns {digest, session flat, metadata flat, context flat, turn frames oldest first}:
# lua.READ_RECORD's reply with the digest in front.
READ_STATE = _DIGEST + "local record = (function()\n" + READ_RECORD + """end)()
table.insert(record, 1, digest())
return record
"""

# write one record (the body of WRITE_STATE and WRITE_IF_ABSENT): write_record(k, at, member, now, grace,
# channel) replaces the record whose eight keys are KEYS[k + 1 .. k + 8] (in script_call's order) from
# ARGV[at] on: the new deadline ms ('' to leave no session), last_seen ms, then seven counted sections (a
# count, then that many strings): session fields flat, metadata flat, context flat, turn frames, item
# ids, devices flat, and the merge's events as (kind, time ms, reconnect count) triples, published on
# channel. The record's six keys are deleted first unless ``absent`` says none exists; a key whose
# section is empty is then left absent (nothing to expire). Returns the ARGV index after the record;
# skip_record(at) returns it without writing.
_WRITE_RECORD = """
local RECORD_COMMANDS, RECORD_TARGETS = {'HSET', 'HSET', 'HSET', 'RPUSH', 'SADD', 'HSET'}, {1, 2, 3, 4, 5, 8}
local function write_record(k, at, member, now, grace, channel, absent)
  local deadline, last_seen = ARGV[at], ARGV[at + 1]
  at = at + 2
  local starts, counts = {}, {}  -- where each section's strings are in ARGV: handed on by unpack, never copied
  for s = 1, 7 do
    local n = tonumber(ARGV[at])
    starts[s], counts[s] = at + 1, n
    at = at + n + 1
  end
  for i = starts[7], starts[7] + counts[7] - 1, 3 do
    publish_event(channel, ARGV[i], member, tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2]))
  end
  if not absent then redis.call('DEL', KEYS[k + 1], KEYS[k + 2], KEYS[k + 3], KEYS[k + 4], KEYS[k + 5], KEYS[k + 8]) end
  if deadline == '' then
    redis.call('ZREM', KEYS[k + 6], member)
    redis.call('ZREM', KEYS[k + 7], member)
    return at
  end
  local ttl = string.format('%d', math.max(tonumber(deadline) - now, 0) + grace)
  for s = 1, 6 do
    if counts[s] > 0 then
      local key = KEYS[k + RECORD_TARGETS[s]]
      redis.call(RECORD_COMMANDS[s], key, unpack(ARGV, starts[s], starts[s] + counts[s] - 1))
      redis.call('PEXPIRE', key, ttl)
    end
  end
  redis.call('ZADD', KEYS[k + 6], last_seen, member)
  redis.call('ZADD', KEYS[k + 7], deadline, member)
  return at
end
local function skip_record(at)
  at = at + 2
  for _ = 1, 7 do at = at + tonumber(ARGV[at]) + 1 end
  return at
end
"""

# write state. KEYS 1..8 as every per-identity script; ARGV[1..3] member, now ms, grace ms; ARGV[4] the
# digest READ_STATE returned; from ARGV[5] the record as write_record reads it; ARGV[#ARGV] the events
# channel. Returns 1 when written (and the events published), 0 when the state changed since it was read
# (the caller merges again).
# With KEYS 9..11 (an outage merged back: its day counters, day users, session counters), the seven
# arguments of tally_offline follow the record and it counts the outage in the same step.
WRITE_STATE = _DIGEST + PUBLISH_EVENT + _WRITE_RECORD + TALLY_OFFLINE + """
local member, now, grace = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
if digest() ~= ARGV[4] then return 0 end
local at = write_record(0, 5, member, now, grace, ARGV[#ARGV])
if #KEYS > 8 then
  tally_offline(KEYS[9], KEYS[10], KEYS[11], ARGV[at], tonumber(ARGV[at + 1]), ARGV[at + 2], now,
    tonumber(ARGV[at + 3]), tonumber(ARGV[at + 4]), tonumber(ARGV[at + 5]), ARGV[at + 6])
end
return 1
"""

# write if absent (import of new identities, several per call). KEYS: eight per identity, as
# script_call gives them, all in one slot on a cluster (one bucket). ARGV[1..3] now ms, grace ms, the
# events channel; then per identity its member and its record as write_record reads it. Each identity is
# written only when none of its six record keys exists (so nothing needs deleting; a stray item-id set or
# devices hash, which EMPTY_DIGEST does not cover, sends the record the read-and-decide way), without
# reading and hashing anything. Returns {1 written | 0 something stored, ...}, one
# per identity in order; each record is written whole or not at all.
WRITE_IF_ABSENT = PUBLISH_EVENT + _WRITE_RECORD + """
local now, grace, channel = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local at, written = 4, {}
for k = 0, #KEYS - 1, 8 do
  if redis.call('EXISTS', KEYS[k + 1], KEYS[k + 2], KEYS[k + 3], KEYS[k + 4], KEYS[k + 5], KEYS[k + 8]) > 0 then
    written[#written + 1] = 0
    at = skip_record(at + 1)
  else
    written[#written + 1] = 1
    at = write_record(k, at + 1, ARGV[at], now, grace, channel, true)
  end
end
return written
"""


@dataclass(frozen=True)
class _Scripts:
    read: AsyncScript
    write: AsyncScript
    write_if_absent: AsyncScript

    def all(self) -> tuple[AsyncScript, ...]:
        return self.read, self.write, self.write_if_absent


_registered: weakref.WeakKeyDictionary[Any, _Scripts] = weakref.WeakKeyDictionary()


def scripts_for(ctx: RedisContext) -> _Scripts:
    """The scripts, registered once per store (EVALSHA; ``RedisContext.run`` loads them on NOSCRIPT)."""
    scripts = _registered.get(ctx)
    if scripts is None:
        scripts = _Scripts(*(ctx.client.register_script(lua) for lua in (READ_STATE, WRITE_STATE, WRITE_IF_ABSENT)))
        _registered[ctx] = scripts
    return scripts


async def apply_offline(ctx: RedisContext, analytics: RedisAnalytics, delta: OfflineDelta) -> Session | None:
    """Read, merge, compare-and-set (counting the outage in the analytics as it writes); again from the
    read whenever another writer got in between."""
    scripts, settings = scripts_for(ctx), ctx.settings
    identity = delta.identity
    for _ in range(MAX_ATTEMPTS):
        reply = await ctx.run(scripts.read, identity)
        stored, turns = whole_from_reply(identity, reply[1:], settings.codec)
        result = reconcile(stored, turns, delta, ctx.now(), settings.ttl_policy, settings.max_turns)
        args = write_args(result, settings.codec)
        tally = offline_tally(settings.analytics, delta, stored, result.session)
        more_keys, counted = ((), ()) if tally is None else analytics.offline_part(identity, tally)
        if await ctx.run_with(scripts.write, identity, more_keys, reply[0], *args, *counted, ctx.events_channel) == 1:
            return result.session
    raise StoreUnavailableError(
        f"Redis store {ctx.display_url}: reconciling one identity lost {MAX_ATTEMPTS} races to other writers"
    )


def whole_from_reply(identity: str, reply: Any, codec: ValueCodec) -> tuple[Session | None, list[Turn]]:
    """A {session, metadata, context, devices, turn frames} reply decoded (CorruptRecordError/DecryptionError if not)."""
    stored = session_from_reply(identity, reply[0:4], codec)
    return stored, turns_from_frames(identity, reply[4], codec)


def write_args(result: Reconciled, codec: ValueCodec) -> list[Any]:
    """WRITE_STATE's ARGV from 5 on: deadline, last_seen and the seven counted sections."""
    if result.session is None:
        events = _event_args(result.events)
        return ["", "", 0, 0, 0, 0, 0, 0, len(events), *events]
    frames = [frame_turn(turn, codec) for turn in result.turns]
    item_ids = [turn.item_id for turn in result.turns if turn.item_id is not None]
    return state_args(result.session, frames, item_ids, result.events, codec)


def state_args(
    session: Session, frames: list[bytes], item_ids: list[str], events: list[SessionEvent], codec: ValueCodec
) -> list[Any]:
    """:func:`write_args` for a session whose turns are framed already (an import frames them in bulk)."""
    args: list[Any] = [to_ms(session.deadline), to_ms(session.last_seen)]
    metadata = json_hash_fields(session.metadata, codec)
    context = json_hash_fields(session.context, codec)
    devices = device_hash_fields(session.devices)
    for section in (session_hash_fields(session, codec), metadata, context, frames, item_ids, devices, _event_args(events)):
        args += [len(section), *section]
    return args


def _event_args(events: list[SessionEvent]) -> list[Any]:
    return [part for e in events for part in (e.kind, to_ms(e.time), _count_arg(e.reconnect_count))]


def _count_arg(count: int | None) -> str:
    """A reconnect count for Lua's ``tonumber``: '' (which gives nil, published as null) for none."""
    return "" if count is None else str(count)


__all__ = [
    "READ_STATE", "WRITE_IF_ABSENT", "WRITE_STATE", "apply_offline", "scripts_for", "state_args", "whole_from_reply", "write_args",
]
