"""What every store is opened with, as one immutable value its helpers can be handed instead of the store."""

from __future__ import annotations

from dataclasses import dataclass, field

from lkpersist.clock import Clock, SystemClock
from lkpersist.crypto.codec import PLAIN, ValueCodec
from lkpersist.exceptions import InvalidInputError
from lkpersist.model.analytics import Analytics
from lkpersist.model.presence import DEFAULT_SWITCH_GRACE, PresenceRules
from lkpersist.model.session import DEFAULT_MAX_TURNS
from lkpersist.model.ttl import DEFAULT_TTL_POLICY, TTLPolicy


@dataclass(frozen=True, slots=True)
class StoreSettings:
    """The clock expiry is judged by, the TTL policy, the turn cap, the codec of personal values, analytics,
    and ``switch_grace``: seconds after a ``duplicate_identity`` leave in which an arrival continues the visit.

    Fixed for the store's life: backends may derive things from them once (Redis packs its script
    arguments at start-up).
    """

    clock: Clock = field(default_factory=SystemClock)
    ttl_policy: TTLPolicy = DEFAULT_TTL_POLICY
    max_turns: int = DEFAULT_MAX_TURNS
    codec: ValueCodec = PLAIN
    analytics: Analytics = field(default_factory=Analytics)
    switch_grace: float = DEFAULT_SWITCH_GRACE
    presence: PresenceRules = field(init=False, repr=False, compare=False)
    """The knobs of the visit model, as :mod:`lkpersist.model.presence` takes them (built once)."""

    def __post_init__(self) -> None:
        if self.max_turns < 1:
            raise InvalidInputError("max_turns must be at least 1")
        if self.switch_grace < 0:
            raise InvalidInputError("switch_grace must not be negative")
        object.__setattr__(self, "presence", PresenceRules(self.ttl_policy, self.switch_grace))

    @property
    def presence_timeout(self) -> float:
        """Seconds a connection stays live without a beat (the TTL policy's ``presence_timeout``)."""
        return self.ttl_policy.presence_timeout


__all__ = ["StoreSettings"]
