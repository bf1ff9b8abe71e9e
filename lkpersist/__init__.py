"""lkpersist: session persistence for LiveKit voice agents.

Every public name is loaded on first access (PEP 562), so ``import lkpersist`` — which every
``lkpersist`` command and every Tab press of completion pays for — imports nothing heavy: the store
side (``open_store``, the models, the errors) pulls in asyncio when used, and ``SessionPersistence``
(the agent-side controller) pulls in livekit; without livekit installed that access raises
MissingDependencyError (an ImportError) naming the extra to install.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lkpersist.agent.controller import SessionPersistence
    from lkpersist.clock import Clock, SystemClock, VirtualClock
    from lkpersist.exceptions import (
        CorruptRecordError,
        DecryptionError,
        InvalidInputError,
        InvalidStoreURLError,
        LkPersistError,
        LockHeldError,
        MissingDependencyError,
        SessionNotFoundError,
        StoreError,
        StoreNotFoundError,
        StoreReadOnlyError,
        StoreUnavailableError,
    )
    from lkpersist.model.analytics import AnalyticsSettings, DailyStats, DayStats, SessionCounters
    from lkpersist.model.events import SessionEvent
    from lkpersist.model.presence import DeviceSeen
    from lkpersist.model.results import Arrival, ConnectResult, CorruptRecord, Page, PurgeResult
    from lkpersist.model.session import Connection, Device, Session, Turn
    from lkpersist.model.ttl import DEFAULT_TTL_POLICY, TTLPolicy
    from lkpersist.stores import open_store
    from lkpersist.stores.base import SessionStore
    from lkpersist.stores.fallback import FallbackStore

__version__ = "0.1.0"

_EXCEPTIONS = (
    "CorruptRecordError", "DecryptionError", "InvalidInputError", "InvalidStoreURLError", "LkPersistError",
    "LockHeldError", "MissingDependencyError", "SessionNotFoundError", "StoreError", "StoreNotFoundError",
    "StoreReadOnlyError", "StoreUnavailableError",
)
_MODULE_OF: dict[str, str] = {
    **dict.fromkeys(("Clock", "SystemClock", "VirtualClock"), "lkpersist.clock"),
    **dict.fromkeys(_EXCEPTIONS, "lkpersist.exceptions"),
    **dict.fromkeys(("AnalyticsSettings", "DailyStats", "DayStats", "SessionCounters"), "lkpersist.model.analytics"),
    "SessionEvent": "lkpersist.model.events",
    "DeviceSeen": "lkpersist.model.presence",
    **dict.fromkeys(("Arrival", "ConnectResult", "CorruptRecord", "Page", "PurgeResult"), "lkpersist.model.results"),
    **dict.fromkeys(("Connection", "Device", "Session", "Turn"), "lkpersist.model.session"),
    **dict.fromkeys(("DEFAULT_TTL_POLICY", "TTLPolicy"), "lkpersist.model.ttl"),
    "open_store": "lkpersist.stores",
    "SessionStore": "lkpersist.stores.base",
    "FallbackStore": "lkpersist.stores.fallback",
}

__all__ = [
    "DEFAULT_TTL_POLICY",
    "AnalyticsSettings",
    "Arrival",
    "Clock",
    "ConnectResult",
    "Connection",
    "CorruptRecord",
    "CorruptRecordError",
    "DailyStats",
    "DayStats",
    "DecryptionError",
    "Device",
    "DeviceSeen",
    "FallbackStore",
    "InvalidInputError",
    "InvalidStoreURLError",
    "LkPersistError",
    "LockHeldError",
    "MissingDependencyError",
    "Page",
    "PurgeResult",
    "Session",
    "SessionCounters",
    "SessionEvent",
    "SessionNotFoundError",
    "SessionPersistence",
    "SessionStore",
    "StoreError",
    "StoreNotFoundError",
    "StoreReadOnlyError",
    "StoreUnavailableError",
    "SystemClock",
    "TTLPolicy",
    "Turn",
    "VirtualClock",
    "__version__",
    "open_store",
]


def __getattr__(name: str) -> Any:
    if name == "SessionPersistence":
        from lkpersist.optional import import_agent_side

        return import_agent_side("lkpersist.agent.controller", "SessionPersistence").SessionPersistence
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'lkpersist' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value  # loaded once
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
