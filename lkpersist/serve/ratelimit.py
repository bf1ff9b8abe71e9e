"""Per-client-address rate limiting of the API (a token bucket per address, in this process's memory).

A page load costs two requests (a token and the history) and a reconnect one more, so the default,
60 requests a minute with bursts of 60, never bothers a person and stops a script minting identities
in a loop. Behind a reverse proxy every request comes from the proxy's address: rate-limit at the proxy
instead (``--rate-limit off``). Memory is bounded: at most ``max_clients`` addresses are remembered; the
one idle longest is forgotten first (it would have had a full bucket by then anyway, or nearly).
"""

from __future__ import annotations

import math
import re
from collections import OrderedDict
from dataclasses import dataclass
from typing import Final

from lkpersist.clock import Clock, SystemClock
from lkpersist.durations import parse_duration
from lkpersist.exceptions import InvalidInputError

DEFAULT_MAX_CLIENTS: Final = 100_000
_RATE: Final = re.compile(r"^\s*(\d+)\s*/\s*(\S+)\s*$")


@dataclass(frozen=True, slots=True)
class RateLimit:
    """``requests`` per ``period`` seconds, in bursts of up to ``requests``."""

    requests: int
    period: float

    def __post_init__(self) -> None:
        if self.requests < 1 or self.period <= 0:
            raise InvalidInputError("a rate limit needs at least 1 request per positive period")

    @classmethod
    def parse(cls, text: str) -> RateLimit | None:
        """``"60/1m"``, ``"10/s"``, ``"1000/1h"``; ``"off"`` (or ``"0"``) for no limit."""
        if text.strip().lower() in ("off", "0", "none"):
            return None
        match = _RATE.match(text)
        if match is None:
            raise InvalidInputError(f"invalid rate limit {text!r}: use REQUESTS/PERIOD (e.g. 60/1m) or off")
        period = match.group(2)
        return cls(int(match.group(1)), parse_duration(period if period[0].isdigit() else f"1{period}"))

    def __str__(self) -> str:
        return f"{self.requests}/{self.period:g}s"


class RateLimiter:
    """Admits or refuses one request from an address; tells a refused caller how long to wait."""

    def __init__(
        self, limit: RateLimit, *, clock: Clock | None = None, max_clients: int = DEFAULT_MAX_CLIENTS
    ) -> None:
        self._capacity = float(limit.requests)
        self._per_second = limit.requests / limit.period
        self._clock = clock or SystemClock()
        self._max_clients = max_clients
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def admit(self, address: str) -> float:
        """0.0 when the request may go ahead (it is counted); else the seconds until one would be admitted."""
        now = self._clock.now()
        tokens = self._tokens(address, now)
        if tokens >= 1.0:
            self._remember(address, tokens - 1.0, now)
            return 0.0
        self._remember(address, tokens, now)
        return (1.0 - tokens) / self._per_second

    def _tokens(self, address: str, now: float) -> float:
        bucket = self._buckets.get(address)
        if bucket is None:
            return self._capacity
        tokens, since = bucket
        return min(self._capacity, tokens + max(0.0, now - since) * self._per_second)

    def _remember(self, address: str, tokens: float, now: float) -> None:
        self._buckets[address] = (tokens, now)
        self._buckets.move_to_end(address)
        while len(self._buckets) > self._max_clients:
            self._buckets.popitem(last=False)

    def __len__(self) -> int:
        return len(self._buckets)


def retry_after_header(seconds: float) -> str:
    """Whole seconds for ``Retry-After``, never 0 (0 invites an immediate retry that fails again)."""
    return str(max(1, math.ceil(seconds)))


__all__ = ["DEFAULT_MAX_CLIENTS", "RateLimit", "RateLimiter", "retry_after_header"]
