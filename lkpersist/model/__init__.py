"""The domain of lkpersist, free of any storage: what a session is and the rules it lives by.

- :mod:`~lkpersist.model.session`: the session record, its turns, the changes an update merges.
- :mod:`~lkpersist.model.results`: what store operations answer (an arrival's verdict, pages, purges).
- :mod:`~lkpersist.model.presence`: connections and visits: arrive, leave, beat, the greeting, devices.
- :mod:`~lkpersist.model.lifecycle`: update, purge, who is present.
- :mod:`~lkpersist.model.ttl`: how long a session outlives its participant's last sign of life.
- :mod:`~lkpersist.model.events`: which session events an operation amounts to.
- :mod:`~lkpersist.model.reconcile`: how an outage's journal merges back into a store.

Every backend applies these rules (Redis restates them in Lua); nothing here knows a backend.
"""

from __future__ import annotations

from lkpersist.model.events import EVENT_KINDS, EventKind, SessionEvent
from lkpersist.model.results import ConnectResult, CorruptRecord, Page, PurgeResult
from lkpersist.model.session import (
    DEFAULT_MAX_TURNS,
    MAX_IDENTITY_BYTES,
    SCHEMA_VERSION,
    STATUSES,
    Session,
    SessionChanges,
    Status,
    Turn,
    validate_identity,
)
from lkpersist.model.ttl import DEFAULT_TTL_POLICY, TTLPolicy

__all__ = [
    "DEFAULT_MAX_TURNS",
    "DEFAULT_TTL_POLICY",
    "EVENT_KINDS",
    "MAX_IDENTITY_BYTES",
    "SCHEMA_VERSION",
    "STATUSES",
    "ConnectResult",
    "CorruptRecord",
    "EventKind",
    "Page",
    "PurgeResult",
    "Session",
    "SessionChanges",
    "SessionEvent",
    "Status",
    "TTLPolicy",
    "Turn",
    "validate_identity",
]
