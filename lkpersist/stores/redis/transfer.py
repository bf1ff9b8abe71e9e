"""Import (and reads of named records) for ``RedisStore``; the export walk is :mod:`~lkpersist.stores.redis.export`.

Import is the compare-and-set of :mod:`~lkpersist.stores.redis.reconcile`, a batch at a time. First
the first record of each identity is written as if nothing were stored (``WRITE_IF_ABSENT``: written
only where the identity's keys do not exist; one script call per chunk of new identities, the chunks
sent as they are framed, turns framed from the record's turn dicts without a ``Turn`` per turn); where
something is stored that fails, and those (with every repeat of an identity in the batch) go
through one pipeline of ``READ_STATE``, the rule (:func:`lkpersist.model.transfer.decide_import`) in
Python and one pipeline of ``WRITE_STATE``; a record another writer changed in between is read and
decided again. Each record is written whole by one script, so none is half-written; a batch is not one
transaction. Named records (``load_records``) are read by one ``READ_RECORD`` script each, pipelined.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from redis.asyncio.cluster import RedisCluster

from lkpersist.exceptions import CorruptRecordError, DecryptionError, StoreUnavailableError
from lkpersist.model.results import CorruptRecord
from lkpersist.model.transfer import (
    ConflictRule,
    ImportOutcome,
    SessionRecord,
    creation_events,
    decide_import,
)
from lkpersist.stores.bulk import TurnDicts, turn_payloads
from lkpersist.stores.redis.context import RedisContext
from lkpersist.stores.redis.errors import translate, translated
from lkpersist.stores.redis.pipeline import queue_script, run_pipeline
from lkpersist.stores.redis.reconcile import (
    MAX_ATTEMPTS,
    scripts_for,
    state_args,
    whole_from_reply,
    write_args,
)

Loaded = SessionRecord | CorruptRecord
Call = tuple[Sequence[Any], Sequence[Any]]
"""One script call's KEYS and ARGV."""


async def load_records(ctx: RedisContext, identities: Sequence[str]) -> list[Loaded | None]:
    await ctx.ensure_ready()
    return await _load(ctx, identities)


async def import_batch(ctx: RedisContext, records: Sequence[SessionRecord], rule: ConflictRule) -> list[ImportOutcome]:
    """Read, decide and compare-and-set every record; again from the read for those another writer changed."""
    await ctx.ensure_ready()
    scripts = scripts_for(ctx)
    outcomes: list[ImportOutcome | None] = [None] * len(records)
    pending = await _write_if_absent(ctx, records, outcomes)
    for _ in range(MAX_ATTEMPTS):
        if not pending:
            break
        reads = await _pipelined(ctx, scripts.read, [(records[i].session.identity, ()) for i in pending])
        writes: list[tuple[int, ImportOutcome, tuple[Any, ...]]] = []
        for index, reply in zip(pending, reads, strict=True):
            decided = _decide(ctx, records[index], reply, rule)
            if isinstance(decided, ImportOutcome):
                outcomes[index] = decided
            else:
                writes.append((index, *decided))
        written = await _pipelined(ctx, scripts.write, [(records[i].session.identity, args) for i, _, args in writes])
        pending = []
        for (index, outcome, _), done in zip(writes, written, strict=True):
            if _result(ctx, records[index], done) == 1:
                outcomes[index] = outcome
            else:
                pending.append(index)
    if not pending:
        return [outcome for outcome in outcomes if outcome is not None]
    raise StoreUnavailableError(
        f"Redis store {ctx.display_url}: importing lost {MAX_ATTEMPTS} races to other writers on one identity"
    )


_ABSENT_CHUNK = 100
"""Records per ``WRITE_IF_ABSENT`` call at most. A call blocks the server's other clients while it runs
(about 5 ms for 100 sessions of 10 turns), so a chunk also stops before ``_ABSENT_TURNS`` turns."""
_ABSENT_TURNS = 1_000
"""Turns per ``WRITE_IF_ABSENT`` call at most (a record with more than that is a chunk of its own)."""


