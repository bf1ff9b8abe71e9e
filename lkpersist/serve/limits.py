"""What LiveKit refuses, checked before a token is signed (so the browser gets a 400, not a failed join).

Names (room names, identities, participant names) follow :func:`lkpersist.tokens.check_livekit_name`:
not empty, no control characters, at most 256 bytes (livekit-server's default ``limit:``). Text from a
browser must also be valid Unicode: JSON can carry a lone surrogate (``"\\ud800"``), which no UTF-8
encoder (and no LiveKit server) takes. Participant attributes may take up to 64 KiB, keys and values
together, and none may be in LiveKit's own ``lk.`` namespace.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from lkpersist.exceptions import InvalidInputError
from lkpersist.tokens import LIVEKIT_NAME_LIMIT, check_livekit_name

MAX_ROOM_NAME_BYTES: Final = LIVEKIT_NAME_LIMIT
MAX_IDENTITY_BYTES: Final = LIVEKIT_NAME_LIMIT
MAX_ATTRIBUTES_BYTES: Final = 64 * 1024
RESERVED_ATTRIBUTE_PREFIX: Final = "lk."
"""LiveKit's own attributes (``lk.agent.state``, ``lk.publish_on_behalf``): not for a browser to set."""


def check_room_name(name: str, what: str = "room_name") -> str:
    """``name`` when LiveKit accepts it as a room name; InvalidInputError saying why otherwise."""
    return check_livekit_name(_unicode(name, what), what)


def check_identity(identity: str) -> str:
    """``identity`` when LiveKit accepts it as a participant identity."""
    return check_livekit_name(_unicode(identity, "participant identity"), "participant identity")


def check_participant_name(name: str) -> str:
    """A display name LiveKit accepts."""
    return check_livekit_name(_unicode(name, "participant_name"), "participant_name")


def check_attributes(attributes: Mapping[str, str]) -> Mapping[str, str]:
    """Attributes within LiveKit's size limit, none of them in LiveKit's reserved ``lk.`` namespace."""
    total = sum(_size(key, "participant_attributes") + _size(value, "participant_attributes")
                for key, value in attributes.items())
    if total > MAX_ATTRIBUTES_BYTES:
        raise InvalidInputError(
            f"participant_attributes are {total} bytes; LiveKit allows {MAX_ATTRIBUTES_BYTES}"
        )
    reserved = sorted(key for key in attributes if key.startswith(RESERVED_ATTRIBUTE_PREFIX))
    if reserved:
        raise InvalidInputError(f"participant_attributes may not set LiveKit's own {reserved[0]!r}")
    return attributes


def _unicode(text: str, what: str) -> str:
    _size(text, what)
    return text


def _size(text: str, what: str) -> int:
    try:
        return len(text.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise InvalidInputError(f"{what} is not valid Unicode text") from exc


__all__ = [
    "MAX_ATTRIBUTES_BYTES",
    "MAX_IDENTITY_BYTES",
    "MAX_ROOM_NAME_BYTES",
    "RESERVED_ATTRIBUTE_PREFIX",
    "check_attributes",
    "check_identity",
    "check_participant_name",
    "check_room_name",
]
