"""The analytics half of the storage contract, mixed into :class:`~lkpersist.stores.base.SessionStore`.

The analytics are *written* by the backends' own connect and append_turn, in the same atomic step
(see :mod:`lkpersist.model.analytics` for what is counted). Reading them is this contract: public
methods that check their arguments once, then call a backend primitive.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from lkpersist.model.analytics import Analytics, DailyStats, SessionCounters, check_days, window
from lkpersist.model.session import validate_identity
from lkpersist.stores.settings import StoreSettings


class AnalyticsContract(ABC):
    """Reads of the analytics a store keeps; the store supplies ``settings`` and ``now``."""

    settings: StoreSettings

    @abstractmethod
    def now(self) -> float: ...

    @property
    def analytics(self) -> Analytics:
        """This store's analytics configuration (retention, the keyed hash of identities)."""
        return self.settings.analytics

    async def daily_stats(self, days: int = 14) -> DailyStats:
        """Return the analytics of the last ``days`` UTC days of the store clock, oldest first, today included."""
        return await self._daily_stats(window(self.now(), check_days(days)))

    async def session_counters(self, identity: str) -> SessionCounters | None:
        """Return the event counters of the identity's current session; None when none are kept."""
        validate_identity(identity)
        if not self.analytics.ready:
            kept = await self._analytics_secret()
            if kept is None:
                return None  # nothing was ever counted in this store
            self.analytics.use_secret(kept)
        return await self._session_counters(identity, self.analytics.identity_hash(identity))

    async def _analytics_secret(self) -> str | None:
        """The secret this store keeps to hash identities with (None before its first connect wrote one).

        Backends shared between processes keep one (and write it in their first connect); the default,
        for a store of this process only, is the secret proposed here."""
        return self.analytics.proposed_secret

    @abstractmethod
    async def _daily_stats(self, dates: list[str]) -> DailyStats:
        """The stats of these UTC dates (``YYYY-MM-DD``, oldest first), zero where nothing was recorded."""

    @abstractmethod
    async def _session_counters(self, identity: str, identity_hash: str) -> SessionCounters | None: ...


__all__ = ["AnalyticsContract"]
