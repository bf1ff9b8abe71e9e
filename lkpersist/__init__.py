"""lkpersist: session persistence for LiveKit voice agents.

The store side (``open_store``, the models, the errors) imports without livekit. ``SessionPersistence``
(the agent-side controller) is loaded on first access so that ``lkpersist sessions ...`` starts fast;
without livekit installed that access raises MissingDependencyError (an ImportError) naming the extra.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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
    StoreUnavailableError,
)
from lkpersist.model.events import SessionEvent
from lkpersist.model.results import ConnectResult, CorruptRecord, Page, PurgeResult
from lkpersist.model.session import Session, Turn
from lkpersist.model.ttl import DEFAULT_TTL_POLICY, TTLPolicy
from lkpersist.stores import open_store
from lkpersist.stores.base import SessionStore
from lkpersist.stores.fallback import FallbackStore

if TYPE_CHECKING:
    from lkpersist.agent.controller import SessionPersistence

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_TTL_POLICY",
    "Clock",
    "ConnectResult",
    "CorruptRecord",
    "CorruptRecordError",
    "DecryptionError",
    "FallbackStore",
    "InvalidInputError",
    "InvalidStoreURLError",
    "LkPersistError",
    "LockHeldError",
    "MissingDependencyError",
    "Page",
    "PurgeResult",
    "Session",
    "SessionEvent",
    "SessionNotFoundError",
    "SessionPersistence",
    "SessionStore",
    "StoreError",
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
    raise AttributeError(f"module 'lkpersist' has no attribute {name!r}")
