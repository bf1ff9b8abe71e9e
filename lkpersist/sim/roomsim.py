"""Feed participant events into a real, unconnected ``rtc.Room``, as a LiveKit server would.

There is no LiveKit server in tests or in ``lkpersist simulate``. Instead of imitating the room, this
hands the room the same FFI ``RoomEvent`` messages its listen task receives from the native SDK and lets
the room's own dispatcher (``Room._on_room_event``) do the rest: it builds the real
``rtc.RemoteParticipant``, keeps ``room.remote_participants`` current, sets ``disconnect_reason`` and the
ACTIVE state, and calls every handler registered with ``room.on(...)`` — ours and anyone else's.

This touches two private parts of livekit-rtc (the ``_proto`` messages and ``_on_room_event``) on purpose
and only here; if a livekit-rtc upgrade moves them, this module is the one place to adapt.
"""

from __future__ import annotations

from collections.abc import Mapping

from livekit import rtc
from livekit.rtc._proto import handle_pb2, participant_pb2, room_pb2

CLIENT_INITIATED = rtc.DisconnectReason.CLIENT_INITIATED


class RoomEvents:
    """Drive one room's participant events: join, become active, leave, or a repeated join event."""

    def __init__(self, room: rtc.Room) -> None:
        self.room = room

    def join(
        self,
        identity: str,
        *,
        name: str = "",
        attributes: Mapping[str, str] | None = None,
        metadata: str = "",
        kind: rtc.ParticipantKind.ValueType = rtc.ParticipantKind.PARTICIPANT_KIND_STANDARD,
    ) -> rtc.RemoteParticipant:
        """A participant joins: ``participant_connected`` fires with a real RemoteParticipant."""
        info = participant_pb2.ParticipantInfo(
            sid=f"PA_{abs(hash(identity)) % 10**10}",
            identity=identity,
            name=name,
            metadata=metadata,
            attributes=dict(attributes or {}),
            kind=kind,
            state=participant_pb2.PARTICIPANT_STATE_JOINED,
        )
        owned = participant_pb2.OwnedParticipant(handle=handle_pb2.FfiOwnedHandle(id=0), info=info)
        self._dispatch(room_pb2.RoomEvent(participant_connected=room_pb2.ParticipantConnected(info=owned)))
        return self.room.remote_participants[identity]

    def activate(self, identity: str) -> None:
        """The participant finished joining and can receive data: ``participant_active`` fires."""
        self._dispatch(
            room_pb2.RoomEvent(participant_active=room_pb2.ParticipantActive(participant_identity=identity))
        )

    def leave(self, identity: str, reason: rtc.DisconnectReason.ValueType = CLIENT_INITIATED) -> None:
        """The participant leaves (a browser refresh sends CLIENT_INITIATED): ``participant_disconnected``."""
        event = room_pb2.ParticipantDisconnected(participant_identity=identity, disconnect_reason=reason)
        self._dispatch(room_pb2.RoomEvent(participant_disconnected=event))

    def repeat_join(self, identity: str) -> None:
        """Deliver ``participant_connected`` again for someone already in the room (a repeated event)."""
        self.room.emit("participant_connected", self.room.remote_participants[identity])

    def _dispatch(self, event: room_pb2.RoomEvent) -> None:
        self.room._on_room_event(event)


__all__ = ["CLIENT_INITIATED", "RoomEvents"]
