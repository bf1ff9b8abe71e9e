"""Every Redis key lkpersist touches is built here, and nowhere else.

Layout (``P`` is the prefix, ``B`` the identity's bucket, ``ID`` the encoded identity)::

    P:{bB}:s:ID      hash   the session record (short fields, integer milliseconds)
    P:{bB}:m:ID      hash   metadata, one field per top-level key (codec-encoded JSON)
    P:{bB}:x:ID      hash   context, same form
    P:{bB}:t:ID      list   turns, oldest first (framed: item id outside the encoded payload)
    P:{bB}:k:ID      set    item ids of the stored turns (idempotent appends)
    P:{bB}:d:ID      hash   devices the participant came from (only once one was recorded)
    P:{bB}:seen      zset   bucket index: ID scored by last_seen ms
    P:{bB}:deadline  zset   bucket index: ID scored by deadline ms
    P:lock:NAME      hash   a named lock (``store.lock``), NAME in base64url like ID
    P:{bB}:an:s:H    hash   analytics: one session's event counters, H the identity's keyed hash
    P:an:d:DAY       hash   analytics: the day's counters (Cluster: P:{bB}:an:d:DAY, one per bucket)
    P:an:u:DAY       HLL    analytics: the day's active identity hashes (Cluster: P:{bB}:an:u:DAY)
    P:an:key         string analytics: the secret identities are hashed with, unless configured
    P:events         (pub/sub channel, not a key) session events

``ID`` is the identity's UTF-8 bytes in unpadded base64url: it can never contain ``{ } * ? [ ] :`` or
whitespace, so it cannot break the hash tag, a SCAN pattern or an ACL key pattern, and it decodes back
to the exact identity. The hash tag is the *bucket*, not the identity, so a session and its bucket's
index zsets share a Redis Cluster slot and one Lua script updates them atomically. On a Cluster the
day's analytics keys carry the bucket's tag too (connect updates them in its script, so they must
share its slot); a bucket's identities are its own, so the day's distinct count is the sum of the buckets'.
"""

from __future__ import annotations

import base64
import binascii
import zlib
from typing import NamedTuple

from lkpersist.exceptions import InvalidInputError

DEFAULT_PREFIX = "lkpersist"
BUCKETS = 256
_PACKED_CACHE_SIZE = 4096
_RECORD_KINDS = (b":s:", b":m:", b":x:", b":t:", b":k:", b":d:")  # IdentityKeys' record keys, in order
_READ_KINDS = tuple(kind for kind in _RECORD_KINDS if kind != b":k:")  # the same but the item ids
_FORBIDDEN_IN_PREFIX = set("{}*?[]\\ \t\r\n")


class IdentityKeys(NamedTuple):
    """The keys of one identity, in the order every per-identity Lua script expects them (KEYS[1..8]).

    The devices hash comes last so the scripts written before it kept their KEYS numbers."""

    session: str
    metadata: str
    context: str
    turns: str
    item_ids: str
    seen: str
    deadline: str
    devices: str


