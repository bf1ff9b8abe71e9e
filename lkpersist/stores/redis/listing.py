"""Listing, counting and purging for the Redis backend, over the per-bucket index zsets.

Nothing here loads every session or scans the keyspace (an ACL user limited to ``~<prefix>*`` can run
it all). Listing merges the buckets' ``seen`` indexes (last_seen desc, member desc) with a heap, pulling
a few entries per bucket at a time through a Lua scan that also applies the status filter, so memory
stays bounded by page size x buckets. Purging walks the ``deadline`` (and, with ``older_than``, the
``seen``) index in chunks; the purge script re-checks each record at delete time.

The expired listing relies on one invariant every script that indexes a session keeps: its ``deadline``
score is never below its ``seen`` score (a write at ``t`` indexes ``t`` and ``t + ttl``, or a later
deadline). So every entry last seen after a bucket's newest expired deadline is live, and LIST_SCAN starts
the ``expired`` walk past them instead of filtering its way through every newer live session.
"""

from __future__ import annotations

import asyncio
import heapq
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from lkpersist.clock import to_ms
from lkpersist.exceptions import CorruptRecordError
from lkpersist.model.results import Census, CorruptRecord, Page, PurgeResult, StorageInfo
from lkpersist.model.session import Session, Status
from lkpersist.stores.paging import Position, encode_cursor
from lkpersist.stores.redis.context import RedisContext
from lkpersist.stores.redis.errors import translate, translated
from lkpersist.stores.redis.pipeline import queue_script, run_pipeline
from lkpersist.stores.redis.records import session_from_reply

SCAN_BUDGET = 2048
"""Index entries one list-scan call may examine, so a sparse filter never blocks Redis for long."""
PURGE_CHUNK = 500
"""Sessions one purge script call judges (and deletes)."""
PURGE_BUCKETS_PER_ROUND = 16
"""Buckets whose purge chunks go out in one pipeline."""
PURGE_LANES = 4
"""Bucket groups purged at once, so Redis works while Python prepares the next chunk; memory stays
bounded by lanes x buckets per round x chunk (32,000 candidates)."""


@dataclass(eq=False)
class _Bucket:
    index: int
    resume: tuple[bytes, bytes] | None
    want: int
    buffer: deque[tuple[int, bytes]] = field(default_factory=deque)
    exhausted: bool = False


@dataclass(eq=False)
class _Head:
    """A bucket's next entry; the heap pops the greatest (last_seen, member) first."""

    score: int
    member: bytes
    bucket: _Bucket

    def __lt__(self, other: _Head) -> bool:
        return (self.score, self.member) > (other.score, other.member)


TURN_SAMPLES_PER_BUCKET = 32
"""Sessions per bucket whose turn lists ``census`` measures to estimate the stored turns (exact when
every bucket holds no more than that)."""


async def census(ctx: RedisContext, now: float, stale_after: float) -> Census:
    """Every count from the bucket indexes in one pipeline, and the sampled turn lists in a second one.

    ``connected`` is approximated by the sessions seen within the presence timeout (an agent refreshes a
    present participant every 30 s, so each one is counted; so is one who left within that time): an
    exact count needs a per-bucket index of connected sessions that connect, disconnect and heartbeat
    would maintain. ``turns`` is exact up to ``TURN_SAMPLES_PER_BUCKET`` sessions per bucket, beyond
    that each bucket's sessions times the mean length of a random sample of its turn lists (measured
    in Redis by one script per bucket).
    """
    await ctx.ensure_ready()
    now_ms, keys = to_ms(now), ctx.keys
    fresh_ms = to_ms(now - ctx.settings.ttl_policy.presence_timeout)
    with translated(ctx.display_url):
        async with ctx.client.pipeline(transaction=False) as pipe:
            for bucket in range(keys.buckets):
                deadlines, seen = keys.deadline_key(bucket), keys.seen_key(bucket)
                pipe.zcount(deadlines, f"({now_ms}", "+inf")
                pipe.zcount(deadlines, "-inf", now_ms)
                pipe.zcount(deadlines, "-inf", to_ms(now - stale_after))
                pipe.zcount(seen, f"({fresh_ms}", "+inf")
                pipe.zcard(seen)
                pipe.zrandmember(seen, TURN_SAMPLES_PER_BUCKET)
            replies = await pipe.execute()
    rows = [replies[i:i + 6] for i in range(0, len(replies), 6)]
    turns, exact = await _estimated_turns(ctx, [(int(row[4]), row[5] or []) for row in rows])
    active, expired, stale, connected = (sum(int(row[k]) for row in rows) for k in range(4))
    return Census(active, expired, stale, connected, turns, connected_exact=False, turns_exact=exact)


