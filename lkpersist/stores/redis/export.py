"""Export reads for ``RedisStore``: every record of every bucket, read whole, with Redis and Python
working at the same time.

The walk goes over each bucket's ``deadline`` index by ZSCAN (no keyspace scan; the scores filter by
status before anything is read). Each step is one pipeline (:mod:`~lkpersist.stores.redis.snapshots`):
the records of about a page of the members found so far (each bucket's read in one snapshot), and the
next ZSCANs of the buckets being walked, made only while less than a page of members waits to be read.
The next step is sent before this one's replies are decoded, so Redis reads while Python decodes.
Memory stays bounded by about two pages plus the members found and not read yet and those of the
buckets being walked (kept to return each entry once, as ZSCAN may repeat one): a bucket's members
are read a page at a time, however many it has. The order is the store's own, bucket by bucket, not
``last_seen``: export needs every record once, not a ranking.

Records come with their turns as dicts (:func:`lkpersist.stores.bulk.turn_dict_page`, a step's turns
checked together) and their metadata and context read together (:func:`_page_values`); one whose
turns are not in that form is read again by the per-identity ``READ_RECORD`` path, which decodes (or
names) each.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from lkpersist.clock import to_ms
from lkpersist.crypto.codec import PlainCodec, PlainGuardCodec, ValueCodec
from lkpersist.exceptions import CorruptRecordError, DecryptionError
from lkpersist.model.jsonform import parse_json, parse_json_texts
from lkpersist.model.results import CorruptRecord
from lkpersist.model.session import Session, Status
from lkpersist.model.transfer import SessionRecord
from lkpersist.stores.bulk import TurnDicts, turn_dict_page
from lkpersist.stores.redis.context import RedisContext
from lkpersist.stores.redis.records import _session as built_session
from lkpersist.stores.redis.records import hash_values, session_from_reply
from lkpersist.stores.redis.snapshots import READ_RECORDS, Reads, read_step
from lkpersist.stores.redis.transfer import load_records

Loaded = SessionRecord | CorruptRecord

_MAX_LANES = 64


@dataclass
class _Walk:
    """Where the walk stands: the buckets being scanned (ZSCAN cursors), the members each returned, and
    the members found but not read yet (read a page at a time, whatever a bucket's size)."""

    buckets: int
    status: Status
    page_size: int
    lanes: int = 8
    next_bucket: int = 0
    cursors: dict[int, int] = field(default_factory=dict)
    seen: dict[int, set[bytes]] = field(default_factory=dict)
    found_unread: deque[tuple[int, list[bytes]]] = field(default_factory=deque)
    unread: int = 0

    def scans(self) -> list[tuple[int, int]]:
        """The (bucket, cursor) pairs to ZSCAN in the next step: open buckets, then new ones up to
        ``lanes``; none while a page of members found is still to be read."""
        if self.unread >= self.page_size:
            return []
        while len(self.cursors) < self.lanes and self.next_bucket < self.buckets:
            self.cursors[self.next_bucket] = 0
            self.seen[self.next_bucket] = set()
            self.next_bucket += 1
        return list(self.cursors.items())

    def found(self, scans: list[tuple[int, int]], replies: list[Any], now_ms: int) -> None:
        """Record what the ZSCANs answered: the new matching members join those to read. The number of
        lanes follows the buckets' size, so that a step finds about a page of members."""
        entries = 0
        for (bucket, _), (cursor, items) in zip(scans, replies, strict=True):
            entries += len(items)
            seen = self.seen[bucket]
            fresh = [m for m, score in items if m not in seen and _matches(self.status, score, now_ms)]
            seen.update(fresh)
            if fresh:
                self.found_unread.append((bucket, fresh))
                self.unread += len(fresh)
            if int(cursor) == 0:
                del self.cursors[bucket], self.seen[bucket]
            else:
                self.cursors[bucket] = int(cursor)
        if scans:
            self.lanes = max(1, min(_MAX_LANES, self.page_size * len(scans) // max(entries, 1)))

    def reads(self) -> Reads:
        """The next page of members to read, in the order found, by bucket (a bucket's members may be
        split between steps: a step's reads, and what the client holds of them, stay about a page
        however many members a bucket has)."""
        reads: Reads = []
        room = self.page_size
        while room > 0 and self.found_unread:
            bucket, members = self.found_unread[0]
            if len(members) > room:
                self.found_unread[0] = (bucket, members[room:])
                members = members[:room]
            else:
                self.found_unread.popleft()
            reads.append((bucket, members))
            room -= len(members)
        self.unread -= self.page_size - room
        return reads


async def scan_records(ctx: RedisContext, status: Status, page_size: int) -> AsyncIterator[list[Loaded]]:
    """Every record matching ``status``, about ``page_size`` at a time (see the module docstring)."""
    await ctx.ensure_ready()
    walk = _Walk(ctx.keys.buckets, status, max(1, page_size))
    reads: Reads = []
    scans = walk.scans()
    step: asyncio.Future[tuple[list[Any], list[Any]]] | None = asyncio.ensure_future(read_step(ctx, reads, scans, page_size))
    try:
        while step is not None:
            records, scanned = await step
            walk.found(scans, scanned, to_ms(ctx.now()))
            done, reads = reads, walk.reads()
            scans = walk.scans()
            step = asyncio.ensure_future(read_step(ctx, reads, scans, page_size)) if reads or scans else None
            await asyncio.sleep(0)  # the next step's pipeline leaves before this one is decoded
            page = await _decoded(ctx, done, records)
            if page:
                yield page
    finally:
        if step is not None and not step.done():
            step.cancel()
            await asyncio.gather(step, return_exceptions=True)


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


__all__ = ["READ_RECORDS", "scan_records"]
