"""The in-memory stand-in a FallbackStore serves from during an outage.

It is a :class:`MemoryStore` that can be seeded with the primary's last known copy of a session, so a
participant this worker has seen is still recognised (and welcomed back) while the primary is down,
and that remembers which stored session each local copy continues (see ``OfflineDelta.continues``).
"""

from __future__ import annotations

from typing import Any

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


__all__ = ["LocalStore"]
