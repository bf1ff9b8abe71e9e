"""The export format, version 1: NDJSON, UTF-8, one JSON object per line.

Line 1 is the header::

    {"format": "lkpersist-sessions", "version": 1, "exported_at": 1800000000.0, "lkpersist": "0.1.0",
     "status": "active"}

Every further line is one session with its turns, oldest first::

    {"session": {<Session.to_dict(): identity, joined_at, last_seen, reconnect_count, language, metadata,
                 context, connected, expires_at, ttl, greeted_visit, connections (always empty: live
                 connections never travel), devices, switch_until, schema_version>},
     "turns": [{"role": "user", "text": "...", "timestamp": 1800000000.5, "item_id": "item_..."}, ...]}

Times are epoch seconds. A session leaves detached from its store's presence (``connected`` false, the
countdown running from its last heartbeat; see :func:`lkpersist.model.transfer.detached`): a participant
connected here is not connected in the store the file is imported into. Readers ignore fields they do not
know, so a later version adding session fields stays readable (and a session line of the release before
per-connection presence, with ``disconnect_count`` / ``greeted_epoch``, reads as the same greeting state);
a file whose version is newer than this
reader's is refused. Values are plaintext even when the store encrypts at rest: the file holds personal data.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lkpersist import __version__
from lkpersist.exceptions import InvalidInputError
from lkpersist.model.jsonform import (
    acyclic_json,
    canonical_turns,
    compact_json,
    finite_times,
    parse_json,
    turn_objects_json,
)
from lkpersist.model.session import Session, Status, Turn, validate_identity
from lkpersist.model.transfer import SessionRecord, detached
from lkpersist.stores.bulk import plain_json_values

try:
    import orjson

    _orjson: Any = orjson
    _EXACT = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_SUBCLASS
except ImportError:  # the fast extra is optional
    _orjson, _EXACT = None, 0

FORMAT_NAME = "lkpersist-sessions"
FORMAT_VERSION = 1
CHAT_ROLES = ("developer", "system", "user", "assistant")
"""The roles livekit-agents' ChatMessage accepts; turns of other roles are left out of a chat-ctx document."""


class FormatError(InvalidInputError):
    """A file or line that is not in the export format; ``line`` is its 1-based number when known."""

    def __init__(self, reason: str, line: int | None = None) -> None:
        self.reason = reason
        self.line = line
        super().__init__(reason if line is None else f"line {line}: {reason}")


@dataclass(frozen=True, slots=True)
class Header:
    version: int
    exported_at: float | None
    status: str | None


def header_line(exported_at: float, status: Status) -> str:
    return _dumps({
        "format": FORMAT_NAME, "version": FORMAT_VERSION, "exported_at": exported_at, "lkpersist": __version__,
        "status": status,
    })


def record_line(record: SessionRecord) -> str:
    """One session and its turns, detached from this store's presence (values read from a store: acyclic)."""
    rendered = record.rendered
    if rendered is not None and _orjson is not None:
        line = _rendered_line(record, rendered)
        if line is not None:
            return line
    turns = record.turn_dicts
    session = detached(record.session).to_dict()
    session["turn_count"] = len(turns)  # what the line carries (a reader recounts; stores never keep it)
    if record.plain_session and _orjson is not None and finite_times(turns):
        try:
            return str(_orjson.dumps({"session": session, "turns": turns}, option=_EXACT), "utf-8")
        except TypeError:  # a turn orjson refuses (a lone surrogate): the ordinary way says what it is
            pass
    return f'{{"session":{session_json(session)},"turns":{turn_objects_json(turns)}}}'


def _rendered_line(record: SessionRecord, payloads: Sequence[bytes]) -> str | None:
    """:func:`record_line` of a record that vouches for its values (see :attr:`SessionRecord.rendered`):
    the session written by orjson without :func:`session_json`'s search of metadata and context, the
    turns as stored. None when a session field is still not what orjson writes as the stdlib does (see
    :func:`session_json`; a record is only vouched for as it was read)."""
    session = detached(record.session).to_dict()
    session["turn_count"] = len(payloads)
    try:
        metadata, context = _orjson.dumps(session["metadata"]), _orjson.dumps(session["context"])
        session["metadata"], session["context"] = _orjson.Fragment(metadata), _orjson.Fragment(context)
        text = _orjson.dumps(session, option=_EXACT)
    except TypeError:  # nested deeper than orjson writes, or a session field it refuses
        return None
    if text.count(b"null") != list(session.values()).count(None) + metadata.count(b"null") + context.count(b"null"):
        return None
    return str(b"".join((b'{"session":', text, b',"turns":[', b",".join(payloads), b"]}")), "utf-8")


