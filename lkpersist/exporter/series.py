"""The exporter's series, listed once: each one's name, help, and how a snapshot gives its samples.

A series whose source the store cannot give yet is simply absent from the list. ``lkpersist_daily_active_
identities`` joins here, as one more :class:`Series` reading one more snapshot field, once the store keeps
per-day analytics (the second half of issue 14): nothing else in the exporter changes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from lkpersist.exporter.snapshot import StoreSnapshot

Samples = list[tuple[dict[str, str], float]]
"""(labels, value) pairs of one series."""


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    help: str
    samples: Callable[[StoreSnapshot], Samples]
    label_names: tuple[str, ...] = ()
    needs_census: bool = True
    """Left out of a scrape when the store did not answer (as redis_exporter does: only ``up`` then)."""


def _sessions(snapshot: StoreSnapshot) -> Samples:
    census = snapshot.census
    assert census is not None
    counts = {"active": census.active, "expired": census.expired, "connected": census.connected}
    return [({"status": status}, float(count)) for status, count in counts.items()]


def _counted(field: str) -> Callable[[StoreSnapshot], float | None]:
    return lambda snapshot: None if snapshot.census is None else float(getattr(snapshot.census, field))


def _one(value: Callable[[StoreSnapshot], float | None]) -> Callable[[StoreSnapshot], Samples]:
    def samples(snapshot: StoreSnapshot) -> Samples:
        found = value(snapshot)
        return [] if found is None else [({}, float(found))]

    return samples


SERIES: tuple[Series, ...] = (
    Series("lkpersist_store_up", "1 when the store answered the last reading, else 0.",
           _one(lambda s: 1.0 if s.up else 0.0), needs_census=False),
    Series("lkpersist_store_ping_seconds", "Time of one read round trip to the store (a probe identity).",
           _one(lambda s: s.ping_seconds)),
    Series("lkpersist_sessions", "Sessions by status: active (live), expired (not yet purged), connected "
           "(a participant present; on Redis: seen within the presence timeout, an upper bound).",
           _sessions, ("status",)),
    Series("lkpersist_turns_stored", "Conversation turns stored (on Redis past 32 sessions per key bucket: "
           "estimated from a random sample of turn lists).", _one(_counted("turns"))),
    Series("lkpersist_purge_backlog", "Expired sessions not yet purged (grows when no purge runs).",
           _one(_counted("expired"))),
    Series("lkpersist_purge_overdue_sessions", "Sessions expired for more than an hour and still stored: "
           "no purge ran in that hour.", _one(_counted("stale"))),
    Series("lkpersist_daily_active_identities", "Distinct identities that connected today (UTC, the store's "
           "clock; on Redis a HyperLogLog estimate).",
           _one(lambda s: None if s.today is None else float(s.today.active_identities))),
    Series("lkpersist_census_seconds", "Time the last count pass took.", _one(lambda s: s.census_seconds)),
)


__all__ = ["SERIES", "Samples", "Series"]
