"""Encryption migration, Redis side: one session's personal values read raw and rewritten by
compare-and-set, one Lua script each (see :mod:`lkpersist.stores.raw` for the contract).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from lkpersist.stores.raw import Batch, Rewrite, StoredRecord, StoredValue, text_or_none
from lkpersist.stores.redis.context import RedisContext
from lkpersist.stores.redis.errors import translated
from lkpersist.stores.redis.listing import scan_index
from lkpersist.stores.redis.pipeline import queue_script, run_pipeline

# read raw. KEYS: 1 session, 2 metadata, 3 context, 4 turns. Returns {language or false, metadata flat,
# context flat, turn frames}: one session's personal values in one atomic snapshot.
READ_RAW = """
return {redis.call('HGET', KEYS[1], 'L'), redis.call('HGETALL', KEYS[2]), redis.call('HGETALL', KEYS[3]),
  redis.call('LRANGE', KEYS[4], 0, -1)}
"""

# rewrite values. KEYS as READ_RAW. ARGV: quads (kind, where, old, new): kind 'L' the language field,
# 'm' / 'x' a metadata / context field named by `where`, 't' the turn frame at list index `where`.
# Each value is replaced only if it still equals `old` (a turn list shifts when agents append and trim:
# the frame at that index is then another one and is left alone). Returns how many were replaced.
REWRITE = """
local hashes = {L = KEYS[1], m = KEYS[2], x = KEYS[3]}
local done = 0
for i = 1, #ARGV, 4 do
  local kind, where, old, new = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  if kind == 't' then
    if redis.call('LINDEX', KEYS[4], where) == old then
      redis.call('LSET', KEYS[4], where, new)
      done = done + 1
    end
  else
    local field = where
    if kind == 'L' then field = 'L' end
    if redis.call('HGET', hashes[kind], field) == old then
      redis.call('HSET', hashes[kind], field, new)
      done = done + 1
    end
  end
end
return done
"""


class RedisStoredValues:
    """:class:`~lkpersist.stores.raw.StoredValues` over one Redis store's prefix.

    Sessions are found through the bucket ``seen`` indexes with ZSCAN (every entry present for the
    whole walk is returned at least once, whatever agents do meanwhile); each session is read by one
    script and rewritten by one script, all pipelined. Only keys under the prefix are touched.
    """

    def __init__(self, ctx: RedisContext) -> None:
        self._ctx = ctx
        self._read = ctx.client.register_script(READ_RAW)
        self._rewrite = ctx.client.register_script(REWRITE)

    async def pages(self, page_size: int) -> AsyncIterator[list[StoredRecord]]:
        members: list[bytes] = []
        for bucket in range(self._ctx.keys.buckets):
            async for chunk in self._bucket_members(bucket, page_size):
                members.extend(chunk)
                if len(members) >= page_size:
                    yield await self._load(members)
                    members = []
        if members:
            yield await self._load(members)

    async def reread(self, identities: Sequence[str]) -> list[StoredRecord]:
        return await self._load([self._ctx.keys.encode_identity(identity).encode("ascii") for identity in identities])

    async def rewrite(self, batch: Batch) -> list[int]:
        ctx = self._ctx

        def fill(pipe: Any) -> None:
            for identity, rewrites in batch:
                keys = ctx.keys.keys_for(identity)[1][:4]
                queue_script(pipe, self._rewrite, keys, [part for rewrite in rewrites for part in _quad(rewrite)])

        with translated(ctx.display_url):
            replies = await run_pipeline(ctx.client, (self._rewrite,), fill)
        return [int(reply) for reply in replies]

    async def _bucket_members(self, bucket: int, count: int) -> AsyncIterator[list[bytes]]:
        async for items in scan_index(self._ctx, self._ctx.keys.seen_key(bucket), count):
            yield [member for member, _score in items]

    async def _load(self, members: list[bytes]) -> list[StoredRecord]:
        ctx = self._ctx
        identities = {member: _identity(ctx, member) for member in dict.fromkeys(members)}
        known = [member for member, identity in identities.items() if identity is not None]

        def fill(pipe: Any) -> None:
            for member in known:
                queue_script(pipe, self._read, ctx.keys.keys_for_encoded(member.decode("ascii"))[:4], [])

        with translated(ctx.display_url):
            replies = await run_pipeline(ctx.client, (self._read,), fill)
        records = (_record(identities[m] or "", reply) for m, reply in zip(known, replies, strict=True))
        return [record for record in records if record.values]


def _identity(ctx: RedisContext, member: bytes) -> str | None:
    try:
        return ctx.keys.decode_identity(member)
    except ValueError:
        return None


def _record(identity: str, reply: Any) -> StoredRecord:
    language, metadata, context, frames = reply
    values = [] if not language else [StoredValue(("L", b""), text_or_none(language))]
    for kind, flat in ((b"m", metadata), (b"x", context)):
        values += [StoredValue((kind, flat[i]), text_or_none(flat[i + 1])) for i in range(0, len(flat), 2)]
    for index, frame in enumerate(frames):
        header, payload = _split_frame(frame)
        values.append(StoredValue((b"t", b"%d" % index, header), text_or_none(payload)))
    return StoredRecord(identity, tuple(values))


def _split_frame(frame: bytes) -> tuple[bytes, bytes]:
    """A turn frame's header (``<n>:<item id>`` or ``-:``) and its codec-encoded payload."""
    head, _, rest = frame.partition(b":")
    if head == b"-":
        return b"-:", rest
    size = int(head) if head.isdigit() else 0
    return frame[: len(head) + 1 + size], rest[size:]


def _quad(rewrite: Rewrite) -> tuple[bytes, bytes, bytes, bytes]:
    """REWRITE's four arguments; a turn's ref carries its frame header, so old and new are whole frames."""
    ref: tuple[bytes, ...] = rewrite.ref  # type: ignore[assignment]
    prefix = ref[2] if len(ref) > 2 else b""
    return ref[0], ref[1], prefix + rewrite.old.encode("utf-8"), prefix + rewrite.new.encode("utf-8")
