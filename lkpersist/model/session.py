"""The session record and its conversation turns: what lkpersist keeps per participant identity.

A :class:`Session` holds the operational fields every backend stores plainly (times as epoch seconds,
counts, presence) and the personal ones the store codec encodes (language, metadata, context). Turns
are kept beside it, capped. The rules that change a session live in :mod:`lkpersist.model.lifecycle`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from lkpersist.exceptions import InvalidInputError
from lkpersist.model.jsonform import parse_turn_objects, turn_objects_json

SCHEMA_VERSION = 1
MAX_IDENTITY_BYTES = 65536
DEFAULT_MAX_TURNS = 500
"""The hard ceiling of turns kept per session. The conversation itself is compacted much earlier, at the
summariser's cap (:class:`lkpersist.agent.summaries.Summaries`, 100 by default): the room between the two
is where turns wait, never dropped, while a summary that failed is retried."""
LEGACY_CONNECTION = "-"
"""The connection id of the single-connection form (``connect`` / ``disconnect`` / ``heartbeat``), and of
a record written before presence was tracked per connection."""
SUMMARY_KEY = "summary"
"""The context key of the running summary of the turns compacted away (``compact_turns`` sets it)."""
MAX_SUMMARY_CHARS = 20_000


Status = Literal["active", "expired", "all"]
"""A listing filter: live sessions, expired ones not yet purged, or both."""
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
    Presence is kept per connection (:mod:`lkpersist.model.presence`): ``connections`` are the live ones
    when the session was read, ``connected`` says whether there is any, ``reconnect_count`` counts visits
    after the first, and ``greeted_visit`` is the last visit whose greeting was taken (so several agents
    agree a visit is greeted once). ``devices`` are the ones the participant came from, newest last;
    ``switch_until`` is set while a device switch may still continue the visit.
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
    greeted_visit: int = 0
    connections: tuple[Connection, ...] = ()
    devices: tuple[Device, ...] = ()
    switch_until: float | None = None
    schema_version: int = SCHEMA_VERSION
    turn_count: int | None = field(default=None, compare=False)
    """How many turns the store held for this session when it was read (``get``, listings: every backend
    counts them in the same read); None from operations that do not count (connect, update, ...)."""

    @property
    def visit(self) -> int:
        """The number of the current (or last) visit: 1 for the first."""
        return self.reconnect_count + 1

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
            "greeted_visit": self.greeted_visit,
            "connections": [c.to_dict() for c in self.connections],
            "devices": [d.to_dict() for d in self.devices],
            "switch_until": self.switch_until,
            "schema_version": self.schema_version,
            "turn_count": self.turn_count,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Session:
        """Build a session from :meth:`to_dict` output; raises KeyError/TypeError/ValueError on bad data."""
        get = data.get  # an import reads one per line: the optional fields looked up once each
        count, connected, last_seen = int(get("reconnect_count", 0)), bool(get("connected", False)), \
            float(data["last_seen"])
        expires_at, switch_until, turn_count, devices = get("expires_at"), get("switch_until"), get("turn_count"), \
            get("devices")
        return cls(
            identity=str(data["identity"]),
            joined_at=float(data["joined_at"]),
            last_seen=last_seen,
            reconnect_count=count,
            language=get("language"),
            metadata=_as_dict(get("metadata") or {}),
            context=_as_dict(get("context") or {}),
            connected=connected,
            expires_at=None if expires_at is None else float(expires_at),
            ttl=float(get("ttl", 300.0)),
            greeted_visit=_greeted_visit(data, count),
            connections=_connections(data, connected, last_seen),
            devices=tuple(Device.from_dict(_as_dict(d)) for d in devices) if devices else (),
            switch_until=None if switch_until is None else float(switch_until),
            schema_version=int(get("schema_version", SCHEMA_VERSION)),
            turn_count=None if turn_count is None else int(turn_count),
        )


def legacy_greeted_visit(reconnect_count: int, greeted_epoch: int, disconnect_count: int, connected: bool) -> int:
    """``greeted_visit`` of a record from the release that counted disconnects instead of visits.

    That release set ``greeted_epoch = disconnect_count`` at a greeting and added one to
    ``disconnect_count`` at each leave, so the visits left ungreeted are the leaves since the last
    greeting (less the one that ended the visit, when disconnected): a greeting stays owed exactly when it
    was owed there. (Written back the same way, ``greeted_visit`` reads back exactly.)"""
    ungreeted = disconnect_count - (0 if connected else 1) - greeted_epoch
    return max(0, reconnect_count + 1 - max(0, ungreeted))


def legacy_connections(connected: bool, last_seen: float) -> tuple[Connection, ...]:
    """The connections of a record from before per-connection presence: one ``-``, beating at last_seen."""
    return (Connection(LEGACY_CONNECTION, last_seen, last_seen),) if connected else ()


def _greeted_visit(data: dict[str, Any], reconnect_count: int) -> int:
    if "greeted_visit" in data:
        return int(data["greeted_visit"])
    epoch, disconnects = int(data.get("greeted_epoch", -1)), int(data.get("disconnect_count", 0))
    return legacy_greeted_visit(reconnect_count, epoch, disconnects, bool(data.get("connected", False)))


def _connections(data: dict[str, Any], connected: bool, last_seen: float) -> tuple[Connection, ...]:
    if "connections" in data:
        connections = data["connections"]
        return tuple(Connection.from_dict(_as_dict(c)) for c in connections) if connections else ()
    return legacy_connections(connected, last_seen)


@dataclass(frozen=True, slots=True)
class Connection:
    """One live connection serving a session: a controller / agent job, with its own heartbeat."""

    id: str
    since: float
    last_beat: float

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "since": self.since, "last_beat": self.last_beat}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Connection:
        return cls(str(data["id"]), float(data["since"]), float(data["last_beat"]))


@dataclass(frozen=True, slots=True)
class Device:
    """A device the participant came from (bounded, escaped text: see ``DeviceSeen.bounded``)."""

    device_id: str
    label: str
    first_seen: float
    last_seen: float

    def to_dict(self) -> dict[str, Any]:
        return {"device_id": self.device_id, "label": self.label, "first_seen": self.first_seen,
                "last_seen": self.last_seen}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Device:
        return cls(str(data["device_id"]), str(data.get("label", "")), float(data["first_seen"]),
                   float(data["last_seen"]))


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
        return turn_objects_json(self.to_dict())

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Turn:
        role, text, timestamp, item_id = data["role"], data["text"], data["timestamp"], data.get("item_id")
        if type(timestamp) is not float:
            timestamp = float(timestamp)
        if type(role) is not str or type(text) is not str or not (item_id is None or type(item_id) is str):
            role, text, item_id = str(role), str(text), None if item_id is None else str(item_id)
        return cls(role, text, timestamp, item_id)


def turns_from_json(texts: list[str]) -> list[Turn]:
    """Many turns from their :meth:`Turn.to_json` texts with one JSON parse (a page holds thousands).

    Raises ValueError/TypeError/KeyError when any text is not one turn; callers then decode one by one to
    name the bad one.
    """
    if not texts:
        return []
    data = parse_turn_objects("[" + ",".join(texts) + "]")
    if not isinstance(data, list) or len(data) != len(texts):
        raise ValueError("a turn payload does not hold exactly one value")
    return [Turn.from_dict(item) for item in data]


@dataclass(frozen=True, slots=True)
class CoveredTurns:
    """The oldest turns a summary covers, as ``compact_turns`` checks them: how many, and the item ids of
    the first and the last. Compaction happens only while exactly these are still the oldest turns (a
    compare-and-set), so turns appended, merged or compacted by someone else meanwhile are never lost."""

    count: int
    first: str
    last: str

    @classmethod
    def of(cls, turns: Sequence[Turn]) -> CoveredTurns:
        """The span of ``turns`` (oldest first, as ``recent_turns`` gives them); both ends need item ids."""
        if not turns:
            raise InvalidInputError("a summary must cover at least one turn")
        first, last = turns[0].item_id, turns[-1].item_id
        if first is None or last is None:
            raise InvalidInputError("the first and last turns a summary covers need item ids")
        return cls(len(turns), first, last)


def check_summary(summary: object) -> str:
    """A summary to store: non-blank text of at most MAX_SUMMARY_CHARS characters."""
    if not isinstance(summary, str) or not summary.strip():
        raise InvalidInputError("a summary must be non-empty text")
    if len(summary) > MAX_SUMMARY_CHARS:
        raise InvalidInputError(f"a summary is {len(summary)} characters; the limit is {MAX_SUMMARY_CHARS}")
    return summary


@dataclass(frozen=True, slots=True)
class SessionChanges:
    """What one ``update`` merges into a session: language replaced when given, metadata and context
    merged key by key (a key set to None is removed). An empty value object changes nothing."""

    language: str | None = None
    metadata: dict[str, Any] | None = None
    context: dict[str, Any] | None = None
