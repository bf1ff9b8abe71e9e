"""Converting between SQLite rows and Session/Turn objects (the Python half of the SQLite schema).

Operational columns are plain integers (milliseconds, counts) that SQL filters on; personal columns
(language, metadata, context, turn payloads) hold the store codec's output, metadata and context as
codec-encoded JSON text. Personal columns are read as BLOBs and decoded here, so that garbage bytes in one
row become a CorruptRecordError naming that row instead of a sqlite3 error that stops a whole listing.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from lkpersist.clock import from_ms, to_ms
from lkpersist.crypto.codec import ValueCodec
from lkpersist.exceptions import CorruptRecordError, DecryptionError
from lkpersist.model.jsonform import compact_json
from lkpersist.model.session import Connection, Device, Session, Turn, turns_from_json

# Row layout shared by every SELECT of a session: the operational part, then (optionally) the personal.
OPS_COLUMNS = (
    "id, identity, joined_at, last_seen, reconnect_count, connected, expires_at, ttl, "
    "greeted_visit, connections, devices, switch_until, schema_version"
)
PERSONAL_COLUMNS = "CAST(language AS BLOB), CAST(metadata AS BLOB), CAST(context AS BLOB)"
ALL_COLUMNS = f"{OPS_COLUMNS}, {PERSONAL_COLUMNS}"
READ_COLUMNS = (
    f"{ALL_COLUMNS}, (SELECT COUNT(*) FROM lkpersist_turns AS t WHERE t.session_id = lkpersist_sessions.id)"
)
"""What ``get`` and listings read: every column and the turn count (a range of the turns' unique index)."""

OPS_FIELDS = (
    "joined_at", "last_seen", "reconnect_count", "connected", "expires_at", "ttl", "deadline",
    "greeted_visit", "connections", "devices", "switch_until", "schema_version",
)
PERSONAL_FIELDS = ("language", "metadata", "context")

# A row rewritten whole (import, reconciliation) keeps its analytics counters only when it is still the same
# session (same joined_at): a replacing import starts them again, uncounted, as a new session's would be.
INSERT_SESSION = (
    f"INSERT INTO lkpersist_sessions (identity, {', '.join(OPS_FIELDS + PERSONAL_FIELDS)}) "
    f"VALUES (:identity, {', '.join(':' + name for name in OPS_FIELDS + PERSONAL_FIELDS)}) "
    "ON CONFLICT (identity) DO UPDATE SET "
    + ", ".join(f"{name} = excluded.{name}" for name in OPS_FIELDS + PERSONAL_FIELDS)
    + ", ".join(
        ["", *(f"{name} = CASE WHEN joined_at = excluded.joined_at THEN {name} ELSE 0 END"
               for name in ("counted_connections", "counted_returns", "counted_turns"))]
    )
    + ", counted_day = CASE WHEN joined_at = excluded.joined_at THEN counted_day END"
    + " RETURNING id"
)
UPDATE_OPS = (
    f"UPDATE lkpersist_sessions SET {', '.join(f'{name} = ?' for name in OPS_FIELDS)} WHERE id = ?"
)
"""Parameters: :func:`ops_values`, then the row id."""
# An arrival that opens a visit also counts it in the session's analytics counters (analytics.py), in the
# same statement: a new session starts them at one connection, a reopened one adds a connection and a return.
_COUNTED_FIELDS = ("counted_connections", "counted_returns", "counted_turns", "counted_day")
INSERT_ARRIVAL = (
    f"INSERT INTO lkpersist_sessions (identity, {', '.join(OPS_FIELDS + PERSONAL_FIELDS + _COUNTED_FIELDS)}) "
    f"VALUES (?, {', '.join('?' for _ in OPS_FIELDS + PERSONAL_FIELDS)}, 1, 0, 0, ?) "
    "ON CONFLICT (identity) DO UPDATE SET "
    + ", ".join(f"{name} = excluded.{name}" for name in OPS_FIELDS + PERSONAL_FIELDS + _COUNTED_FIELDS)
)
"""Parameters: the identity, :func:`ops_values`, :func:`personal_values`, the counted day (or None)."""
UPDATE_VISIT = UPDATE_OPS.replace(
    " WHERE id = ?",
    ", counted_connections = counted_connections + 1, counted_returns = counted_returns + 1, "
    "counted_day = ? WHERE id = ?",
)
"""Parameters: :func:`ops_values`, the counted day, the row id."""
UPDATE_PERSONAL = (
    f"UPDATE lkpersist_sessions SET {', '.join(f'{name} = :{name}' for name in PERSONAL_FIELDS)} "
    "WHERE id = :id"
)

Row = tuple[Any, ...]


def ops_params(session: Session) -> dict[str, Any]:
    """The operational columns of ``session``, ``deadline`` included, as named SQL parameters."""
    return {"identity": session.identity, **dict(zip(OPS_FIELDS, ops_values(session), strict=True))}


def ops_values(session: Session) -> tuple[Any, ...]:
    """:func:`ops_params` without the identity, as positional parameters (``OPS_FIELDS`` order): the
    presence writes' form, which binds without a name lookup per column."""
    expires_at, switch_until = session.expires_at, session.switch_until
    return (
        to_ms(session.joined_at),
        to_ms(session.last_seen),
        session.reconnect_count,
        int(session.connected),
        None if expires_at is None else to_ms(expires_at),
        to_ms(session.ttl),
        to_ms(session.deadline),
        session.greeted_visit,
        _connections_json(session.connections),
        _devices_json(session.devices) if session.devices else "[]",
        None if switch_until is None else to_ms(switch_until),
        session.schema_version,
    )


def personal_params(session: Session, codec: ValueCodec) -> dict[str, Any]:
    """The personal columns of ``session``, passed through the codec."""
    return dict(zip(PERSONAL_FIELDS, personal_values(session, codec), strict=True))


def personal_values(session: Session, codec: ValueCodec) -> tuple[Any, Any, Any]:
    """:func:`personal_params` as positional parameters (``PERSONAL_FIELDS`` order)."""
    return (
        None if session.language is None else codec.encode(session.language),
        codec.encode(_json(session.metadata) if session.metadata else "{}"),
        codec.encode(_json(session.context) if session.context else "{}"),
    )


def session_from_row(row: Row, codec: ValueCodec, *, personal: bool = True) -> Session:
    """Build a Session from an ``ALL_COLUMNS`` or ``READ_COLUMNS`` row (or ``OPS_COLUMNS`` with ``personal=False``).

    Without the personal part, language/metadata/context are left empty: that is enough for the
    lifecycle rules, which never read them, and the caller then writes back only operational columns.
    """
    identity = row[1]
    try:
        session = Session(
            identity=identity,
            joined_at=from_ms(int(row[2])),
            last_seen=from_ms(int(row[3])),
            reconnect_count=int(row[4]),
            connected=bool(row[5]),
            expires_at=None if row[6] is None else from_ms(int(row[6])),
            ttl=from_ms(int(row[7])),
            greeted_visit=int(row[8]),
            connections=_connections(row[9]),
            devices=_devices(row[10]),
            switch_until=None if row[11] is None else from_ms(int(row[11])),
            schema_version=int(row[12]),
        )
        if personal:
            session.language = None if row[13] is None else _decoded(row[13], codec)
            session.metadata = _object(_decoded(row[14], codec))
            session.context = _object(_decoded(row[15], codec))
        if len(row) > 16:
            session.turn_count = int(row[16])
    except DecryptionError as exc:
        raise exc.naming(identity) from exc
    except (ValueError, TypeError, UnicodeDecodeError) as exc:
        raise CorruptRecordError(identity, f"undecodable session data ({type(exc).__name__}: {exc})") from exc
    return session


def _connections_json(connections: tuple[Connection, ...]) -> str:
    """``[[id, since ms, last beat ms], ...]`` as compact JSON (what ``_dumps`` of that list gives), each
    id's JSON string encoded once: the same few connection ids come back on every write."""
    if not connections:
        return "[]"
    return "[" + ",".join(
        f"[{_quoted(c.id)},{to_ms(c.since)},{to_ms(c.last_beat)}]" for c in connections
    ) + "]"


def _devices_json(devices: tuple[Device, ...]) -> str:
    return _dumps([[d.device_id, d.label, to_ms(d.first_seen), to_ms(d.last_seen)] for d in devices])


def _connections(text: str) -> tuple[Connection, ...]:
    if text == "[]":  # what most rows hold (the writers above write none as "[]"): no parse
        return ()
    return tuple(Connection(str(i), from_ms(int(since)), from_ms(int(beat))) for i, since, beat in json.loads(text))


def _devices(text: str) -> tuple[Device, ...]:
    if text == "[]":
        return ()
    return tuple(
        Device(str(i), str(label), from_ms(int(first)), from_ms(int(last))) for i, label, first, last in json.loads(text)
    )


def encode_turn(turn: Turn, codec: ValueCodec) -> str:
    return codec.encode(turn.to_json())


def turn_from_payload(identity: str, payload: Any, codec: ValueCodec) -> Turn:
    try:
        data = json.loads(_decoded(payload, codec))
        if not isinstance(data, dict):
            raise TypeError(f"expected an object, got {type(data).__name__}")
        return Turn.from_dict(data)
    except DecryptionError as exc:
        raise exc.naming(identity) from exc
    except (KeyError, ValueError, TypeError, UnicodeDecodeError) as exc:
        raise CorruptRecordError(identity, f"undecodable turn ({type(exc).__name__}: {exc})") from exc


def turns_from_payloads(identity: str, payloads: list[Any], codec: ValueCodec) -> list[Turn]:
    """:func:`turn_from_payload` for many payloads, parsed at once; a bad one is named as there."""
    try:
        return turns_from_json([_decoded(payload, codec) for payload in payloads])
    except (KeyError, ValueError, TypeError, UnicodeDecodeError, DecryptionError):
        return [turn_from_payload(identity, payload, codec) for payload in payloads]  # raises the precise error


def _decoded(stored: Any, codec: ValueCodec) -> str:
    if not isinstance(stored, bytes):
        raise TypeError(f"expected text, got {type(stored).__name__}")
    return codec.decode(stored.decode("utf-8"))


def _object(text: str) -> dict[str, Any]:
    value = json.loads(text)
    if not isinstance(value, dict):
        raise TypeError(f"expected a JSON object, got {type(value).__name__}")
    return value


_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_quoted = functools.lru_cache(maxsize=1024)(_dumps)


def _json(value: dict[str, Any]) -> str:
    return compact_json(value)