async def _write_if_absent(
    ctx: RedisContext, records: Sequence[SessionRecord], outcomes: list[ImportOutcome | None]
) -> list[int]:
    """Write every record as if its identity held nothing, a script call per chunk of new sessions of
    one slot: written only where nothing is stored; the others (returned, in file order) go the
    read-and-decide way. Each chunk is sent as soon as it is framed, so Redis writes one while Python
    frames the next; chunks hold distinct identities (an identity's later lines are always decided), so
    the order in which Redis runs them does not matter."""
    firsts, left = _first_lines(records)
    chunks = _absent_chunks(ctx, records, firsts)
    script = scripts_for(ctx).write_if_absent
    sending: list[asyncio.Future[list[Any]]] = []
    try:
        for chunk in chunks:
            sending.append(asyncio.ensure_future(_run_calls(ctx, script, [_absent_call(ctx, records, chunk)])))
            await asyncio.sleep(0)  # this chunk leaves before the next one is framed
        written = await asyncio.gather(*sending)
    finally:
        for task in sending:
            task.cancel()
        await asyncio.gather(*sending, return_exceptions=True)
    for chunk, (done,) in zip(chunks, written, strict=True):
        for index, flag in zip(chunk, _result(ctx, records[chunk[0]], done), strict=True):
            if flag == 1:
                outcomes[index] = ImportOutcome.CREATED
            else:
                left.append(index)
    return sorted(left)


def _first_lines(records: Sequence[SessionRecord]) -> tuple[list[int], list[int]]:
    """The indices of each identity's first record, and of its repeats."""
    seen: set[str] = set()
    firsts: list[int] = []
    repeats: list[int] = []
    for index, record in enumerate(records):
        identity = record.session.identity
        (repeats if identity in seen else firsts).append(index)
        seen.add(identity)
    return firsts, repeats


def _absent_chunks(ctx: RedisContext, records: Sequence[SessionRecord], indices: list[int]) -> list[list[int]]:
    """``indices`` in chunks of one script call each: a cluster's by bucket (one slot per call), a single
    server's regardless of bucket."""
    by_slot = isinstance(ctx.client, RedisCluster)
    groups: dict[bytes, list[int]] = {}
    for index in indices:
        bucket = ctx.keys.packed_keys_for(records[index].session.identity)[1][6] if by_slot else b""
        groups.setdefault(bucket, []).append(index)
    return [chunk for group in groups.values() for chunk in _bounded(records, group)]


def _bounded(records: Sequence[SessionRecord], group: list[int]) -> list[list[int]]:
    """``group`` cut into chunks of at most ``_ABSENT_CHUNK`` records and ``_ABSENT_TURNS`` turns."""
    chunks: list[list[int]] = []
    chunk: list[int] = []
    turns = 0
    for index in group:
        total = records[index].turn_total
        if chunk and (len(chunk) == _ABSENT_CHUNK or turns + total > _ABSENT_TURNS):
            chunks.append(chunk)
            chunk, turns = [], 0
        chunk.append(index)
        turns += total
    return [*chunks, chunk] if chunk else chunks


def _absent_call(ctx: RedisContext, records: Sequence[SessionRecord], chunk: list[int]) -> Call:
    """WRITE_IF_ABSENT's KEYS and ARGV for the records of ``chunk``."""
    settings, now = ctx.settings, ctx.now()
    keys: list[bytes] = []
    argv: list[Any] = []
    for index in chunk:
        session, dicts = records[index].session, records[index].turn_dicts
        frames = turn_frames(dicts, turn_payloads(dicts, settings.codec))
        item_ids = [turn["item_id"] for turn in dicts if turn["item_id"] is not None]
        events = creation_events(None, session, now)
        own_keys, (member, now_ms, grace_ms) = ctx.script_call(session.identity, ())
        if not argv:
            argv += [now_ms, grace_ms, ctx.events_channel]
        keys += own_keys
        argv += [member, *state_args(session, frames, item_ids, events, settings.codec)]
    return keys, argv


