"""Moving sessions between stores: the record that travels, and the rule an import applies.

A :class:`SessionRecord` is one session with its turns, as ``sessions export`` writes it and ``sessions
import`` reads it. What travels is the session *detached* from this store's presence (:func:`detached`):
a participant connected here is not connected in the store the record is imported into, so the record
leaves as if they had just left (the countdown runs from their last heartbeat, and the next connect there
is a return that owes a greeting).

:func:`decide_import` is the one statement of what an import does to an identity the target may already
hold, whatever the backend; each backend reads the stored record, calls it and writes the result in one
atomic step (the same step that merges an outage back, :mod:`lkpersist.model.reconcile`):

- nothing live stored (absent, or expired): the record is written (``created``);
- ``skip``: a live stored session is kept as it is;
- ``replace``: the stored session and its turns are replaced by the record;
- ``merge``: one session from both: the earliest ``joined_at``, the latest ``last_seen`` and deadline,
  the larger counts (never their sum), the record's language and metadata/context keys over the stored
  ones, turns merged by item id in time order. Merging the same record twice changes nothing.

A merge or replacement that would leave the stored session exactly as it is reports ``unchanged`` and
writes nothing, so importing the same file twice is idempotent and says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import Enum
from typing import Any, Literal

from lkpersist.clock import from_ms, to_ms
from lkpersist.exceptions import InvalidInputError
from lkpersist.model.events import SessionEvent, removal_event
from lkpersist.model.presence import merge_devices
from lkpersist.model.reconcile import Reconciled, merge_turns
from lkpersist.model.session import Session, Turn

ConflictRule = Literal["skip", "merge", "replace"]
CONFLICT_RULES: tuple[ConflictRule, ...] = ("skip", "merge", "replace")


class ImportOutcome(str, Enum):
    """What importing one record did to its identity in the target store."""

    CREATED = "created"
    """Nothing live was stored under the identity: the record was written (an expired one was replaced)."""
    MERGED = "merged"
    REPLACED = "replaced"
    SKIPPED = "skipped"
    """A live session was stored and the rule was ``skip``: it was left alone."""
    UNCHANGED = "unchanged"
    """The merge or replacement would have left the stored session as it was: nothing was written."""
    FAILED = "failed"
    """The stored record could not be read (corrupt, or not decryptable with the keys): left alone."""


class SessionRecord:
    """One session and its turns (oldest first): what export writes and import reads, one per line.

    Built from ``Turn`` objects, or (:meth:`of_turn_dicts`) from turn dicts exactly as ``Turn.to_dict``
    writes them, which is how a page of stored turns or a parsed line travels in bulk: ``turns`` builds
    the objects only when asked for, and :attr:`turn_dicts` hands the dicts to a writer as they are.
    Immutable; equal when the session and the turns are equal, however each was built.
    """

    __slots__ = ("_dicts", "_json", "_plain", "_turns", "session")

    session: Session
    _turns: tuple[Turn, ...] | None
    _dicts: list[dict[str, Any]] | None
    _json: Sequence[bytes] | None
    _plain: bool

    def __init__(self, session: Session, turns: Sequence[Turn] = ()) -> None:
        object.__setattr__(self, "session", session)
        object.__setattr__(self, "_turns", tuple(turns))
        object.__setattr__(self, "_dicts", None)
        object.__setattr__(self, "_json", None)
        object.__setattr__(self, "_plain", False)

    @classmethod
    def of_turn_dicts(
        cls, session: Session, dicts: list[dict[str, Any]], payloads: Sequence[bytes] | None = None, *,
        plain: bool = False,
    ) -> SessionRecord:
        """A record whose turns are ``dicts``, which must have passed :func:`~lkpersist.model.jsonform.canonical_turns`.

        ``payloads``, when given, is the JSON of each of ``dicts`` as a plaintext store keeps it, and
        vouches for the whole record: joined by commas in brackets they read back as exactly ``dicts``,
        by orjson and by the standard library alike, and every value of the session (metadata and
        context too) is one orjson writes as the standard library does. An export line can then carry
        the payloads as they are (:attr:`rendered`) and write the session with orjson unchecked.

        ``plain`` vouches for the session alone (:attr:`plain_session`): every value of it is one orjson
        writes as the standard library does (metadata and context read from JSON by orjson, exactly)."""
        record = cls.__new__(cls)
        object.__setattr__(record, "session", session)
        object.__setattr__(record, "_turns", None)
        object.__setattr__(record, "_dicts", dicts)
        object.__setattr__(record, "_json", payloads)
        object.__setattr__(record, "_plain", plain or payloads is not None)
        return record

    @property
    def rendered(self) -> Sequence[bytes] | None:
        """The stored turn payloads this record was read with (see :meth:`of_turn_dicts`), or None. Only a
        record built that way has them: :meth:`newest` and :meth:`with_session` drop them."""
        return self._json

    @property
    def plain_session(self) -> bool:
        """Whether the store vouched for the session's values (see :meth:`of_turn_dicts`); only a record
        built that way is: :meth:`newest` and :meth:`with_session` drop it."""
        return self._plain

    @property
    def turns(self) -> tuple[Turn, ...]:
        if self._turns is None:
            built = tuple(Turn(d["role"], d["text"], d["timestamp"], d["item_id"]) for d in self.turn_dicts)
            object.__setattr__(self, "_turns", built)
            return built
        return self._turns

    @property
    def turn_dicts(self) -> list[dict[str, Any]]:
        """``Turn.to_dict()`` of every turn, oldest first (do not modify)."""
        if self._dicts is None:
            object.__setattr__(self, "_dicts", [turn.to_dict() for turn in self.turns])
        return self._dicts  # type: ignore[return-value]

    @property
    def turn_total(self) -> int:
        return len(self._turns if self._turns is not None else self.turn_dicts)

    def newest(self, max_turns: int) -> SessionRecord:
        """This record with only its newest ``max_turns`` turns (itself when it has no more)."""
        if self.turn_total <= max_turns:
            return self
        if self._dicts is not None:
            return SessionRecord.of_turn_dicts(self.session, self._dicts[-max_turns:])
        return SessionRecord(self.session, self.turns[-max_turns:])

    def with_session(self, session: Session) -> SessionRecord:
        """The same turns (in whichever form they are held) with ``session``."""
        if self._dicts is not None:
            return SessionRecord.of_turn_dicts(session, self._dicts)
        return SessionRecord(session, self.turns)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"SessionRecord is immutable; cannot set {name}")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SessionRecord):
            return NotImplemented
        return self.session == other.session and self.turns == other.turns

    __hash__ = None  # type: ignore[assignment]  # a Session is not hashable either

    def __reduce__(self) -> tuple[Any, ...]:  # copy and pickle rebuild it (its __setattr__ refuses)
        return SessionRecord, (self.session, self.turns)

    def __repr__(self) -> str:
        return f"SessionRecord(session={self.session!r}, turns={self.turns!r})"


@dataclass(frozen=True, slots=True)
class ImportDecision:
    """The outcome, and what to store (None: leave the stored record alone)."""

    outcome: ImportOutcome
    write: Reconciled | None = None


def check_conflict_rule(rule: str) -> ConflictRule:
    if rule not in CONFLICT_RULES:
        raise InvalidInputError(f"on_conflict must be one of {', '.join(CONFLICT_RULES)}, not {rule!r}")
    return rule


def detached(session: Session) -> Session:
    """``session`` as another store should receive it: not connected there.

    A connected session leaves as if the participant had left at their last heartbeat, so its countdown
    runs from then and its next arrival elsewhere opens a new visit. Live connections are transient and
    never travel; devices and ``greeted_visit`` do.
    """
    if not session.connected:
        if not session.connections and session.switch_until is None:
            return session  # unchanged, the same object
        return replace(session, connections=(), switch_until=None)
    left = session.last_seen
    return replace(session, connected=False, connections=(), switch_until=None, expires_at=left + session.ttl)


def prepared(record: SessionRecord, max_turns: int) -> SessionRecord:
    """The record as a store keeps it: detached, times in whole milliseconds, the newest ``max_turns`` turns.

    Stores keep milliseconds, so comparing a stored session with an incoming one only works at that
    precision (an idempotent re-import must find them equal).
    """
    session = detached(record.session)
    times = (session.joined_at, session.last_seen, session.expires_at, session.ttl)
    kept = (_ms(session.joined_at), _ms(session.last_seen),
            None if session.expires_at is None else _ms(session.expires_at), _ms(session.ttl))
    if kept != times:  # most records come from a store, in whole milliseconds already
        session = replace(session, joined_at=kept[0], last_seen=kept[1], expires_at=kept[2], ttl=kept[3])
    record = record.newest(max_turns)
    return record if session is record.session else record.with_session(session)


def decide_import(
    stored: Session | None, stored_turns: Sequence[Turn], record: SessionRecord, rule: ConflictRule, now: float,
    max_turns: int,
) -> ImportDecision:
    """What importing ``record`` (already :func:`prepared`) does to the stored record (live, expired or absent)."""
    incoming, turns = record.session, list(record.turns)
    if stored is None or stored.is_expired(now):
        return ImportDecision(ImportOutcome.CREATED, Reconciled(incoming, turns, creation_events(stored, incoming, now)))
    if rule == "skip":
        return ImportDecision(ImportOutcome.SKIPPED)
    if rule == "replace":
        events = [removal_event(stored, now, deleted=True), _created(incoming, now)]
        result, outcome = Reconciled(incoming, turns, events), ImportOutcome.REPLACED
    else:
        result, outcome = _merged(stored, list(stored_turns), incoming, turns, max_turns), ImportOutcome.MERGED
    if result.session == stored and result.turns == list(stored_turns):
        return ImportDecision(ImportOutcome.UNCHANGED)
    return ImportDecision(outcome, result)


def creation_events(stored: Session | None, incoming: Session, now: float) -> list[SessionEvent]:
    """The events of an import that writes ``incoming`` where nothing live is stored (``stored``: None or
    expired). Backends writing a batch of new identities in bulk use it instead of :func:`decide_import`,
    whose ``created`` outcome it is, so they need no ``Turn`` objects."""
    ended = [] if stored is None else [removal_event(stored, now)]
    return [*ended, _created(incoming, now)]


def _merged(
    stored: Session, stored_turns: list[Turn], incoming: Session, turns: list[Turn], max_turns: int
) -> Reconciled:
    """The merge rule of the module docstring; fields it does not name keep the stored values."""
    merged: dict[str, Any] = {
        "joined_at": min(stored.joined_at, incoming.joined_at),
        "last_seen": max(stored.last_seen, incoming.last_seen),
        "reconnect_count": max(stored.reconnect_count, incoming.reconnect_count),
        "greeted_visit": max(stored.greeted_visit, incoming.greeted_visit),
        "devices": merge_devices(stored.devices, incoming.devices),
        "ttl": max(stored.ttl, incoming.ttl),
        "language": stored.language if incoming.language is None else incoming.language,
        "metadata": {**stored.metadata, **incoming.metadata},
        "context": {**stored.context, **incoming.context},
    }
    if not stored.connected:  # the merged session is connected as the stored one is: the later deadline
        merged["expires_at"] = max(stored.deadline, incoming.deadline)
    return Reconciled(replace(stored, **merged), merge_turns(stored_turns, turns, max_turns))


def _created(session: Session, now: float) -> SessionEvent:
    return SessionEvent("created", session.identity, now, session.reconnect_count)


def _ms(seconds: float) -> float:
    return from_ms(to_ms(seconds))


__all__ = [
    "CONFLICT_RULES",
    "ConflictRule",
    "ImportDecision",
    "ImportOutcome",
    "SessionRecord",
    "check_conflict_rule",
    "creation_events",
    "decide_import",
    "detached",
    "prepared",
]