def session_json(session: dict[str, Any]) -> str:
    """``acyclic_json(session)``, by orjson wherever it writes the same values (an export writes one per
    session; orjson is several times faster). Metadata and context may hold anything a caller stored, so
    they must be plain JSON values (:func:`~lkpersist.stores.bulk.plain_json_values`); the other fields are
    the session's own, which orjson writes as the stdlib does or refuses (a date, a dataclass, a subclass:
    passed through to fail), except a non-finite float, which it writes as null: a null more than the
    session's own None fields sends the session to the stdlib (so does a text "null", harmlessly)."""
    if _orjson is None or not (plain_json_values(session["metadata"]) and plain_json_values(session["context"])):
        return acyclic_json(session)
    try:
        text = str(_orjson.dumps(session, option=_EXACT), "utf-8")
    except TypeError:  # an integer beyond 64 bits, a lone surrogate, a type the stdlib may write differently
        return acyclic_json(session)
    return text if text.count("null") == list(session.values()).count(None) else acyclic_json(session)


def parse_header(text: str) -> Header:
    """The first line of a file, checked: ours, and a version this reader knows."""
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if not isinstance(data, dict) or data.get("format") != FORMAT_NAME:
        raise FormatError(f"not an lkpersist export (the first line must be the {FORMAT_NAME!r} header)", 1)
    version = data.get("version")
    if not isinstance(version, int) or version < 1:
        raise FormatError("the header has no valid format version", 1)
    if version > FORMAT_VERSION:
        raise FormatError(f"format version {version} is newer than this lkpersist reads ({FORMAT_VERSION}); upgrade", 1)
    exported_at = data.get("exported_at")
    return Header(version, float(exported_at) if isinstance(exported_at, int | float) else None, data.get("status"))


def parse_record(text: str, line: int) -> SessionRecord:
    """One record line; anything truncated, edited out of shape or not storable is a FormatError naming the line.

    A line whose turns are exactly as this version writes them keeps them as dicts (no ``Turn`` per turn);
    any other is read again by the standard library and its turns one by one, as ``Turn.from_dict`` reads them.
    """
    try:
        data = parse_json(text, unchecked="turns")
    except json.JSONDecodeError as exc:
        reason = "truncated line" if not text.rstrip().endswith("}") else f"invalid JSON ({exc.msg})"
        raise FormatError(reason, line) from None
    if not isinstance(data, dict) or not isinstance(data.get("session"), dict):
        raise FormatError('expected an object with a "session" object', line)
    dicts = canonical_turns(data.get("turns", []))
    if dicts is None:
        data = json.loads(text)  # orjson read it, so the stdlib does; now every value is the stdlib's
        turns = data.get("turns", [])
        if not isinstance(turns, list) or not all(isinstance(turn, dict) for turn in turns):
            raise FormatError('"turns" must be a list of objects', line)
    try:
        session = Session.from_dict(data["session"])
        validate_identity(session.identity)
        _check_session(session)
        if dicts is not None:
            return SessionRecord.of_turn_dicts(session, dicts)
        return SessionRecord(session, tuple(Turn.from_dict(turn) for turn in turns))
    except KeyError as exc:
        raise FormatError(f"missing field {exc}", line) from None
    except (TypeError, ValueError) as exc:
        raise FormatError(f"invalid value ({exc})", line) from None


def _check_session(session: Session) -> None:
    if session.reconnect_count < 0 or session.ttl <= 0 or session.last_seen < session.joined_at - 1:
        raise ValueError("counts must not be negative, ttl must be positive, last_seen not before joined_at")
    if session.language is not None and not isinstance(session.language, str):
        raise TypeError("language must be text or null")


def chat_ctx_document(record: SessionRecord) -> dict[str, Any]:
    """The session's turns as ``ChatContext.to_dict(exclude_timestamp=False)`` writes them, so
    ``ChatContext.from_dict`` loads them directly (ids kept; a turn without one gets a new id there)."""
    items = []
    for turn in record.turns:
        if turn.role not in CHAT_ROLES:
            continue
        item: dict[str, Any] = {"type": "message", "role": turn.role, "content": [turn.text],
                                "created_at": turn.timestamp}
        if turn.item_id is not None:
            item["id"] = turn.item_id
        items.append(item)
    return {"items": items}


def _dumps(value: Any) -> str:
    return compact_json(value)


__all__ = [
    "CHAT_ROLES",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "FormatError",
    "Header",
    "chat_ctx_document",
    "header_line",
    "parse_header",
    "parse_record",
    "record_line",
    "session_json",
]
