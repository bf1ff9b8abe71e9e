"""The outage journal of a :class:`~lkpersist.stores.fallback.FallbackStore`: one delta per identity.

Each write served from memory during an outage is folded into the identity's open
:class:`~lkpersist.model.reconcile.OfflineDelta` (counts, latest presence, turns, changes), so the
journal's size grows with the number of identities, not of operations. It is bounded: past ``limit``
identities the least recently active one is dropped (counted, and reported through ``on_drop``), and
each delta keeps at most ``max_turns`` turns, as the store itself would.

While the reconciler applies a delta to the store it is *in flight*: writes arriving meanwhile go into
a new delta for that identity, applied after it, so nothing written during reconciliation is lost and
the order of an identity's changes is kept.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

from lkpersist.model.reconcile import OfflineDelta
from lkpersist.model.results import Arrival
from lkpersist.model.session import Session, SessionChanges, Turn


class OfflineJournal:
    """Pending deltas in order of last activity; ``take``/``done``/``failed`` drive reconciliation."""

    def __init__(self, limit: int, max_turns: int, on_drop: Callable[[str], None] | None = None) -> None:
        self.limit = limit
        self.max_turns = max_turns
        self.on_drop = on_drop
        self.dropped = 0
        self._deltas: OrderedDict[str, list[OfflineDelta]] = OrderedDict()
        self._in_flight: OfflineDelta | None = None

    def __len__(self) -> int:
        """How many identities have changes waiting."""
        return len(self._deltas)

    # --- recording ---------------------------------------------------------------------------------

    def arrived(self, arrival: Arrival, continues: float | None) -> None:
        """Visits opened are what reconcile adds to the stored count; a joined visit adds nothing."""
        session = arrival.session
        delta = self._open(session.identity, session.last_seen, continues)
        if arrival.is_new_session:  # what the offline copy did before belonged to an expired session
            delta = self._deltas[session.identity][-1] = OfflineDelta(
                identity=session.identity, first_at=session.last_seen, deleted=delta.deleted, created=True,
                continues=continues,
            )
        delta.connects += 1 if arrival.new_visit else 0
        delta.greeted = delta.greeted or arrival.greet
        delta.presence_at, delta.connected, delta.connections = session.last_seen, True, session.connections

    def left(self, session: Session, continues: float | None) -> None:
        delta = self._open(session.identity, session.last_seen, continues)
        delta.presence_at, delta.connected, delta.connections = session.last_seen, session.connected, session.connections
        if not session.connected:
            delta.disconnects += 1
            delta.greeted = False

    def heartbeat(self, identity: str, at: float, continues: float | None) -> None:
        delta = self._open(identity, at, continues)
        delta.presence_at, delta.connected = at, True

    def greeted(self, identity: str, at: float, continues: float | None) -> None:
        self._open(identity, at, continues).greeted = True

    def updated(self, identity: str, at: float, continues: float | None, changes: SessionChanges) -> None:
        delta = self._open(identity, at, continues)
        if changes.language is not None:
            delta.language = changes.language
        delta.metadata.update(changes.metadata or {})
        delta.context.update(changes.context or {})

    def appended(self, identity: str, turn: Turn, continues: float | None) -> None:
        delta = self._open(identity, turn.timestamp, continues)
        delta.turns.append(turn)
        del delta.turns[: -self.max_turns]

    def deleted(self, identity: str, at: float) -> None:
        """A delete supersedes every change not yet applied; later changes start from nothing."""
        kept = [d for d in self._deltas.get(identity, []) if d is self._in_flight]
        self._deltas[identity] = [*kept, OfflineDelta(identity=identity, first_at=at, deleted=True)]
        self._touch(identity)

    # --- reconciling -------------------------------------------------------------------------------

    def take(self) -> OfflineDelta | None:
        """The oldest waiting delta, now in flight; None when nothing waits."""
        for deltas in self._deltas.values():
            self._in_flight = deltas[0]
            return deltas[0]
        return None

    def done(self, delta: OfflineDelta) -> None:
        """The delta is applied (or cannot be): forget it."""
        deltas = self._deltas.get(delta.identity, [])
        if delta in deltas:
            deltas.remove(delta)
        if not deltas:
            self._deltas.pop(delta.identity, None)
        self._in_flight = None

    def failed(self, delta: OfflineDelta) -> None:
        """The store did not take it: it waits again (and may collect more changes if it is the last)."""
        self._in_flight = None

    # --- internals ---------------------------------------------------------------------------------

    def _open(self, identity: str, at: float, continues: float | None) -> OfflineDelta:
        deltas = self._deltas.get(identity)
        if deltas is None:
            deltas = self._deltas[identity] = []
        if not deltas or deltas[-1] is self._in_flight:
            deltas.append(OfflineDelta(identity=identity, first_at=at))
        self._touch(identity)
        delta = deltas[-1]
        delta.continues = continues
        return delta

    def _touch(self, identity: str) -> None:
        self._deltas.move_to_end(identity)
        while len(self._deltas) > self.limit:
            oldest = next(i for i, deltas in self._deltas.items() if self._in_flight not in deltas)
            del self._deltas[oldest]
            self.dropped += 1
            if self.on_drop is not None:
                self.on_drop(oldest)


__all__ = ["OfflineJournal"]
