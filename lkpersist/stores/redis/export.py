"""Export reads for ``RedisStore``: every record of every bucket, read whole, with Redis and Python
working at the same time.

The walk goes over each bucket's ``deadline`` index by ZSCAN (no keyspace scan; the scores filter by
status before anything is read). Each step is one pipeline: a ``READ_RECORDS`` call per bucket for the
members the previous step found (every record in it read in one snapshot), and the next ZSCANs of the
buckets being walked. The next step is sent before this one's replies are decoded, so Redis reads while
Python decodes. Memory stays bounded by about two pages plus the members of the buckets being walked
(kept to return each entry once, as ZSCAN may repeat one). The order is the store's own, bucket by
bucket, not ``last_seen``: export needs every record once, not a ranking.

Records come with their turns as dicts (:func:`lkpersist.stores.bulk.turn_dict_page`, a step's turns
checked together); one whose turns are not in that form is read again by the per-identity
``READ_RECORD`` path, which decodes (or names) each.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from redis.commands.core import AsyncScript
from redis.exceptions import ResponseError

from lkpersist.clock import to_ms
from lkpersist.crypto.codec import PlainCodec, PlainGuardCodec, ValueCodec
from lkpersist.exceptions import CorruptRecordError, DecryptionError
from lkpersist.model.jsonform import parse_json, parse_json_texts
from lkpersist.model.results import CorruptRecord
from lkpersist.model.session import Session, Status
from lkpersist.model.transfer import SessionRecord
from lkpersist.stores.bulk import TurnDicts, turn_dict_page
from lkpersist.stores.redis import wire
from lkpersist.stores.redis.context import RedisContext
from lkpersist.stores.redis.errors import translated
from lkpersist.stores.redis.pipeline import queue_script, run_pipeline
from lkpersist.stores.redis.records import _session as built_session
from lkpersist.stores.redis.records import hash_values, pairs, session_from_reply
from lkpersist.stores.redis.transfer import load_records

Loaded = SessionRecord | CorruptRecord

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
_MAX_LANES = 64
_registered: weakref.WeakKeyDictionary[Any, AsyncScript] = weakref.WeakKeyDictionary()

Reads = list[tuple[int, list[bytes]]]
"""Members to read, bucket by bucket."""


@dataclass
class _Walk:
    """Where the walk stands: the buckets being scanned (ZSCAN cursors) and the members each returned."""

    buckets: int
    status: Status
    page_size: int
    lanes: int = 8
    next_bucket: int = 0
    cursors: dict[int, int] = field(default_factory=dict)
    seen: dict[int, set[bytes]] = field(default_factory=dict)

    def scans(self) -> list[tuple[int, int]]:
        """The (bucket, cursor) pairs to ZSCAN in the next step: open buckets, then new ones up to ``lanes``."""
        while len(self.cursors) < self.lanes and self.next_bucket < self.buckets:
            self.cursors[self.next_bucket] = 0
            self.seen[self.next_bucket] = set()
            self.next_bucket += 1
        return list(self.cursors.items())

    def found(self, scans: list[tuple[int, int]], replies: list[Any], now_ms: int) -> Reads:
        """Record what the ZSCANs answered; the new matching members, by bucket. The number of lanes
        follows the buckets' size, so that a step finds about a page of members."""
        reads: Reads = []
        entries = 0
        for (bucket, _), (cursor, items) in zip(scans, replies, strict=True):
            entries += len(items)
            seen = self.seen[bucket]
            fresh = [m for m, score in items if m not in seen and _matches(self.status, score, now_ms)]
            seen.update(fresh)
            if fresh:
                reads.append((bucket, fresh))
            if int(cursor) == 0:
                del self.cursors[bucket], self.seen[bucket]
            else:
                self.cursors[bucket] = int(cursor)
        if scans:
            self.lanes = max(1, min(_MAX_LANES, self.page_size * len(scans) // max(entries, 1)))
        return reads


async def scan_records(ctx: RedisContext, status: Status, page_size: int) -> AsyncIterator[list[Loaded]]:
    """Every record matching ``status``, about ``page_size`` at a time (see the module docstring)."""
    await ctx.ensure_ready()
    walk = _Walk(ctx.keys.buckets, status, page_size)
    reads: Reads = []
    scans = walk.scans()
    step: asyncio.Future[tuple[list[Any], list[Any]]] | None = asyncio.ensure_future(_step(ctx, reads, scans, page_size))
    try:
        while step is not None:
            records, scanned = await step
            done, reads = reads, walk.found(scans, scanned, to_ms(ctx.now()))
            scans = walk.scans()
            step = asyncio.ensure_future(_step(ctx, reads, scans, page_size)) if reads or scans else None
            await asyncio.sleep(0)  # the next step's pipeline leaves before this one is decoded
            page = await _decoded(ctx, done, records)
            if page:
                yield page
    finally:
        if step is not None and not step.done():
            step.cancel()
            await asyncio.gather(step, return_exceptions=True)


async def _step(
    ctx: RedisContext, reads: Reads, scans: list[tuple[int, int]], count: int
) -> tuple[list[Any], list[Any]]:
    """One pipeline: the records of ``reads`` and the ZSCANs (about ``count`` entries) of ``scans``; each
    bucket's records as READ_RECORDS answers them, each ZSCAN as (cursor, [(member, score), ...])."""
    if wire.usable(ctx.client):
        return await _plain_step(ctx, reads, scans, count)
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
    """:func:`_step` by plain commands (:mod:`~lkpersist.stores.redis.wire`): each bucket's reads in one
    MULTI/EXEC (one snapshot, as one READ_RECORDS call), five commands a member, the turn frames' item-id
    prefixes stripped here (:func:`_payloads`). Redis spends about a third of the script's time on them."""
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
    or None when a frame has neither."""
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


async def _decoded(ctx: RedisContext, reads: Reads, replies: list[Any]) -> list[Loaded]:
    """The records of one step's READ_RECORDS replies, in order, their turns checked together
    (:func:`~lkpersist.stores.bulk.turn_dict_page`) and their metadata and context values read together
    (:func:`_page_values`); those whose turns are not in the bulk form are read again, together, by the
    per-identity path (which decodes each or names the bad one)."""
    answers: list[tuple[str, Any]] = []
    for (_, members), reply in zip(reads, replies, strict=True):
        for member, answer in zip(members, reply, strict=True):
            try:
                answers.append((ctx.keys.decode_identity(member), answer))
            except ValueError:
                continue  # not one of ours: listing reports such entries, export has nothing to carry
    codec = ctx.settings.codec
    bulk = iter(turn_dict_page([answer[4] for _, answer in answers if answer[5] == 1], codec))
    values = _page_values([answer for _, answer in answers], codec)
    records: list[Loaded | None] = []
    again: dict[int, str] = {}  # the place in records of each identity to read again
    for identity, answer in answers:
        record = _record(identity, answer, next(bulk) if answer[5] == 1 else None, codec,
                         None if values is None else next(values))
        if record is _Read.AGAIN:
            again[len(records)] = identity
            records.append(None)
        elif record is not _Read.GONE:
            records.append(record)
    if again:
        for index, loaded in zip(again, await load_records(ctx, list(again.values())), strict=True):
            records[index] = loaded
    return [record for record in records if record is not None]


class _Read(Enum):
    GONE = "removed since the scan"
    AGAIN = "turns not in the bulk form: read by the per-identity path"


Hashes = tuple[dict[str, Any], dict[str, Any]]
"""A record's metadata and context as dicts."""


def _record(identity: str, answer: Any, dicts: TurnDicts | None, codec: ValueCodec, plain: Hashes | None) -> Loaded | _Read:
    """One member's READ_RECORDS answer as its record (``dicts``: its turns in the bulk form, or None;
    ``plain``: its metadata and context as :func:`_page_values` read them, or None), or what to do instead."""
    try:
        session = _session(identity, answer, codec, plain)
    except CorruptRecordError as exc:
        return CorruptRecord(identity=identity, reason=exc.reason)
    if session is None:
        return _Read.GONE
    if dicts is None:
        return _Read.AGAIN
    return SessionRecord.of_turn_dicts(session, dicts, plain=plain is not None)


def _session(identity: str, answer: Any, codec: ValueCodec, plain: Hashes | None) -> Session | None:
    """The session of a READ_RECORDS answer (None without a session hash), its metadata and context
    ``plain`` or each value read by :func:`parse_json` (the stdlib's values, several times faster than
    ``json.loads``); anything it cannot read goes to the ordinary decode, which names what is wrong."""
    if not answer[0]:
        return None
    try:
        values = hash_values(answer[0])
        metadata, context = (_json_hash(answer[1], codec), _json_hash(answer[2], codec)) if plain is None else plain
        return built_session(identity, values, metadata, context, _flat(answer[3]), codec)
    except (KeyError, ValueError, TypeError, UnicodeDecodeError, AttributeError, DecryptionError):
        return session_from_reply(identity, [_flat(fields) for fields in answer[0:4]], codec)  # raises, naming it


def _page_values(answers: list[Any], codec: ValueCodec) -> Iterator[Hashes | None] | None:
    """Every answer's metadata and context as dicts, all the page's values read by one
    :func:`parse_json_texts` (the values the stdlib reads, in one C pass); None when that does not apply
    to every one of them (an encrypting codec, a value orjson refuses or may read differently): then each
    record's are read on their own."""
    if not isinstance(codec, PlainCodec | PlainGuardCodec):  # an encrypted value is not JSON: it would be None
        return None
    texts = [text for answer in answers for fields in (answer[1], answer[2]) for text in fields.values()]
    values = parse_json_texts(texts)
    if values is None:
        return None
    return _hashes(answers, values)


def _hashes(answers: list[Any], values: list[Any]) -> Iterator[Hashes | None]:
    """Each answer's share of ``values`` under its fields' names (None: a name that is not UTF-8)."""
    at = 0
    for answer in answers:
        metadata, context = answer[1], answer[2]
        middle, end = at + len(metadata), at + len(metadata) + len(context)
        try:
            yield (dict(zip(map(_utf8, metadata), values[at:middle], strict=True)),
                   dict(zip(map(_utf8, context), values[middle:end], strict=True)))
        except UnicodeDecodeError:
            yield None
        at = end


def _json_hash(fields: dict[bytes, bytes], codec: ValueCodec) -> dict[str, Any]:
    """A metadata or context hash as its dict, each value read by :func:`parse_json`."""
    return {key.decode("utf-8"): parse_json(codec.decode(value.decode("utf-8"))) for key, value in fields.items()}


_utf8 = bytes.decode


def _flat(fields: dict[bytes, bytes]) -> list[bytes]:
    """A hash as Lua's HGETALL gives it (field, value, ...)."""
    return [part for item in fields.items() for part in item]


def _matches(status: Status, deadline_ms: float, now_ms: int) -> bool:
    return status == "all" or (now_ms >= deadline_ms) == (status == "expired")


def _script(ctx: RedisContext) -> AsyncScript:
    script = _registered.get(ctx)
    if script is None:
        script = _registered[ctx] = ctx.client.register_script(READ_RECORDS)
    return script


__all__ = ["READ_RECORDS", "scan_records"]
