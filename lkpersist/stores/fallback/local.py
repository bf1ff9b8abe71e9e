"""The memory side of a FallbackStore: what it serves from during an outage, and what it seeds that with.

:class:`LocalStore` is a :class:`MemoryStore` that can be seeded with the primary's last known copy of a
session, so a participant this worker has seen is still recognised (and welcomed back) while the primary
is down, and that remembers which stored session each local copy continues (see
``OfflineDelta.continues``). :class:`RecentCopies` keeps those last known copies while the primary answers.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import replace
from typing import Any

from lkpersist.model.presence import PresenceRules, beat_transition
from lkpersist.model.session import Session
from lkpersist.stores.memory import MemoryStore


class LocalStore(MemoryStore):
    """The in-memory stand-in, seeded on demand with the sessions the primary last returned."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._seeds: dict[str, float] = {}

    def seed(self, session: Session | None) -> None:
        """Start from the primary's last known copy, once per identity (never after a local delete)."""
        if session is None or session.identity in self._seeds or session.identity in self._sessions:
            return
        self._sessions[session.identity] = Session.from_dict(session.to_dict())
        self._seeds[session.identity] = session.joined_at

    def continues(self, identity: str) -> float | None:
        """``joined_at`` of the primary's session when the local copy is still that same session."""
        seed, current = self._seeds.get(identity), self._sessions.get(identity)
        return seed if current is not None and current.joined_at == seed else None

    def forget(self, identity: str) -> None:
        self._sessions.pop(identity, None)
        self._turns.pop(identity, None)


class RecentCopies:
    """The primary's latest copy of the sessions this process saw most recently, at most ``limit`` of them."""

    def __init__(self, limit: int = 4096) -> None:
        self.limit = limit
        self._copies: OrderedDict[str, Session] = OrderedDict()

    def get(self, identity: str) -> Session | None:
        return self._copies.get(identity)

    def remember(self, session: Session) -> None:
        self._copies[session.identity] = session
        self._copies.move_to_end(session.identity)
        while len(self._copies) > self.limit:
            self._copies.popitem(last=False)

    def forget(self, identity: str) -> None:
        self._copies.pop(identity, None)

    def refreshed(self, identity: str, connection: str, now: float, rules: PresenceRules) -> None:
        """The primary took a beat of ``connection``: the copy is live as of ``now``."""
        if (copy := self._copies.get(identity)) is not None:
            self.remember(beat_transition(copy, connection, now, rules) or copy)

    def greeted(self, identity: str) -> None:
        """The primary gave this visit's greeting: a seed from this copy must not owe it again."""
        if (copy := self._copies.get(identity)) is not None:
            self.remember(replace(copy, greeted_visit=copy.visit))


__all__ = ["LocalStore", "RecentCopies"]
