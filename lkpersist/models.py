"""The session record, its conversation turns, and the presence-aware lifecycle rules.

The lifecycle functions here (``connect_transition`` and friends) are the single statement of what
connect, disconnect and heartbeat do to a record. The memory and SQLite backends run them inside their
own atomic section; the Redis backend runs the same rules in one Lua script (one round trip), and the
shared contract suite in ``tests/stores/test_contract.py`` holds every backend to them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from lkpersist.exceptions import InvalidInputError
from lkpersist.ttl import TTLPolicy

SCHEMA_VERSION = 1
MAX_IDENTITY_BYTES = 65536
DEFAULT_MAX_TURNS = 100

Status = Literal["active", "expired", "all"]
STATUSES: tuple[Status, ...] = ("active", "expired", "all")


def validate_identity(identity: object) -> str:
    """Return ``identity`` when it can be stored exactly; any Unicode is fine, empty or huge is not."""
    if not isinstance(identity, str) or identity == "":
        raise InvalidInputError("identity must be a non-empty string")
    try:
        size = len(identity.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise InvalidInputError("identity is not valid Unicode text") from exc
    if size > MAX_IDENTITY_BYTES:
        raise InvalidInputError(f"identity is {size} bytes; the limit is {MAX_IDENTITY_BYTES}")
    return identity


@dataclass(slots=True)
class Session:
    """One participant's persistent session.

    ``expires_at`` is None while connected: a connected session lives as long as its agent keeps
    refreshing it, and expires ``ttl`` seconds after the last refresh if the agent dies.
    ``disconnect_count`` and ``greeted_epoch`` let several agents agree that a return is greeted once:
    a greeting is owed when no greeting happened since the last disconnect.
    """

    identity: str
    joined_at: float
    last_seen: float
    reconnect_count: int = 0
    language: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    context: dict[str, Any] = field(default_factory=dict)
    connected: bool = False
    expires_at: float | None = None
    ttl: float = 300.0
    disconnect_count: int = 0
    greeted_epoch: int = -1
    schema_version: int = SCHEMA_VERSION

    @property
    def deadline(self) -> float:
        """The moment this session expires unless it is refreshed."""
        if self.connected or self.expires_at is None:
            return self.last_seen + self.ttl
        return self.expires_at

    def is_expired(self, now: float) -> bool:
        return now >= self.deadline

    def matches(self, status: Status, now: float) -> bool:
        if status == "all":
            return True
        return self.is_expired(now) == (status == "expired")

    def to_dict(self) -> dict[str, Any]:
        """The stable JSON form scripts rely on (epoch seconds for times)."""
        return {
            "identity": self.identity,
            "joined_at": self.joined_at,
            "last_seen": self.last_seen,
            "reconnect_count": self.reconnect_count,
            "language": self.language,
            "metadata": self.metadata,
            "context": self.context,
            "connected": self.connected,
            "expires_at": self.expires_at,
            "ttl": self.ttl,
            "disconnect_count": self.disconnect_count,
            "greeted_epoch": self.greeted_epoch,
            "schema_version": self.schema_version,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Session:
        """Build a session from :meth:`to_dict` output; raises KeyError/TypeError/ValueError on bad data."""
        return cls(
            identity=str(data["identity"]),
            joined_at=float(data["joined_at"]),
            last_seen=float(data["last_seen"]),
            reconnect_count=int(data.get("reconnect_count", 0)),
            language=data.get("language"),
            metadata=_as_dict(data.get("metadata") or {}),
            context=_as_dict(data.get("context") or {}),
            connected=bool(data.get("connected", False)),
            expires_at=None if data.get("expires_at") is None else float(data["expires_at"]),
            ttl=float(data.get("ttl", 300.0)),
            disconnect_count=int(data.get("disconnect_count", 0)),
            greeted_epoch=int(data.get("greeted_epoch", -1)),
            schema_version=int(data.get("schema_version", SCHEMA_VERSION)),
        )


def _as_dict(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TypeError(f"expected an object, got {type(value).__name__}")
    return value


@dataclass(frozen=True, slots=True)
class Turn:
    """One conversation item. ``item_id`` (LiveKit's ChatMessage id) makes recording idempotent."""

    role: str
    text: str
    timestamp: float
    item_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"role": self.role, "text": self.text, "timestamp": self.timestamp, "item_id": self.item_id}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Turn:
        item_id = data.get("item_id")
        return cls(
            role=str(data["role"]),
            text=str(data["text"]),
            timestamp=float(data["timestamp"]),
            item_id=None if item_id is None else str(item_id),
        )


