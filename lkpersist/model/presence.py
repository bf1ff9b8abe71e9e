"""Presence per connection: the visit model, the one statement of what arrive, leave and beat do.

A session keeps its live **connections** (an id per controller / agent job, each with its own heartbeat).
A connection is live while ``now - last_beat <= presence_timeout``; a stale one is dropped by the next
write that sees it (its worker died without a leave). A **visit** starts when a connection arrives while
none is live and no device switch is pending; it ends when the last live connection leaves or goes stale.
``reconnect_count`` counts returns (visits − 1), never connects, and each visit owes one greeting: the
session records ``greeted_visit`` and the first arrival (or claim) of a later visit takes it.

A ``duplicate_identity`` leave of the last live connection (LiveKit kicked the laptop because the phone
joined) starts a **device switch**: an arrival within ``switch_grace`` seconds continues the visit
(same number, no greeting). If nobody arrives in time, the visit ended at that leave.

Memory and SQLite run these functions inside their own atomic step; the Redis backend restates them in
Lua. Nothing here knows a backend.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from lkpersist.exceptions import InvalidInputError
from lkpersist.model.events import SessionEvent, leave_events
from lkpersist.model.results import Arrival
from lkpersist.model.session import LEGACY_CONNECTION, Connection, Device, Session, Turn
from lkpersist.model.ttl import TTLPolicy

DUPLICATE_IDENTITY = "duplicate_identity"
"""The leave reason of a participant kicked because the same identity joined elsewhere (a device switch)."""
DEFAULT_SWITCH_GRACE = 5.0
MAX_CONNECTION_CHARS = 200
MAX_DEVICE_CHARS = 128
MAX_DEVICES = 8
MAX_RESTORE_TURNS = 10_000


@dataclass(frozen=True, slots=True)
class DeviceSeen:
    """The device an arrival came from, as the caller saw it (a page attribute, or LiveKit client info).

    Build it with :meth:`bounded` (the store contract does) so a hostile attribute is cut and escaped.
    """

    device_id: str
    label: str = ""

    @classmethod
    def bounded(cls, device_id: object, label: object = "") -> DeviceSeen:
        """Control characters escaped, then each cut to MAX_DEVICE_CHARS; an empty id is refused."""
        if not isinstance(device_id, str) or not isinstance(label, str):
            raise InvalidInputError("a device id and label must be text")
        safe_id = _bounded_text(device_id)
        if not safe_id:
            raise InvalidInputError("a device id must not be empty")
        return cls(safe_id, _bounded_text(label))


@dataclass(frozen=True, slots=True)
class PresenceRules:
    """The knobs of the visit model: the TTL policy (its ``presence_timeout``) and the switch grace."""

    policy: TTLPolicy
    switch_grace: float = DEFAULT_SWITCH_GRACE

    @property
    def timeout(self) -> float:
        return self.policy.presence_timeout


@dataclass(frozen=True, slots=True)
class ArrivalRequest:
    """One arrival as the backends receive it, already checked by the contract."""

    connection: str
    device: DeviceSeen | None = None
    restore_turns: int = 0
    claim: bool = True
    """Take this visit's greeting if nobody has (``arrive``); the single-connection ``connect`` leaves it to
    a later ``claim_greeting``."""


@dataclass(frozen=True, slots=True)
class Visit:
    """What one arrival did to the visit: the flags of :class:`~lkpersist.model.results.Arrival`."""

    returning: bool
    new_visit: bool
    greet: bool
    switched: bool

    @property
    def is_new_session(self) -> bool:
        """Only a new session's arrival opens a first visit."""
        return self.new_visit and not self.returning

    def wants_turns(self, request: ArrivalRequest) -> bool:
        """Recent turns travel with the arrival only to the caller greeting a return."""
        return self.greet and self.returning and request.restore_turns > 0

    def arrival(self, session: Session, turns: list[Turn]) -> Arrival:
        """What the caller is told: the session after the arrival and this visit's flags."""
        return Arrival(session, self.returning, self.new_visit, session.visit, self.greet, self.switched, turns)


