"""The memory store's analytics: per-day tallies and per-session counters, written under the store's lock.

Exact distinct counts (a set of keyed hashes per day); dropped by ``purge`` once past retention.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from lkpersist.model.analytics import (
    COUNTERS,
    Analytics,
    DailyStats,
    OfflineTally,
    SessionCounters,
    day_from_counts,
)
from lkpersist.model.results import ConnectResult


@dataclass(slots=True)
class DayTally:
    """One day's keyed identity hashes and counters."""

    identities: set[str] = field(default_factory=set)
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTERS, 0))


@dataclass(frozen=True, slots=True)
class _Kept:
    counters: SessionCounters
    changed: float


class MemoryAnalytics:
    """What :class:`~lkpersist.stores.memory.MemoryStore` counts; each method runs inside its operation."""

    def __init__(self, analytics: Analytics) -> None:
        self._analytics = analytics
        self._days: dict[str, DayTally] = {}
        self._sessions: dict[str, _Kept] = {}

    def connected(self, result: ConnectResult, now: float) -> None:
        """Count a connect: the day's active identity, connection, return or new session; the session's."""
        hashed = self._analytics.identity_hash(result.session.identity)
        tally = self._days.setdefault(self._analytics.day(now), DayTally())
        tally.identities.add(hashed)
        tally.counts["connections"] += 1
        tally.counts["returns" if result.returning else "new_sessions"] += 1
        kept = self._sessions.get(hashed)
        counters = kept.counters if kept is not None and result.returning else SessionCounters(result.session.joined_at)
        self._sessions[hashed] = _Kept(
            replace(counters, connections=counters.connections + 1, returns=counters.returns + result.returning), now
        )

    def recorded_turn(self, identity: str, now: float) -> None:
        """Count a turn that was stored (not a duplicate) on its day and in its session."""
        hashed = self._analytics.identity_hash(identity)
        self._days.setdefault(self._analytics.day(now), DayTally()).counts["turns"] += 1
        kept = self._sessions.get(hashed)
        if kept is not None:
            self._sessions[hashed] = _Kept(replace(kept.counters, turns=kept.counters.turns + 1), now)

    def offline(self, identity: str, tally: OfflineTally, now: float) -> None:
        """Count what an outage served for ``identity`` (see :func:`~lkpersist.model.analytics.offline_tally`)."""
        hashed = self._analytics.identity_hash(identity)
        day = self._days.setdefault(tally.day, DayTally())
        if tally.connections:
            day.identities.add(hashed)
        for name, value in zip(COUNTERS, (tally.connections, tally.returns, tally.new_sessions, tally.turns), strict=True):
            day.counts[name] += value
        kept = self._sessions.get(hashed)
        counters = SessionCounters(tally.joined_at) if kept is None or tally.new_session else kept.counters
        self._sessions[hashed] = _Kept(replace(
            counters, connections=counters.connections + tally.connections, returns=counters.returns + tally.returns,
            turns=counters.turns + tally.turns,
        ), now)

    def daily(self, dates: list[str]) -> DailyStats:
        tallies = [self._days.get(date, DayTally()) for date in dates]
        days = [day_from_counts(date, len(t.identities), t.counts) for date, t in zip(dates, tallies, strict=True)]
        return DailyStats(days, len(set().union(*(t.identities for t in tallies))))

    def counters(self, identity_hash: str) -> SessionCounters | None:
        kept = self._sessions.get(identity_hash)
        return None if kept is None else kept.counters

    def purge(self, now: float) -> None:
        """Drop the days and session counters past retention."""
        oldest = self._analytics.oldest_kept_day(now)
        for date in [date for date in self._days if date < oldest]:
            del self._days[date]
        horizon = now - self._analytics.retention
        for hashed in [h for h, kept in self._sessions.items() if kept.changed < horizon]:
            del self._sessions[hashed]


__all__ = ["DayTally", "MemoryAnalytics"]