async def _estimated_turns(ctx: RedisContext, buckets: list[tuple[int, list[bytes]]]) -> tuple[int, bool]:
    """Σ bucket size × mean sampled turn-list length; exact when every sample is the whole bucket."""
    sampled = [(bucket, size, members) for bucket, (size, members) in enumerate(buckets) if members]

    def fill(pipe: Any) -> None:
        for bucket, _size, members in sampled:
            queue_script(pipe, ctx.scripts.sum_lengths, ctx.keys.turn_list_keys(bucket, members), [])

    with translated(ctx.display_url):
        sums = await run_pipeline(ctx.client, ctx.scripts.all(), fill) if sampled else []
    total = sum(size * int(found) / len(members) for (_, size, members), found in zip(sampled, sums, strict=True))
    return round(total), all(len(members) == size for size, members in buckets)


async def storage_info(ctx: RedisContext) -> StorageInfo:
    """The server's version (INFO server) and clock (TIME, for the clock-offset check)."""
    await ctx.ensure_ready()
    with translated(ctx.display_url):
        info = await ctx.client.info("server")
        seconds, micros = await ctx.client.time()
    if info and all(isinstance(value, dict) for value in info.values()):  # a cluster: one dict per node
        info = next(iter(info.values()))
    version = info.get("redis_version") if isinstance(info, dict) else None
    return StorageInfo("redis", server_version=None if version is None else f"Redis {version}",
                       server_time=int(seconds) + int(micros) / 1e6)


async def count(ctx: RedisContext, status: Status) -> int:
    await ctx.ensure_ready()
    now = to_ms(ctx.now())
    with translated(ctx.display_url):
        async with ctx.client.pipeline(transaction=False) as pipe:
            for bucket in range(ctx.keys.buckets):
                if status == "all":
                    pipe.zcard(ctx.keys.seen_key(bucket))
                elif status == "active":
                    pipe.zcount(ctx.keys.deadline_key(bucket), f"({now}", "+inf")
                else:
                    pipe.zcount(ctx.keys.deadline_key(bucket), "-inf", now)
            counts = await pipe.execute()
    return sum(int(value) for value in counts)


async def scan_index(ctx: RedisContext, key: str, count: int) -> AsyncIterator[list[tuple[bytes, float]]]:
    """One index zset's (member, score) entries by ZSCAN, about ``count`` a call: every entry present for
    the whole walk comes at least once, whatever writers do meanwhile (an entry may come twice)."""
    cursor = 0
    while True:
        with translated(ctx.display_url):
            cursor, items = await ctx.client.zscan(key, cursor, count=count)
        yield items
        if int(cursor) == 0:
            return


async def list_page(ctx: RedisContext, status: Status, limit: int, after: Position | None) -> Page:
    await ctx.ensure_ready()
    start = None if after is None else (str(after[0]).encode(), after[1].encode("ascii", "replace"))
    now = ctx.now()
    entries: Any = _ordered(ctx, status, to_ms(now), start, limit + 1)
    found: list[tuple[int, bytes, Session | CorruptRecord]] = []
    while len(found) <= limit:
        batch = [entry async for entry in _take(entries, limit + 1 - len(found))]
        if not batch:
            break
        for (score, member), item in zip(batch, await _load(ctx, [m for _, m in batch]), strict=True):
            if item is not None and (isinstance(item, CorruptRecord) or item.matches(status, now)):
                found.append((score, member, item))
    await entries.aclose()
    next_cursor = None
    if len(found) > limit:
        score, member, _ = found[limit - 1]
        next_cursor = encode_cursor(score, member.decode("ascii"))
    return Page(items=[item for _, _, item in found[:limit]], next_cursor=next_cursor)