def check_connection(connection: object) -> str:
    """A connection id: non-empty text of at most MAX_CONNECTION_CHARS characters, no control characters."""
    if not isinstance(connection, str) or connection == "":
        raise InvalidInputError("a connection id must be a non-empty string")
    if len(connection) > MAX_CONNECTION_CHARS:
        raise InvalidInputError(f"a connection id is {len(connection)} characters; the limit is {MAX_CONNECTION_CHARS}")
    if _CONTROL.search(connection):
        raise InvalidInputError("a connection id must not contain control characters")
    return connection


def check_restore_turns(count: object) -> int:
    if not isinstance(count, int) or isinstance(count, bool) or not 0 <= count <= MAX_RESTORE_TURNS:
        raise InvalidInputError(f"restore_turns must be an integer from 0 to {MAX_RESTORE_TURNS}")
    return count


def settled(session: Session, now: float, timeout: float) -> Session:
    """``session`` as it stands at ``now``: stale connections dropped, and the visit ended if none is left.

    The visit then ended at ``last_seen`` (the last beat or leave), so its countdown runs from there.
    """
    live = tuple(c for c in session.connections if now - c.last_beat <= timeout)
    if len(live) == len(session.connections):
        return session
    if live or not session.connected:
        return replace(session, connections=live)
    return replace(session, connections=(), connected=False, expires_at=session.last_seen + session.ttl)


def arrive_transition(
    current: Session | None, identity: str, request: ArrivalRequest, now: float, rules: PresenceRules
) -> tuple[Session, Visit]:
    """Absent or expired: a new session. Otherwise join the live visit, continue a switch, or open a visit."""
    if current is None or current.is_expired(now):
        return _first_visit(identity, request, now, rules)
    session, visit = _join(settled(current, now, rules.timeout), now, rules.policy)
    greet = request.claim and greeting_owed(session)
    session = replace(
        session,
        last_seen=now,
        connected=True,
        expires_at=None,
        switch_until=None,
        connections=_with_connection(session.connections, request.connection, now),
        devices=session.devices if request.device is None else record_device(session.devices, request.device, now),
        greeted_visit=session.visit if greet else session.greeted_visit,
    )
    return session, Visit(visit.returning, visit.new_visit, greet, visit.switched)


def _first_visit(identity: str, request: ArrivalRequest, now: float, rules: PresenceRules) -> tuple[Session, Visit]:
    """A new session, built at once (the hot path of a new participant: no copy of a copy)."""
    device = () if request.device is None else (Device(request.device.device_id, request.device.label, now, now),)
    session = Session(
        identity=identity, joined_at=now, last_seen=now, connected=True, ttl=rules.policy.ttl_for(0),
        greeted_visit=1 if request.claim else 0, connections=(Connection(request.connection, now, now),),
        devices=device,
    )
    return session, Visit(returning=False, new_visit=True, greet=request.claim, switched=False)


def _join(session: Session, now: float, policy: TTLPolicy) -> tuple[Session, Visit]:
    if session.connections:
        return session, Visit(returning=False, new_visit=False, greet=False, switched=False)
    if session.switch_until is not None and now < session.switch_until:
        return session, Visit(returning=False, new_visit=False, greet=False, switched=True)
    count = session.reconnect_count + 1
    reopened = replace(session, reconnect_count=count, ttl=policy.ttl_for(count))
    return reopened, Visit(returning=True, new_visit=True, greet=False, switched=False)


def leave_transition(
    current: Session, connection: str, now: float, rules: PresenceRules, reason: str | None = None
) -> Session:
    """Drop ``connection``; the last live one leaving ends the visit (or, a device switch, suspends it)."""
    session = settled(current, now, rules.timeout)
    remaining = tuple(c for c in session.connections if c.id != connection)
    if len(remaining) == len(session.connections):
        return session  # not live here (already left, or gone stale): nothing more to end
    if remaining:
        return replace(session, connections=remaining, last_seen=now)
    switch = now + rules.switch_grace if reason == DUPLICATE_IDENTITY else None
    return replace(
        session, connections=(), connected=False, last_seen=now, expires_at=now + session.ttl, switch_until=switch
    )