def turn_frames(dicts: TurnDicts, payloads: list[str]) -> list[bytes]:
    """The frames :func:`~lkpersist.stores.redis.records.frame_turn` makes, from turn dicts and their
    stored payloads (``<id byte length>:<id><payload>``, or ``-:<payload>`` without an item id)."""
    frames = []
    for turn, payload in zip(dicts, payloads, strict=True):
        item_id = turn["item_id"]
        if item_id is None:
            frames.append(("-:" + payload).encode("utf-8"))
        elif item_id.isascii():  # its length in characters is its length in bytes: one encode
            frames.append(f"{len(item_id)}:{item_id}{payload}".encode())
        else:
            raw = item_id.encode("utf-8")
            frames.append(b"%d:%s%s" % (len(raw), raw, payload.encode("utf-8")))
    return frames


def _decide(
    ctx: RedisContext, record: SessionRecord, reply: Any, rule: ConflictRule
) -> ImportOutcome | tuple[ImportOutcome, tuple[Any, ...]]:
    """The outcome alone when nothing is to be written, else the outcome and WRITE_STATE's arguments."""
    identity, settings = record.session.identity, ctx.settings
    try:
        if isinstance(reply, Exception):
            raise translate(reply, ctx.display_url, identity) from reply
        stored, turns = whole_from_reply(identity, reply[1:], settings.codec)
    except (CorruptRecordError, DecryptionError):
        return ImportOutcome.FAILED
    decision = decide_import(stored, turns, record, rule, ctx.now(), settings.max_turns)
    if decision.write is None:
        return decision.outcome
    return decision.outcome, (reply[0], *write_args(decision.write, settings.codec), ctx.events_channel)


def _result(ctx: RedisContext, record: SessionRecord, reply: Any) -> Any:
    if isinstance(reply, Exception):
        raise translate(reply, ctx.display_url, record.session.identity) from reply
    return reply


async def _load(ctx: RedisContext, identities: Sequence[str]) -> list[Loaded | None]:
    replies = await _pipelined(ctx, ctx.scripts.read_record, [(identity, ()) for identity in identities])
    return [_loaded(ctx, identity, reply) for identity, reply in zip(identities, replies, strict=True)]


def _loaded(ctx: RedisContext, identity: str, reply: Any) -> Loaded | None:
    try:
        if isinstance(reply, Exception):
            raise translate(reply, ctx.display_url, identity) from reply
        session, turns = whole_from_reply(identity, reply, ctx.settings.codec)
    except CorruptRecordError as exc:  # undecryptable (a wrong key) stays an error for the whole read, as in ls
        return CorruptRecord(identity=identity, reason=exc.reason)
    return None if session is None else SessionRecord(session, tuple(turns))


async def _pipelined(ctx: RedisContext, script: Any, calls: list[tuple[str, tuple[Any, ...]]]) -> list[Any]:
    """One pipeline of per-identity script calls; errors come back in place, one per call."""
    return await _run_calls(ctx, script, [ctx.script_call(identity, args) for identity, args in calls])


async def _run_calls(ctx: RedisContext, script: Any, calls: Sequence[Call]) -> list[Any]:
    """One pipeline of script calls given by their KEYS and ARGV; errors come back in place, one per call."""
    if not calls:
        return []

    def fill(pipe: Any) -> None:
        for keys, argv in calls:
            queue_script(pipe, script, keys, argv)

    with translated(ctx.display_url):
        return await run_pipeline(ctx.client, (*ctx.scripts.all(), *scripts_for(ctx).all()), fill, raise_on_error=False)


__all__ = ["import_batch", "load_records", "turn_frames"]
