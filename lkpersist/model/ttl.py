"""How long a disconnected session survives, by how often its participant has come back.

The defaults follow the seed's numbers: a first-time participant who leaves is forgotten after 5 minutes,
one who has come back before gets 10, and a frequent returner (3 or more reconnects) 30. The countdown
starts at disconnect (or at the last heartbeat when the agent dies); a connected session never expires.
"""

from __future__ import annotations

from dataclasses import dataclass

from lkpersist.exceptions import InvalidInputError


@dataclass(frozen=True, slots=True)
class TTLPolicy:
    """Seconds a session lives after its last sign of life, chosen by ``reconnect_count``."""

    first: float = 300.0
    returning: float = 600.0
    frequent: float = 1800.0
    frequent_after: int = 3
    presence_timeout: float = 90.0
    """A connected session not refreshed for this long is treated as having left (its agent died
    without a disconnect), so its next connect counts as a return that is owed a greeting. Keep it
    well above the agent's heartbeat interval (30 s by default)."""

    def __post_init__(self) -> None:
        if min(self.first, self.returning, self.frequent, self.presence_timeout) <= 0:
            raise InvalidInputError("TTL values must be positive")
        if self.frequent_after < 1:
            raise InvalidInputError("frequent_after must be at least 1")

    def ttl_for(self, reconnect_count: int) -> float:
        """Return the time-to-live for a session that has reconnected ``reconnect_count`` times."""
        if reconnect_count <= 0:
            return self.first
        if reconnect_count < self.frequent_after:
            return self.returning
        return self.frequent


DEFAULT_TTL_POLICY = TTLPolicy()