async def _take(entries: AsyncIterator[tuple[int, bytes]], n: int) -> AsyncIterator[tuple[int, bytes]]:
    for _ in range(n):
        try:
            yield await anext(entries)
        except StopAsyncIteration:
            return


async def _ordered(
    ctx: RedisContext, status: Status, now_ms: int, start: tuple[bytes, bytes] | None, page: int
) -> AsyncIterator[tuple[int, bytes]]:
    """Index entries matching ``status`` across all buckets, newest last_seen first, after ``start``."""
    initial = min(page, max(4, 2 * page // ctx.keys.buckets + 1))
    buckets = [_Bucket(index, start, initial) for index in range(ctx.keys.buckets)]
    heap: list[_Head] = []
    pending = buckets
    while True:
        if pending:
            await _refill(ctx, pending, status, now_ms)
            for bucket in pending:
                _push_head(heap, bucket)
            pending = []
        if not heap:
            return
        head = heapq.heappop(heap)
        yield head.score, head.member
        if head.bucket.buffer:
            _push_head(heap, head.bucket)
        elif not head.bucket.exhausted:
            head.bucket.want = min(page, head.bucket.want * 2)
            pending = [head.bucket]


def _push_head(heap: list[_Head], bucket: _Bucket) -> None:
    if bucket.buffer:
        score, member = bucket.buffer.popleft()
        heapq.heappush(heap, _Head(score, member, bucket))


async def _refill(ctx: RedisContext, buckets: list[_Bucket], status: Status, now_ms: int) -> None:
    """One pipelined round trip: each bucket's next matching entries (empty buffers only)."""

    def fill(pipe: Any) -> None:
        for bucket in buckets:
            score, member = bucket.resume or (b"", b"")
            keys = [ctx.keys.seen_key(bucket.index), ctx.keys.deadline_key(bucket.index)]
            queue_script(pipe, ctx.scripts.list_scan, keys, [now_ms, status, bucket.want, SCAN_BUDGET, score, member])

    with translated(ctx.display_url):
        replies = await run_pipeline(ctx.client, ctx.scripts.all(), fill)
    for bucket, (matches, exhausted, last_score, last_member) in zip(buckets, replies, strict=True):
        bucket.buffer.extend((int(matches[i + 1]), matches[i]) for i in range(0, len(matches), 2))
        bucket.exhausted = exhausted == 1
        bucket.resume = (last_score, last_member) if last_score else bucket.resume


async def _load(ctx: RedisContext, members: list[bytes]) -> list[Session | CorruptRecord | None]:
    """Read the sessions behind index entries in one round trip; None where Redis already dropped them."""
    identities = [_identity_of(ctx, member) for member in members]

    def fill(pipe: Any) -> None:
        for member, identity in zip(members, identities, strict=True):
            if identity is not None:
                queue_script(pipe, ctx.scripts.read, ctx.keys.keys_for_encoded(member.decode("ascii")), [member])

    with translated(ctx.display_url):
        replies = iter(await run_pipeline(ctx.client, ctx.scripts.all(), fill, raise_on_error=False))
    return [_loaded(ctx, member, identity, replies) for member, identity in zip(members, identities, strict=True)]


def _identity_of(ctx: RedisContext, member: bytes) -> str | None:
    try:
        return ctx.keys.decode_identity(member)
    except ValueError:
        return None


def _loaded(ctx: RedisContext, member: bytes, identity: str | None, replies: Any) -> Session | CorruptRecord | None:
    if identity is None:
        return CorruptRecord(identity=member.decode("ascii", "replace"), reason="index entry is not an encoded identity")
    reply = next(replies)
    try:
        if isinstance(reply, Exception):
            raise translate(reply, ctx.display_url, identity) from reply
        return session_from_reply(identity, reply, ctx.settings.codec)
    except CorruptRecordError as exc:
        return CorruptRecord(identity=identity, reason=exc.reason)


async def purge(
    ctx: RedisContext, *, now: float, cutoff: float | None, dry_run: bool, progress: Callable[[int], None]
) -> PurgeResult:
    await ctx.ensure_ready()
    now_ms = to_ms(now)
    cutoff_ms = None if cutoff is None else to_ms(cutoff)
    lanes = asyncio.Semaphore(PURGE_LANES)
    tally = _Tally(progress)

    async def purge_group(first: int) -> int:
        async with lanes:
            group = range(first, min(first + PURGE_BUCKETS_PER_ROUND, ctx.keys.buckets))
            return await _purge_group(ctx, group, now_ms, cutoff_ms, dry_run, tally)

    firsts = range(0, ctx.keys.buckets, PURGE_BUCKETS_PER_ROUND)
    purged = await asyncio.gather(*(purge_group(first) for first in firsts))
    return PurgeResult(purged=sum(purged), dry_run=dry_run)


@dataclass(eq=False)
class _Tally:
    """The running total of a purge's lanes, reported to its progress callback after each chunk."""

    progress: Callable[[int], None]
    purged: int = 0

    def add(self, removed: int) -> None:
        if removed:
            self.purged += removed
            self.progress(self.purged)


async def _purge_group(
    ctx: RedisContext, group: range, now_ms: int, cutoff_ms: int | None, dry_run: bool, tally: _Tally
) -> int:
    """Expired sessions first (deadline index), then, with a cutoff, the old but unexpired (seen index)."""
    purged = await _purge_pass(
        ctx, group, ctx.keys.deadline_key, max_score=now_ms, now_ms=now_ms, cutoff_ms=cutoff_ms, dry_run=dry_run,
        keep_expired=False, tally=tally,
    )
    if cutoff_ms is not None:
        purged += await _purge_pass(
            ctx, group, ctx.keys.seen_key, max_score=f"({cutoff_ms}", now_ms=now_ms, cutoff_ms=cutoff_ms,
            dry_run=dry_run, keep_expired=True, tally=tally,
        )
    return purged


async def _purge_pass(
    ctx: RedisContext, group: range, index_key: Any, *, max_score: int | str, now_ms: int, cutoff_ms: int | None,
    dry_run: bool, keep_expired: bool, tally: _Tally,
) -> int:
    """One pass over ``index_key`` (scores up to ``max_score``) in the group's buckets; the script re-checks
    each candidate, and ``keep_expired`` leaves expired ones to the pass that judges them by deadline."""
    offsets = dict.fromkeys(group, 0)  # candidates left in place so far: the next chunk starts after them
    purged = 0
    with translated(ctx.display_url):
        while offsets:
            async with ctx.client.pipeline(transaction=False) as pipe:
                for bucket, offset in offsets.items():
                    pipe.zrangebyscore(index_key(bucket), "-inf", max_score, start=offset, num=PURGE_CHUNK)
                chunks = dict(zip(offsets, await pipe.execute(), strict=True))
            work = {bucket: members for bucket, members in chunks.items() if members}
            if not work:
                break

            def fill(pipe: Any, work: dict[int, list[bytes]] = work) -> None:
                for bucket, members in work.items():
                    index_keys = [ctx.keys.seen_key(bucket), ctx.keys.deadline_key(bucket)]
                    keys = [key.encode("utf-8") for key in index_keys] + ctx.keys.record_keys(bucket, members)
                    args = [now_ms, "" if cutoff_ms is None else cutoff_ms, int(dry_run), int(keep_expired), *members,
                            ctx.keys.events_channel]
                    queue_script(pipe, ctx.scripts.purge, keys, args)

            results = dict(zip(work, await run_pipeline(ctx.client, ctx.scripts.all(), fill), strict=True))
            for bucket, (removed, _malformed) in results.items():
                purged += removed
                offsets[bucket] += len(work[bucket]) if dry_run else len(work[bucket]) - removed
            if not dry_run:
                tally.add(sum(removed for removed, _ in results.values()))
            offsets = {bucket: offsets[bucket] for bucket in work if len(work[bucket]) == PURGE_CHUNK}
    return purged
