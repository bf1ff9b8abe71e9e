"""What a :class:`~lkpersist.stores.fallback.FallbackStore` always asks its primary, degraded or not.

Events, locks, raw values, the census, export and import, and the analytics are the primary's own and
never faked from memory: an operator's view or a lock held in one process's memory would be a lie.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from lkpersist.model.analytics import DailyStats, SessionCounters
from lkpersist.model.results import Census, CorruptRecord, StorageInfo
from lkpersist.model.session import Status
from lkpersist.model.transfer import ConflictRule, ImportOutcome, SessionRecord
from lkpersist.stores.base import RecordPage, SessionStore
from lkpersist.stores.events import EventSource
from lkpersist.stores.raw import StoredValues


class PrimaryOnly:
    """The primitives a FallbackStore hands straight to ``primary`` (mixed in before SessionStore)."""

    primary: SessionStore

    async def _census(self, now: float, stale_after: float) -> Census:
        return await self.primary._census(now, stale_after)

    async def _storage_info(self) -> StorageInfo:
        return await self.primary._storage_info()

    def _scan_records(self, status: Status, page_size: int) -> AsyncIterator[RecordPage]:
        return self.primary._scan_records(status, page_size)

    async def _load_records(self, identities: Sequence[str]) -> list[SessionRecord | CorruptRecord | None]:
        return await self.primary._load_records(identities)

    async def _import_records(self, records: Sequence[SessionRecord], rule: ConflictRule) -> list[ImportOutcome]:
        return await self.primary._import_records(records, rule)

    def _event_source(self) -> EventSource:
        return self.primary._event_source()

    async def _acquire_lock(self, name: str, ttl: float) -> str | None:
        return await self.primary._acquire_lock(name, ttl)

    async def _release_lock(self, name: str, token: str) -> bool:
        return await self.primary._release_lock(name, token)

    async def _extend_lock(self, name: str, token: str, ttl: float) -> bool:
        return await self.primary._extend_lock(name, token, ttl)

    def stored_values(self) -> StoredValues:
        return self.primary.stored_values()

    async def _daily_stats(self, dates: list[str]) -> DailyStats:
        return await self.primary._daily_stats(dates)

    async def _session_counters(self, identity: str, identity_hash: str) -> SessionCounters | None:
        return await self.primary.session_counters(identity)  # hashed with the primary's own secret


__all__ = ["PrimaryOnly"]
