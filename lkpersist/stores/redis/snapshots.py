"""Each step of a Redis export's walk (:mod:`~lkpersist.stores.redis.export`) as one pipeline: the whole
records of the members found so far, each bucket's in one snapshot, and the next ZSCANs.

On a client of one server the records are read by plain commands (:mod:`~lkpersist.stores.redis.wire`):
one MULTI/EXEC per bucket of five commands a member (HGETALL of the session, metadata, context and
devices hashes, LRANGE of the turns), and the turn frames' item-id prefixes are stripped here. That costs
Redis about 10 us a session against about 30 for the ``READ_RECORDS`` script making the same reads
(each reply turned into a Lua table and back), and the client no more (hiredis parses every reply; the
commands are packed by one ``%`` a member). A Cluster's pipeline (routed per slot) takes the script.
Both give each member's answer in one shape: (session, metadata, context, devices) as dicts, then the
turn payloads and 1, or the frames as stored and 0 when a frame has neither prefix.
"""

from __future__ import annotations

import weakref
from typing import Any

from redis.commands.core import AsyncScript
from redis.exceptions import ResponseError

from lkpersist.stores.redis import wire
from lkpersist.stores.redis.context import RedisContext
from lkpersist.stores.redis.errors import translated
from lkpersist.stores.redis.pipeline import queue_script, run_pipeline
from lkpersist.stores.redis.records import pairs

# read records (export). KEYS: five per member, as KeyLayout.read_keys gives them (session, metadata, context, turns,
# devices), all of one bucket (one slot); no ARGV. Returns, per member, {session
# flat, metadata flat, context flat, devices flat, turn payloads, 1}, the payloads being the turn frames
# without their ``<n>:<id>`` / ``-:`` item-id prefix; or {..., frames as stored, 0} when a frame has
# neither prefix.
READ_RECORDS = """
local out = {}
for i = 1, #KEYS, 5 do
  local frames, payloads = redis.call('LRANGE', KEYS[i + 3], 0, -1), {}
  for j, frame in ipairs(frames) do
    local head = string.match(frame, '^(%d+):') or string.match(frame, '^(%-):')
    if not head then payloads = nil; break end
    payloads[j] = string.sub(frame, #head + 2 + (head == '-' and 0 or tonumber(head)))
  end
  out[#out + 1] = {redis.call('HGETALL', KEYS[i]), redis.call('HGETALL', KEYS[i + 1]),
    redis.call('HGETALL', KEYS[i + 2]), redis.call('HGETALL', KEYS[i + 4]), payloads or frames, payloads and 1 or 0}
end
return out
"""
_registered: weakref.WeakKeyDictionary[Any, AsyncScript] = weakref.WeakKeyDictionary()
_unwired: weakref.WeakSet[Any] = weakref.WeakSet()
"""Clients whose connections :mod:`~lkpersist.stores.redis.wire` found it cannot read: the script for them."""

Reads = list[tuple[int, list[bytes]]]
"""Members to read, bucket by bucket."""


async def read_step(
    ctx: RedisContext, reads: Reads, scans: list[tuple[int, int]], count: int
) -> tuple[list[Any], list[Any]]:
    """One pipeline: the records of ``reads`` and the ZSCANs (about ``count`` entries) of ``scans``; each
    bucket's records as READ_RECORDS answers them, each ZSCAN as (cursor, [(member, score), ...])."""
    if wire.usable(ctx.client) and ctx.client not in _unwired:
        try:
            return await _plain_step(ctx, reads, scans, count)
        except wire.WireUnavailable:
            _unwired.add(ctx.client)
    script = _script(ctx)
    keys = ctx.keys

    def fill(pipe: Any) -> None:
        for bucket, members in reads:
            queue_script(pipe, script, keys.read_keys(bucket, members), ())
        for bucket, cursor in scans:
            pipe.zscan(keys.deadline_key(bucket), cursor, count=count)

    with translated(ctx.display_url):
        replies = await run_pipeline(ctx.client, (script,), fill)
    answers = [[(pairs(a[0]), pairs(a[1]), pairs(a[2]), pairs(a[3]), a[4], a[5]) for a in bucket]
               for bucket in replies[: len(reads)]]
    return answers, replies[len(reads):]


