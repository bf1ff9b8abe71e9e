"""One reading of a store for the exporter, taken at most once per interval.

A scrape that finds the last reading younger than the interval gets it as it is; otherwise one census
pass runs (concurrent scrapes wait for the same one), so a scrape never costs more than one count pass
and a busy Prometheus (or several) never multiplies the load on the store.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from lkpersist.exceptions import LkPersistError
from lkpersist.logsafe import get_logger
from lkpersist.model.analytics import DayStats
from lkpersist.model.results import Census
from lkpersist.stores.base import SessionStore

PROBE_IDENTITY = "lkpersist-exporter-probe"
"""Read (never written) to time one round trip to the store."""

log = get_logger("lkpersist.exporter")


@dataclass(frozen=True, slots=True)
class StoreSnapshot:
    """What one reading found; ``census`` None when the store did not answer (``up`` false)."""

    taken_at: float
    up: bool
    ping_seconds: float | None = None
    census: Census | None = None
    census_seconds: float | None = None
    error: str | None = None
    today: DayStats | None = None
    """Today's analytics (UTC, the store clock), read in the same pass."""


class SnapshotCache:
    """The latest :class:`StoreSnapshot` of ``store``, renewed when older than ``interval`` seconds."""

    def __init__(self, store: SessionStore, interval: float) -> None:
        self.store = store
        self.interval = interval
        self.passes = 0
        """Census passes run so far (one per interval at most)."""
        self._latest: StoreSnapshot | None = None
        self._renewing: asyncio.Lock | None = None

    async def get(self) -> StoreSnapshot:
        if self._renewing is None:
            self._renewing = asyncio.Lock()
        async with self._renewing:
            latest = self._latest
            if latest is None or time.monotonic() - latest.taken_at >= self.interval:
                self._latest = latest = await self._take()
            return latest

    async def _take(self) -> StoreSnapshot:
        self.passes += 1
        started = time.monotonic()
        try:
            await self.store.get(PROBE_IDENTITY)
            pinged = time.monotonic()
            census = await self.store.census()
            today = (await self.store.daily_stats(1)).days[-1]
        except LkPersistError as exc:
            log.warning("store did not answer the exporter: %s", exc)
            return StoreSnapshot(taken_at=started, up=False, error=str(exc))
        finished = time.monotonic()
        return StoreSnapshot(started, True, pinged - started, census, finished - pinged, today=today)


__all__ = ["PROBE_IDENTITY", "SnapshotCache", "StoreSnapshot"]