def leave_outcome(
    current: Session, connection: str, now: float, rules: PresenceRules, reason: str | None = None
) -> tuple[Session, list[SessionEvent]]:
    """:func:`leave_transition` and the events it amounts to (``disconnected`` when it took the last one)."""
    before = settled(current, now, rules.timeout)
    after = leave_transition(before, connection, now, rules, reason)
    return after, leave_events(before, after, now)


def beat_transition(current: Session, connection: str, now: float, rules: PresenceRules) -> Session | None:
    """Refresh one live connection; None when it is not live (the caller must arrive again)."""
    session = settled(current, now, rules.timeout)
    if not any(c.id == connection for c in session.connections):
        return None
    beaten = tuple(replace(c, last_beat=now) if c.id == connection else c for c in session.connections)
    return replace(session, connections=beaten, last_seen=now)


def greeting_owed(session: Session) -> bool:
    """This visit's greeting has not been given yet."""
    return session.greeted_visit < session.visit


def claim_transition(current: Session, now: float, rules: PresenceRules) -> Session | None:
    """Take the greeting of the ongoing visit; None when it is taken already or no visit is going on."""
    session = settled(current, now, rules.timeout)
    if not session.connected or not greeting_owed(session):
        return None
    return replace(session, greeted_visit=session.visit)


def record_device(devices: tuple[Device, ...], seen: DeviceSeen, now: float) -> tuple[Device, ...]:
    """``devices`` with ``seen`` recorded at ``now``: the MAX_DEVICES most recently seen, newest last."""
    known = next((d for d in devices if d.device_id == seen.device_id), None)
    first = now if known is None else known.first_seen
    label = seen.label or ("" if known is None else known.label)
    others = tuple(d for d in devices if d.device_id != seen.device_id)
    kept = sorted(others, key=lambda d: d.last_seen)[-(MAX_DEVICES - 1):]
    return (*kept, Device(seen.device_id, label, first, now))


def merge_devices(ours: tuple[Device, ...], theirs: tuple[Device, ...]) -> tuple[Device, ...]:
    """Both sides' devices (an import's merge): per id the earliest first and latest last seen, at most
    MAX_DEVICES, the most recently seen kept, newest last."""
    merged: dict[str, Device] = {}
    for device in (*ours, *theirs):
        known = merged.get(device.device_id)
        if known is None:
            merged[device.device_id] = device
            continue
        newer = device if device.last_seen >= known.last_seen else known
        merged[device.device_id] = replace(newer, first_seen=min(known.first_seen, device.first_seen))
    return tuple(sorted(merged.values(), key=lambda d: d.last_seen)[-MAX_DEVICES:])


def _with_connection(connections: tuple[Connection, ...], connection: str, now: float) -> tuple[Connection, ...]:
    """A repeated arrival of a live connection refreshes it (keeping ``since``); a new one is added."""
    known = next((c for c in connections if c.id == connection), None)
    others = tuple(c for c in connections if c.id != connection)
    return (*others, Connection(connection, now if known is None else known.since, now))


_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
"""C0 and C1 control characters and the Unicode line/paragraph separators: what must not reach a
terminal, a log line or a page raw."""


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _bounded_text(text: str) -> str:
    """Escaped, then cut: only the first MAX_DEVICE_CHARS characters can survive, so only they are read."""
    return _CONTROL.sub(_escape, text[:MAX_DEVICE_CHARS])[:MAX_DEVICE_CHARS]


__all__ = [
    "DEFAULT_SWITCH_GRACE", "DUPLICATE_IDENTITY", "LEGACY_CONNECTION", "MAX_CONNECTION_CHARS", "MAX_DEVICES",
    "MAX_DEVICE_CHARS", "MAX_RESTORE_TURNS", "ArrivalRequest", "DeviceSeen", "PresenceRules", "Visit",
    "arrive_transition", "beat_transition", "check_connection", "check_restore_turns", "claim_transition",
    "greeting_owed", "leave_outcome", "leave_transition", "merge_devices", "record_device",
    "settled",
]
