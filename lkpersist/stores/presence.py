"""The presence half of the storage contract: arrive, leave, beat and the greeting, written once.

:class:`~lkpersist.stores.base.SessionStore` inherits these public methods; each checks its arguments
(identity, connection id, device, turn count) here, once, and calls the backend primitive, so no backend
repeats a check or sees a raw device attribute. The rules themselves are :mod:`lkpersist.model.presence`.

``connect`` / ``disconnect`` / ``heartbeat`` are the single-connection form: the same primitives with the
connection id ``-``, for callers that hold one connection per participant (and for the existing API).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from lkpersist.model.presence import (
    ArrivalRequest,
    DeviceSeen,
    check_connection,
    check_restore_turns,
)
from lkpersist.model.results import Arrival, ConnectResult
from lkpersist.model.session import LEGACY_CONNECTION, Session, validate_identity

_CONNECT = ArrivalRequest(LEGACY_CONNECTION, claim=False)
"""What every single-connection ``connect`` asks (frozen, so one object serves them all)."""


class PresenceContract(ABC):
    """Who is connected to a session, visit by visit, and who greets each visit."""

    async def arrive(
        self, identity: str, connection: str, *, device: DeviceSeen | None = None, restore_turns: int = 0
    ) -> Arrival:
        """Join ``connection`` to the session (new if absent or expired), claim the visit's greeting if owed,
        and, for the caller greeting a return, read the newest ``restore_turns`` turns: one atomic step."""
        request = ArrivalRequest(
            check_connection(connection), _checked_device(device), check_restore_turns(restore_turns), claim=True
        )
        return await self._arrive(validate_identity(identity), request)

    async def leave(self, identity: str, connection: str, *, reason: str | None = None) -> Session | None:
        """Drop ``connection``; the last one leaving starts the countdown (``duplicate_identity``: a switch).

        None when there is no live session."""
        if reason is not None and not isinstance(reason, str):
            raise TypeError("reason must be a string")
        return await self._leave(validate_identity(identity), check_connection(connection), reason)

    async def beat(self, identity: str, connection: str) -> bool:
        """Refresh one live connection; False if it is not live (session gone, expired, or it went stale)."""
        return await self._beat(validate_identity(identity), check_connection(connection))

    async def connect(self, identity: str) -> ConnectResult:
        """Arrive as the single connection ``-`` without claiming the greeting (see ``claim_greeting``)."""
        return (await self._arrive(validate_identity(identity), _CONNECT)).as_connect()

    async def disconnect(self, identity: str) -> Session | None:
        """Leave as the single connection ``-``; None if there is no live session."""
        return await self._leave(validate_identity(identity), LEGACY_CONNECTION, None)

    async def heartbeat(self, identity: str) -> bool:
        """Beat as the single connection ``-``; False if it is not live."""
        return await self._beat(validate_identity(identity), LEGACY_CONNECTION)

    async def claim_greeting(self, identity: str) -> bool:
        """Atomically take the greeting of the ongoing visit; True for exactly one caller per visit."""
        return await self._claim_greeting(validate_identity(identity))

    @abstractmethod
    async def _arrive(self, identity: str, request: ArrivalRequest) -> Arrival: ...

    @abstractmethod
    async def _leave(self, identity: str, connection: str, reason: str | None) -> Session | None: ...

    @abstractmethod
    async def _beat(self, identity: str, connection: str) -> bool: ...

    @abstractmethod
    async def _claim_greeting(self, identity: str) -> bool: ...


def _checked_device(device: DeviceSeen | None) -> DeviceSeen | None:
    """Re-bound a device however it was built: a DeviceSeen made directly skipped ``bounded``."""
    if device is None:
        return None
    if not isinstance(device, DeviceSeen):
        raise TypeError("device must be a DeviceSeen")
    return DeviceSeen.bounded(device.device_id, device.label)


__all__ = ["PresenceContract"]
