"""What happened to one identity while the store was unreachable, and the one rule that merges it back.

:class:`OfflineDelta` is the journal entry a :class:`~lkpersist.stores.fallback.FallbackStore` keeps per
identity while it serves sessions from memory. :func:`reconcile` is the single statement of how such a
delta is merged into whatever the store holds when it answers again; every backend's
``apply_offline`` reads the stored record and turns, calls it, and writes the result back in one atomic
step (memory: its lock; SQLite: one ``BEGIN IMMEDIATE``; Redis: a compare-and-set script).

The merge adds rather than overwrites, because another agent may have written the same identity during
the outage: reconnect increments are added, the latest presence wins (``last_seen`` is the maximum),
turns are merged by item id in time order, metadata/context changes are applied key by key over the
stored values, and a greeting given during the outage is recorded so that no agent owes it again.

The merge also says which session events (:mod:`lkpersist.model.events`) it amounts to, published at the
merge by the backend in the same atomic step: the end (``deleted``/``expired``) of a stored session the
merge removes or replaces, ``created`` for a session that exists because of the outage, ``returned``
(with the final count) when participants came back offline, and ``disconnected`` when the merged
session is left disconnected. So a subscriber still sees every session begin and end.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from lkpersist.model.events import SessionEvent, removal_event
from lkpersist.model.lifecycle import merge_update
from lkpersist.model.session import Connection, Session, SessionChanges, Turn, legacy_connections
from lkpersist.model.ttl import TTLPolicy


@dataclass(slots=True, eq=False)
class OfflineDelta:
    """What one identity did while the store was unreachable, in a form that merges with any stored state.

    ``connects``/``disconnects``: how many visits were opened / ended. ``created``: the offline copy started a new
    session (the identity was unknown or its session had expired). ``continues``: ``joined_at`` of the
    stored session the offline copy continued, so a record that expired only because nobody could refresh
    it is revived rather than replaced. ``presence_at``/``connected``/``connections``: the latest presence
    change (arrive, beat or leave), its state and the connections then live. ``greeted``: a greeting was claimed after the latest
    disconnect. ``deleted``: the identity was deleted; everything else happened after the delete.
    """

    identity: str
    first_at: float
    connects: int = 0
    disconnects: int = 0
    created: bool = False
    continues: float | None = None
    presence_at: float | None = None
    connected: bool | None = None
    connections: tuple[Connection, ...] = ()
    greeted: bool = False
    deleted: bool = False
    language: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    context: dict[str, Any] = field(default_factory=dict)
    turns: list[Turn] = field(default_factory=list)

    @property
    def touches_session(self) -> bool:
        """Whether anything besides a delete happened (a delete alone leaves no session behind)."""
        return bool(
            self.connects or self.disconnects or self.presence_at is not None or self.turns
            or self.language is not None or self.metadata or self.context or self.greeted
        )


@dataclass(frozen=True, slots=True)
class Reconciled:
    """The record and turns to store after a merge, and the events to publish with it.

    ``session`` None means the identity has no session.
    """

    session: Session | None
    turns: list[Turn]
    events: list[SessionEvent] = field(default_factory=list)


def reconcile(
    stored: Session | None, stored_turns: list[Turn], delta: OfflineDelta, now: float, policy: TTLPolicy,
    max_turns: int,
) -> Reconciled:
    """Merge ``delta`` into the stored record (live, expired or absent) and its turns."""
    if not delta.deleted and not delta.touches_session:
        return Reconciled(stored, stored_turns)  # nothing happened: leave even an expired record alone
    base, base_turns = _base(stored, stored_turns, delta, now)
    if base is None:
        ended = [] if stored is None else [removal_event(stored, now, deleted=delta.deleted)]
        if not delta.touches_session:
            return Reconciled(None, [], ended)
        created = _created(delta, policy)
        events = ended + _offline_events(None, created, delta, now)
        return Reconciled(created, merge_turns([], delta.turns, max_turns), events)
    merged = _merged(base, delta, policy)
    events = _offline_events(base, merged, delta, now)
    return Reconciled(merged, merge_turns(base_turns, delta.turns, max_turns), events)


def _base(
    stored: Session | None, stored_turns: list[Turn], delta: OfflineDelta, now: float
) -> tuple[Session | None, list[Turn]]:
    """The stored session the delta merges into; an expired one only if the offline copy continued it."""
    if stored is None or delta.deleted:
        return None, []
    if stored.is_expired(now) and delta.continues != stored.joined_at:
        return None, []
    return stored, stored_turns


def _created(delta: OfflineDelta, policy: TTLPolicy) -> Session:
    """A session that exists only because of what happened offline (the first connect created it)."""
    count = max(delta.connects - 1, 0)
    fresh = Session(
        identity=delta.identity,
        joined_at=delta.first_at,
        last_seen=delta.first_at,
        reconnect_count=count,
        ttl=policy.ttl_for(count),
    )
    return _with_offline_changes(fresh, delta, count, policy, prefer_offline=True)


def _merged(base: Session, delta: OfflineDelta, policy: TTLPolicy) -> Session:
    count = base.reconnect_count + delta.connects
    prefer_offline = delta.presence_at is not None and delta.presence_at >= base.last_seen
    return _with_offline_changes(base, delta, count, policy, prefer_offline=prefer_offline)


def _with_offline_changes(
    base: Session, delta: OfflineDelta, count: int, policy: TTLPolicy, *, prefer_offline: bool
) -> Session:
    session = replace(base, reconnect_count=count, ttl=policy.ttl_for(count))
    if prefer_offline and delta.presence_at is not None:
        connected = bool(delta.connected)
        session = replace(
            session,
            last_seen=max(delta.presence_at, base.last_seen),
            connected=connected,
            connections=_offline_connections(delta) if connected else (),
            expires_at=None if connected else delta.presence_at + session.ttl,
            switch_until=None,
        )
    elif not session.connected and session.expires_at is None:  # a created session nobody was present in
        session = replace(session, expires_at=session.last_seen + session.ttl)
    if delta.greeted:
        session = replace(session, greeted_visit=max(session.greeted_visit, session.visit))
    return merge_update(session, SessionChanges(delta.language, delta.metadata, delta.context))


def _offline_connections(delta: OfflineDelta) -> tuple[Connection, ...]:
    """The connections live offline, beating at the latest presence (``-`` if the journal knew none)."""
    at = delta.presence_at or delta.first_at
    if not delta.connections:
        return legacy_connections(True, at)
    return tuple(replace(c, last_beat=max(c.last_beat, at)) for c in delta.connections)


def _offline_events(base: Session | None, merged: Session, delta: OfflineDelta, now: float) -> list[SessionEvent]:
    """``created`` (no ``base``), ``returned`` for connects beyond the first, ``disconnected`` if left so."""
    identity, count = merged.identity, merged.reconnect_count
    events = [] if base is not None else [SessionEvent("created", identity, now, 0)]
    if delta.connects > (0 if base is not None else 1):
        events.append(SessionEvent("returned", identity, now, count))
    if delta.disconnects and not merged.connected:
        events.append(SessionEvent("disconnected", identity, now, count))
    return events


def merge_turns(stored: list[Turn], incoming: list[Turn], max_turns: int) -> list[Turn]:
    """Both sides' turns in time order (ties: stored first, then in recorded order); newest ``max_turns`` kept.

    A turn whose item id (or, without one, whose role, text and timestamp) is already stored is the same
    turn recorded twice, and appears once (an outage merged back, or an import: :mod:`lkpersist.model.transfer`).
    """
    known_ids = {turn.item_id for turn in stored if turn.item_id is not None}
    known_anonymous = {_anonymous_key(turn) for turn in stored if turn.item_id is None}

    def is_new(turn: Turn) -> bool:
        if turn.item_id is not None:
            return turn.item_id not in known_ids
        return _anonymous_key(turn) not in known_anonymous

    extra = [turn for turn in incoming if is_new(turn)]
    merged = sorted([*stored, *extra], key=lambda turn: turn.timestamp)
    return merged[-max_turns:]


def _anonymous_key(turn: Turn) -> tuple[str, str, float]:
    return (turn.role, turn.text, turn.timestamp)


__all__ = ["OfflineDelta", "Reconciled", "merge_turns", "reconcile"]