async def _plain_step(
    ctx: RedisContext, reads: Reads, scans: list[tuple[int, int]], count: int
) -> tuple[list[Any], list[Any]]:
    """:func:`read_step` by plain commands (:mod:`~lkpersist.stores.redis.wire`): each bucket's reads in
    one MULTI/EXEC (one snapshot, as one READ_RECORDS call), five commands a member, the turn frames'
    item-id prefixes stripped here (:func:`_payloads`)."""
    keys = ctx.keys
    packed: list[bytes] = []
    for bucket, members in reads:
        packed.append(_MULTI)
        names = iter(keys.read_keys(bucket, members))
        packed += [_MEMBER_READS % (len(session), session, len(metadata), metadata, len(context), context,
                                    len(turns), turns, len(devices), devices)
                   for session, metadata, context, turns, devices in zip(names, names, names, names, names)]
        packed.append(_EXEC)
    for bucket, cursor in scans:
        packed.append(wire.pack((b"ZSCAN", keys.deadline_key(bucket), cursor, b"COUNT", count)))
    commands = sum(2 + 5 * len(members) for _, members in reads) + len(scans)
    with translated(ctx.display_url):
        replies = await wire.run_commands(ctx.client, packed, commands)
        return _answers(reads, replies), [_scanned(reply) for reply in replies[len(replies) - len(scans):]]


_MULTI, _EXEC = b"*1\r\n$5\r\nMULTI\r\n", b"*1\r\n$4\r\nEXEC\r\n"
_HGETALL = b"*2\r\n$7\r\nHGETALL\r\n$%d\r\n%s\r\n"
_MEMBER_READS = _HGETALL * 3 + b"*4\r\n$6\r\nLRANGE\r\n$%d\r\n%s\r\n$1\r\n0\r\n$2\r\n-1\r\n" + _HGETALL
"""A member's five commands, packed (one ``%`` for all five: hiredis' packing per command cost 2 us a member):
HGETALL of its session, metadata and context, LRANGE of its turns, HGETALL of its devices."""


def _answers(reads: Reads, replies: list[Any]) -> list[Any]:
    """Each bucket's MULTI/EXEC replies as READ_RECORDS answers its members; a reply error (a key of the
    wrong type) is raised, as the script's would be."""
    answers, at = [], 0
    for _, members in reads:
        commands = 5 * len(members)
        queued, done = replies[at: at + commands + 1], replies[at + commands + 1]
        at += commands + 2
        if queued[0] != b"OK" or queued.count(b"QUEUED") != commands or type(done) is not list:
            _raise_error([*queued, done])
        if any(type(reply) is wire.ReplyError for reply in done):
            _raise_error(done)
        results = iter(done)
        bucket = []
        for session, metadata, context, frames, devices in zip(results, results, results, results, results):
            payloads = _payloads(frames)
            bucket.append((_hash(session), _hash(metadata), _hash(context), _hash(devices),
                           frames if payloads is None else payloads,
                           0 if payloads is None else 1))
        answers.append(bucket)
    return answers


def _hash(reply: Any) -> dict[bytes, bytes]:
    """An HGETALL reply as a dict: RESP3 gives one, RESP2 the fields flat."""
    return reply if type(reply) is dict else pairs(reply)


def _raise_error(replies: list[Any]) -> None:
    for reply in replies:
        if isinstance(reply, wire.ReplyError):
            raise ResponseError(str(reply))
    raise ResponseError(f"unexpected replies to an export read: {replies[:3]!r}")


def _payloads(frames: list[bytes]) -> list[bytes] | None:
    """The turn frames without their ``<n>:<id>`` / ``-:`` item-id prefix (as READ_RECORDS strips them),
    or None when a frame has neither. The usual heads are looked up (:data:`_HEADS`); any other frame
    makes :func:`_payloads_exactly` decide them all."""
    payloads = []
    length = _HEADS.get
    for frame in frames:
        head, colon, rest = frame.partition(b":")
        skip = length(head)
        if skip is None or not colon:
            return _payloads_exactly(frames)
        payloads.append(rest[skip:])
    return payloads


_HEADS = {b"-": 0, **{b"%d" % n: n for n in range(1000)}}
"""The frame heads of item ids shorter than 1,000 bytes, each to the length of what follows the colon
to skip (``int`` per frame cost a quarter of the stripping)."""


def _payloads_exactly(frames: list[bytes]) -> list[bytes] | None:
    """:func:`_payloads` by Lua's rules for any head: ``-``, or ASCII digits (``%d+``, leading zeros too)."""
    payloads = []
    for frame in frames:
        head, colon, rest = frame.partition(b":")
        if head == b"-" and colon:
            payloads.append(rest)
        elif head.isdigit():  # ASCII digits only, as Lua's %d; a colon follows (else head is the frame, rest empty)
            if not colon:
                return None
            payloads.append(rest[int(head):])
        else:
            return None
    return payloads


def _scanned(reply: Any) -> tuple[int, list[tuple[bytes, float]]]:
    """A raw ZSCAN reply as redis-py's gives it."""
    if type(reply) is not list:
        _raise_error([reply])
    cursor, flat = reply
    items = iter(flat)
    return int(cursor), list(zip(items, map(float, items), strict=True))


def _script(ctx: RedisContext) -> AsyncScript:
    script = _registered.get(ctx)
    if script is None:
        script = _registered[ctx] = ctx.client.register_script(READ_RECORDS)
    return script


__all__ = ["READ_RECORDS", "Reads", "read_step"]