class KeyLayout:
    """Builds keys for one prefix; the only place that knows the key format."""

    def __init__(self, prefix: str = DEFAULT_PREFIX, buckets: int = BUCKETS) -> None:
        self.prefix = check_prefix(prefix)
        self.buckets = buckets
        self._packed: dict[str, tuple[bytes, tuple[bytes, ...]]] = {}

    def encode_identity(self, identity: str) -> str:
        """The key-safe, reversible form of ``identity``."""
        return base64.urlsafe_b64encode(identity.encode("utf-8")).rstrip(b"=").decode("ascii")

    @staticmethod
    def decode_identity(encoded: str | bytes) -> str:
        """The identity back from its encoded form; raises ValueError when it is not one of ours."""
        raw = encoded.encode("ascii") if isinstance(encoded, str) else encoded
        try:
            return base64.urlsafe_b64decode(raw + b"=" * (-len(raw) % 4)).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise ValueError(f"not an encoded identity: {raw[:40]!r}") from exc

    def bucket_of(self, encoded: str) -> int:
        return zlib.crc32(encoded.encode("ascii")) % self.buckets

    def bucket_tag(self, bucket: int) -> str:
        return f"{self.prefix}:{{b{bucket}}}"

    def seen_key(self, bucket: int) -> str:
        return f"{self.bucket_tag(bucket)}:seen"

    def deadline_key(self, bucket: int) -> str:
        return f"{self.bucket_tag(bucket)}:deadline"

    def keys_for_encoded(self, encoded: str) -> IdentityKeys:
        bucket = self.bucket_of(encoded)
        tag = self.bucket_tag(bucket)
        return IdentityKeys(
            session=f"{tag}:s:{encoded}",
            metadata=f"{tag}:m:{encoded}",
            context=f"{tag}:x:{encoded}",
            turns=f"{tag}:t:{encoded}",
            item_ids=f"{tag}:k:{encoded}",
            seen=self.seen_key(bucket),
            deadline=self.deadline_key(bucket),
            devices=f"{tag}:d:{encoded}",
        )

    def keys_for(self, identity: str) -> tuple[str, IdentityKeys]:
        """The encoded identity (the index member) and every key of ``identity``."""
        encoded = self.encode_identity(identity)
        return encoded, self.keys_for_encoded(encoded)


    def analytics_day_keys(self, bucket: int, day: str, sharded: bool) -> tuple[str, str]:
        """The day's counters hash and active-identities HyperLogLog: the bucket's own when ``sharded``."""
        base = f"{self.bucket_tag(bucket)}:an" if sharded else f"{self.prefix}:an"
        return f"{base}:d:{day}", f"{base}:u:{day}"

    def analytics_session_key(self, bucket: int, identity_hash: str) -> str:
        """One session's analytics counters, in its identity's bucket (so its scripts reach it)."""
        return f"{self.bucket_tag(bucket)}:an:s:{identity_hash}"

    @property
    def analytics_secret_key(self) -> str:
        return f"{self.prefix}:an:key"

    @property
    def events_channel(self) -> str:
        """The pub/sub channel of session events (an ACL user needs ``&<prefix>:events``)."""
        return f"{self.prefix}:events"

    def lock_key(self, name: str) -> str:
        """The key of one named lock; the name is encoded like an identity, so any text is safe."""
        return f"{self.prefix}:lock:{self.encode_identity(name)}"

    def record_keys(self, bucket: int, members: list[bytes]) -> list[bytes]:
        """The six record keys (session, metadata, context, turns, item ids, devices) of every member of one
        bucket, flattened, as bytes (purge sends thousands at once)."""
        return self._member_keys(bucket, members, _RECORD_KINDS)

    def read_keys(self, bucket: int, members: list[bytes]) -> list[bytes]:
        """:meth:`record_keys` but the item ids (session, metadata, context, turns, devices): what an export
        reads (each key is one more argument for the client to pack and for Redis to parse)."""
        return self._member_keys(bucket, members, _READ_KINDS)

    def _member_keys(self, bucket: int, members: list[bytes], kinds: tuple[bytes, ...]) -> list[bytes]:
        tag = self.bucket_tag(bucket).encode("utf-8")
        tagged = [tag + kind for kind in kinds]
        return [kind + member for member in members for kind in tagged]

    def turn_list_keys(self, bucket: int, members: list[bytes]) -> list[bytes]:
        """The turns-list key of every member of one bucket, as bytes (census samples thousands)."""
        kind = self.bucket_tag(bucket).encode("utf-8") + b":t:"
        return [kind + member for member in members]

    def packed_keys_for(self, identity: str) -> tuple[bytes, tuple[bytes, ...]]:
        """``keys_for`` as bytes, cached for recently used identities (the hot path of every script call)."""
        packed = self._packed.get(identity)
        if packed is None:
            encoded, keys = self.keys_for(identity)
            packed = (encoded.encode("ascii"), tuple(key.encode("utf-8") for key in keys))
            if len(self._packed) >= _PACKED_CACHE_SIZE:
                self._packed.clear()
            self._packed[identity] = packed
        return packed

    def packed_turn_keys(self, identity: str) -> tuple[bytes, bytes, bytes]:
        """The session hash, turns list and item-id set of ``identity`` as bytes: all a turn touches."""
        keys = self.packed_keys_for(identity)[1]
        return keys[0], keys[3], keys[4]


def check_prefix(prefix: str) -> str:
    """A prefix must not break hash tags, glob patterns (SCAN, ACL ``~prefix*``) or the separator."""
    if not prefix or _FORBIDDEN_IN_PREFIX & set(prefix):
        raise InvalidInputError(
            f"invalid Redis key prefix {prefix!r}: use a non-empty name without {{ }} * ? [ ] \\ or spaces"
        )
    return prefix