@dataclass(frozen=True, slots=True)
class ConnectResult:
    """What ``store.connect`` tells the caller: the session after the connect, and whether it is a return.

    ``was_connected`` says another connection (a repeated event, a second agent) already held the
    session live when this connect arrived.
    """

    session: Session
    returning: bool
    was_connected: bool = False


@dataclass(frozen=True, slots=True)
class CorruptRecord:
    """A record that ``list`` could not decode; listing goes on past it and reports it."""

    identity: str
    reason: str


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a listing; ``next_cursor`` is opaque and None on the last page."""

    items: list[Session | CorruptRecord]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class PurgeResult:
    """How many sessions a purge removed (or would remove, on a dry run)."""

    purged: int
    dry_run: bool = False


EventKind = Literal["created", "returned", "disconnected", "expired", "purged", "deleted"]
EVENT_KINDS: tuple[EventKind, ...] = ("created", "returned", "disconnected", "expired", "purged", "deleted")


@dataclass(frozen=True, slots=True)
class SessionEvent:
    """Something that happened to a session, as the store publishes it (see :mod:`lkpersist.events`).

    Deliberately small: no conversation text, metadata, context or language ever travels in an event.
    ``time`` is epoch seconds from the publishing store's clock; ``reconnect_count`` is the session's
    count at that moment (None when the store no longer knew it, e.g. Redis had already dropped the keys).
    """

    kind: EventKind
    identity: str
    time: float
    reconnect_count: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "identity": self.identity, "time": self.time, "reconnect_count": self.reconnect_count}


# --- lifecycle rules (pure; the one definition of connect / disconnect / heartbeat) -----------------


def connect_transition(
    current: Session | None, identity: str, now: float, policy: TTLPolicy
) -> ConnectResult:
    """Absent or expired: a new session. Otherwise the same session, one more reconnect, connected."""
    if current is None or current.is_expired(now):
        fresh = Session(identity=identity, joined_at=now, last_seen=now, connected=True, ttl=policy.ttl_for(0))
        return ConnectResult(session=fresh, returning=False, was_connected=False)
    count = current.reconnect_count + 1
    # A presence nobody refreshed for presence_timeout belongs to an agent that died: count it as left.
    stale = current.connected and now - current.last_seen >= policy.presence_timeout
    updated = replace(
        current,
        reconnect_count=count,
        last_seen=now,
        connected=True,
        expires_at=None,
        ttl=policy.ttl_for(count),
        disconnect_count=current.disconnect_count + (1 if stale else 0),
    )
    return ConnectResult(session=updated, returning=True, was_connected=current.connected and not stale)


def disconnect_transition(current: Session, now: float) -> Session:
    """Start the countdown: ``expires_at = now + ttl``."""
    return replace(
        current,
        connected=False,
        last_seen=now,
        expires_at=now + current.ttl,
        disconnect_count=current.disconnect_count + 1,
    )


def heartbeat_transition(current: Session, now: float) -> Session:
    """Refresh a live session so it cannot expire while its participant is there."""
    return replace(current, last_seen=now, connected=True, expires_at=None)


def greeting_owed(current: Session) -> bool:
    """A greeting is owed when none happened since the participant last left (or ever)."""
    return current.greeted_epoch < current.disconnect_count


def merge_update(
    current: Session,
    *,
    language: str | None = None,
    metadata: dict[str, Any] | None = None,
    context: dict[str, Any] | None = None,
) -> Session:
    """Shallow-merge metadata and context (a key set to None is removed); replace language when given."""
    return replace(
        current,
        language=current.language if language is None else language,
        metadata=_merged(current.metadata, metadata),
        context=_merged(current.context, context),
    )


def _merged(base: dict[str, Any], changes: dict[str, Any] | None) -> dict[str, Any]:
    if not changes:
        return dict(base)
    result = dict(base)
    for key, value in changes.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = value
    return result
