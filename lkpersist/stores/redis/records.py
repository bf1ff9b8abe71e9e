"""Converting between Redis replies and Session/Turn objects (the Python half of the key layout).

Personal values (language, metadata and context values, turn payloads) go through the store's codec;
operational fields are plain integers the Lua scripts read. Anything that does not decode raises
CorruptRecordError naming the identity.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from lkpersist.clock import from_ms, to_ms
from lkpersist.crypto.codec import ValueCodec
from lkpersist.exceptions import CorruptRecordError, DecryptionError, InvalidInputError
from lkpersist.model.session import (
    SCHEMA_VERSION,
    Session,
    Turn,
    legacy_connections,
    legacy_greeted_visit,
    turns_from_json,
)

Flat = Sequence[bytes]
_STRICT_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode


def pairs(flat: Flat) -> dict[bytes, bytes]:
    """An HGETALL reply as returned by Lua (field, value, field, value, ...) as a dict."""
    items = iter(flat)
    return dict(zip(items, items, strict=True))


def encode_json_value(codec: ValueCodec, value: Any) -> str:
    """A metadata/context value as stored: JSON, then the codec."""
    try:
        text = _STRICT_JSON(value)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"metadata and context values must be JSON-serialisable: {exc}") from exc
    return codec.encode(text)


SESSION_FIELDS = (b"j", b"l", b"r", b"c", b"t", b"d", b"g", b"v", b"L", b"e")
"""The session hash's fields in the order the scripts read them (``load`` in _redis_lua) and connect
returns them; the first seven are required."""
_REQUIRED = 7


def session_hash_fields(session: Session, codec: ValueCodec) -> list[Any]:
    """The session hash as the scripts keep it, flat (field, value, ...): the inverse of session_from_fields.

    ``e`` only while disconnected and ``L`` only with a language, as the per-operation scripts write them."""
    expires = None if session.connected or session.expires_at is None else to_ms(session.expires_at)
    # d/g: the single-connection scripts' greeting counters, the inverse of legacy_greeted_visit
    values = (
        to_ms(session.joined_at), to_ms(session.last_seen), session.reconnect_count,
        "1" if session.connected else "0", to_ms(session.ttl), session.visit + (0 if session.connected else 1),
        session.greeted_visit, session.schema_version,
        None if session.language is None else codec.encode(session.language), expires,
    )
    return [part for name, value in zip(SESSION_FIELDS, values, strict=True) if value is not None
            for part in (name, value)]


def json_hash_fields(mapping: dict[str, Any], codec: ValueCodec) -> list[Any]:
    """A metadata or context dict as its hash, flat: one field per key, each value JSON then the codec."""
    return [part for key, value in mapping.items() for part in (key, encode_json_value(codec, value))]


def session_from_reply(identity: str, reply: Sequence[Any], codec: ValueCodec) -> Session | None:
    """Build a Session from a {session, metadata, context[, turn count]} reply; None without a session hash."""
    fields = pairs(reply[0])
    if not fields:
        return None
    session = session_from_fields(identity, [fields.get(name) for name in SESSION_FIELDS], reply[1], reply[2], codec)
    if len(reply) > 3:
        session.turn_count = int(reply[3])
    return session


def session_from_fields(
    identity: str, values: Sequence[bytes | None], metadata: Flat, context: Flat, codec: ValueCodec
) -> Session:
    """Build a Session from the hash's values in SESSION_FIELDS order (None where absent) and the
    metadata/context hashes flat; anything undecodable raises CorruptRecordError naming ``identity``."""
    try:
        return _session(identity, values, _json_hash(metadata, codec), _json_hash(context, codec), codec)
    except DecryptionError as exc:
        raise exc.naming(identity) from exc
    except (KeyError, ValueError, TypeError, UnicodeDecodeError) as exc:
        raise CorruptRecordError(identity, f"undecodable session data ({type(exc).__name__}: {exc})") from exc


def _session(
    identity: str, values: Sequence[bytes | None], metadata: dict[str, Any], context: dict[str, Any],
    codec: ValueCodec,
) -> Session:
    joined, last, count, connected, ttl, disconnects, greeted, schema, language, expires = values
    if None in values[:_REQUIRED]:
        raise KeyError(SESSION_FIELDS[values.index(None)])
    return Session(
        identity=identity,
        joined_at=from_ms(int(joined)),  # type: ignore[arg-type]
        last_seen=from_ms(int(last)),  # type: ignore[arg-type]
        reconnect_count=int(count),  # type: ignore[arg-type]
        language=None if language is None else codec.decode(language.decode("utf-8")),
        metadata=metadata,
        context=context,
        connected=connected == b"1",
        expires_at=None if expires is None else from_ms(int(expires)),
        ttl=from_ms(int(ttl)),  # type: ignore[arg-type]
        greeted_visit=legacy_greeted_visit(int(count), int(greeted), int(disconnects), connected == b"1"),  # type: ignore[arg-type]
        connections=legacy_connections(connected == b"1", from_ms(int(last))),  # type: ignore[arg-type]
        schema_version=SCHEMA_VERSION if schema is None else int(schema),
    )


def _json_hash(flat: Flat, codec: ValueCodec) -> dict[str, Any]:
    if not flat:
        return {}
    items = iter(flat)
    return {
        key.decode("utf-8"): json.loads(codec.decode(value.decode("utf-8")))
        for key, value in zip(items, items, strict=True)
    }


def frame_turn(turn: Turn, codec: ValueCodec) -> bytes:
    """``<id byte length>:<id><payload>`` (or ``-:<payload>``): Lua finds the item id without decoding."""
    payload = codec.encode(turn.to_json()).encode("utf-8")
    if turn.item_id is None:
        return b"-:" + payload
    item_id = turn.item_id.encode("utf-8")
    return b"%d:%s%s" % (len(item_id), item_id, payload)


def turns_from_frames(identity: str, frames: Sequence[bytes], codec: ValueCodec) -> list[Turn]:
    """:func:`turn_from_frame` for many frames, parsed at once; a bad one is named as there."""
    try:
        return turns_from_json([codec.decode(_payload(frame).decode("utf-8")) for frame in frames])
    except (KeyError, ValueError, TypeError, UnicodeDecodeError, DecryptionError):
        return [turn_from_frame(identity, frame, codec) for frame in frames]  # raises the precise error


def _payload(frame: bytes) -> bytes:
    head, _, rest = frame.partition(b":")
    return rest if head == b"-" else rest[int(head):]


def turn_from_frame(identity: str, frame: bytes, codec: ValueCodec) -> Turn:
    try:
        return Turn.from_dict(json.loads(codec.decode(_payload(frame).decode("utf-8"))))
    except DecryptionError as exc:
        raise exc.naming(identity) from exc
    except (KeyError, ValueError, TypeError, UnicodeDecodeError) as exc:
        raise CorruptRecordError(identity, f"undecodable turn ({type(exc).__name__}: {exc})") from exc
