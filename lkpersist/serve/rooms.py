"""Which room a participant's token is for: chosen by the server, never by the browser.

Two policies:

- ``--room ROOM``: everyone joins ROOM (a shared demo room).
- otherwise each identity has its own room, ``<prefix><22 characters>``, the characters derived from the
  identity with a keyed hash. The same identity always gets the same room, so after a refresh the
  browser rejoins the room its agent is still in (the agent re-links it and says "welcome back" once);
  the name reveals nothing about the identity and cannot be computed without the server's secret.
  (The key comes from the signing resume secret: after a rotation an identity gets a new room on its
  next visit, which only means a fresh agent job; the session itself is in the store.)

A request's ``room_name`` is accepted only when it is the room the server chose anyway: letting the
browser pick would let anyone walk into someone else's room and listen. Anything else is a 403.
"""

from __future__ import annotations

import base64
import hmac
from typing import Final

from lkpersist.serve.config import ROOM_SUFFIX_CHARS, ServeConfig
from lkpersist.serve.request import RefusedRequest
from lkpersist.serve.resume import derive_key

ROOM_INFO: Final = b"lkpersist room name v1"


class RoomPolicy:
    """Names the room for an identity and checks what the browser asked for against it."""

    def __init__(self, config: ServeConfig) -> None:
        self._room = config.room
        self._prefix = config.room_prefix
        self._key = derive_key(config.signing_secrets[0], ROOM_INFO)

    def room_for(self, identity: str, requested: str | None = None) -> str:
        """The room ``identity`` joins; RefusedRequest(403) when ``requested`` names another one."""
        room = self._room if self._room is not None else self._own_room(identity)
        if requested is not None and requested != room:
            raise RefusedRequest(403, "room_name is chosen by the server: leave it out of the request")
        return room

    def _own_room(self, identity: str) -> str:
        digest = hmac.digest(self._key, identity.encode("utf-8"), "sha256")
        return self._prefix + base64.urlsafe_b64encode(digest).decode("ascii")[:ROOM_SUFFIX_CHARS]


__all__ = ["ROOM_INFO", "RoomPolicy"]
