"""Converting between Redis replies and Session/Turn objects (the Python half of the key layout).

Personal values (language, metadata and context values, turn payloads) go through the store's codec;
operational fields are plain integers the Lua scripts read. Anything that does not decode raises
CorruptRecordError naming the identity.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from lkpersist.clock import to_ms
from lkpersist.crypto.codec import ValueCodec
from lkpersist.exceptions import CorruptRecordError, DecryptionError, InvalidInputError
from lkpersist.model.session import (
    LEGACY_CONNECTION,
    SCHEMA_VERSION,
    Connection,
    Device,
    Session,
    Turn,
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


def session_hash_fields(session: Session, codec: ValueCodec) -> list[Any]:
    """The session hash as the scripts keep it, flat (field, value, ...): what :func:`session_from_reply`
    reads back. ``e`` only while disconnected, ``L`` only with a language, ``w`` only while a switch is
    pending, ``D`` only with devices (their hash is :func:`device_hash_fields`), one ``c:<id>`` per connection."""
    fields: list[Any] = [
        b"j", to_ms(session.joined_at), b"l", to_ms(session.last_seen), b"r", session.reconnect_count,
        b"c", b"1" if session.connected else b"0", b"t", to_ms(session.ttl), b"G", session.greeted_visit,
        b"v", session.schema_version,
    ]
    if session.language is not None:
        fields += [b"L", codec.encode(session.language)]
    if not session.connected and session.expires_at is not None:
        fields += [b"e", to_ms(session.expires_at)]
    if session.switch_until is not None:
        fields += [b"w", to_ms(session.switch_until)]
    if session.devices:
        fields += [b"D", b"1"]
    for connection in session.connections:
        fields += [b"c:" + connection.id.encode("utf-8"), b"%d,%d" % (to_ms(connection.since), to_ms(connection.last_beat))]
    return fields


def device_hash_fields(devices: Sequence[Device]) -> list[bytes]:
    """The devices hash, flat: device id, ``<first ms>,<last ms>,<label>`` (the label may hold commas)."""
    return [part for d in devices for part in (
        d.device_id.encode("utf-8"), b"%d,%d,%s" % (to_ms(d.first_seen), to_ms(d.last_seen), d.label.encode("utf-8")))]


def json_hash_fields(mapping: dict[str, Any], codec: ValueCodec) -> list[Any]:
    """A metadata or context dict as its hash, flat: one field per key, each value JSON then the codec."""
    return [part for key, value in mapping.items() for part in (key, encode_json_value(codec, value))]


def session_from_reply(identity: str, reply: Sequence[Any], codec: ValueCodec) -> Session | None:
    """Build a Session from a {session, metadata, context, devices[, turn count]} reply of whole hashes,
    flat; None without a session hash."""
    if not reply[0]:
        return None
    try:
        values = hash_values(pairs(reply[0]))
    except (KeyError, ValueError, TypeError) as exc:
        raise CorruptRecordError(identity, f"undecodable session data ({type(exc).__name__}: {exc})") from exc
    session = session_from_values(identity, values, reply[1], reply[2], reply[3], codec)
    if len(reply) > 4:
        session.turn_count = int(reply[4])
    return session


def hash_values(fields: dict[bytes, bytes]) -> list[Any]:
    """A session hash's fields as the presence scripts' ``values(s)`` gives them (see presence.py):
    j, l, r, connected, t, G, v, e, w, L, connections flat. A hash written before presence per connection
    (no ``G``) reads as the migration rule says, like the scripts' ``load``."""
    get = fields.get
    connections = [part for key, value in fields.items() if key[:2] == b"c:" for part in (key[2:], value)]
    greeted: Any = get(b"G")
    if greeted is None:
        greeted = legacy_greeted_visit(int(fields[b"r"]), int(fields[b"g"]), int(fields[b"d"]), get(b"c") == b"1")
        if get(b"c") == b"1" and not connections:
            connections = [LEGACY_CONNECTION.encode(), fields[b"l"] + b"," + fields[b"l"]]
    return [fields[b"j"], fields[b"l"], fields[b"r"], get(b"c") == b"1", fields[b"t"], greeted, get(b"v"),
            get(b"e"), get(b"w"), get(b"L"), connections]


def session_from_values(
    identity: str, values: Sequence[Any], metadata: Flat, context: Flat, devices: Flat, codec: ValueCodec
) -> Session:
    """Build a Session from :func:`hash_values` (or a presence script's reply) and the metadata, context and
    devices hashes flat; anything undecodable raises CorruptRecordError naming ``identity``."""
    try:
        return _session(identity, values, _json_hash(metadata, codec), _json_hash(context, codec), devices, codec)
    except DecryptionError as exc:
        raise exc.naming(identity) from exc
    except (KeyError, ValueError, TypeError, UnicodeDecodeError, AttributeError) as exc:
        raise CorruptRecordError(identity, f"undecodable session data ({type(exc).__name__}: {exc})") from exc


def _session(
    identity: str, values: Sequence[Any], metadata: dict[str, Any], context: dict[str, Any], devices: Flat,
    codec: ValueCodec,
) -> Session:
    joined, last, count, connected, ttl, greeted, schema, expires, switch, language, connections = values
    return Session(
        identity=identity,
        joined_at=int(joined) / 1000,
        last_seen=int(last) / 1000,
        reconnect_count=int(count),
        language=None if language is None else codec.decode(language.decode("utf-8")),
        metadata=metadata,
        context=context,
        connected=bool(connected),
        expires_at=None if expires is None else int(expires) / 1000,
        ttl=int(ttl) / 1000,
        greeted_visit=int(greeted),
        connections=_connections(connections) if connections else (),
        devices=_devices(devices) if devices else (),
        switch_until=None if switch is None else int(switch) / 1000,
        schema_version=SCHEMA_VERSION if schema is None else int(schema),
    )


def _connections(flat: Flat) -> tuple[Connection, ...]:
    """``c:`` fields flat (id, ``<since ms>,<beat ms>``, ...) as Connections, oldest first (then by id,
    for a stable order)."""
    if len(flat) == 2:  # one connection: the usual case, nothing to sort
        since, beat, _ = _entry(flat[1])
        return (Connection(flat[0].decode("utf-8"), since, beat),)
    found = []
    for at in range(0, len(flat), 2):
        since, beat, _ = _entry(flat[at + 1])
        found.append(Connection(flat[at].decode("utf-8"), since, beat))
    return tuple(sorted(found, key=lambda c: (c.since, c.id)))


def _devices(flat: Flat) -> tuple[Device, ...]:
    """The devices hash flat (id, ``<first ms>,<last ms>,<label>``, ...) as Devices, the most recently seen
    last (the model's order)."""
    found = []
    for at in range(0, len(flat), 2):
        first, last, label = _entry(flat[at + 1])
        found.append(Device(flat[at].decode("utf-8"), (label or b"").decode("utf-8"), first, last))
    return tuple(sorted(found, key=lambda d: (d.last_seen, d.first_seen, d.device_id)))


def _entry(value: bytes) -> tuple[float, float, bytes | None]:
    """``<ms>,<ms>[,<label>]`` as seconds and the label; int() refuses anything else (ValueError)."""
    parts = value.split(b",", 2)
    if len(parts) < 2 or not (parts[0].isdigit() and parts[1].isdigit()):
        raise ValueError(f"malformed presence entry {value[:40]!r}")
    return int(parts[0]) / 1000, int(parts[1]) / 1000, parts[2] if len(parts) > 2 else None


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
