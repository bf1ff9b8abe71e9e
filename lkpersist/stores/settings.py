"""What every store is opened with, as one immutable value its helpers can be handed instead of the store."""

from __future__ import annotations

from dataclasses import dataclass, field

from lkpersist.clock import Clock, SystemClock
from lkpersist.crypto.codec import PLAIN, ValueCodec
from lkpersist.exceptions import InvalidInputError
from lkpersist.model.analytics import Analytics
from lkpersist.model.session import DEFAULT_MAX_TURNS
from lkpersist.model.ttl import DEFAULT_TTL_POLICY, TTLPolicy


@dataclass(frozen=True, slots=True)
class StoreSettings:
    """The clock expiry is judged by, the TTL policy, the turn cap, the codec of personal values and analytics.

    Fixed for the store's life: backends may derive things from them once (Redis packs its script
    arguments at start-up).
    """

    clock: Clock = field(default_factory=SystemClock)
    ttl_policy: TTLPolicy = DEFAULT_TTL_POLICY
    max_turns: int = DEFAULT_MAX_TURNS
    codec: ValueCodec = PLAIN
    analytics: Analytics = field(default_factory=Analytics)

    def __post_init__(self) -> None:
        if self.max_turns < 1:
            raise InvalidInputError("max_turns must be at least 1")


__all__ = ["StoreSettings"]
