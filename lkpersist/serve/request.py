"""The body of ``POST /api/token``: what livekit-client's ``TokenSource`` sends, plus ``resume_token``.

livekit-client 2.x (``TokenSource.endpoint``) POSTs protobuf-JSON of ``livekit.TokenSourceRequest`` with
proto field names: ``room_name``, ``participant_name``, ``participant_identity``,
``participant_metadata``, ``participant_attributes`` (string map) and ``room_config`` (a
``RoomConfiguration``; the client fills only ``agents: [{agent_name, metadata, deployment}]``). Unset
fields are left out, so ``{}`` is a valid request. Unknown fields are ignored, as protobuf-JSON parsers
do. Everything else in ``room_config`` (egress, limits, timeouts) is ignored too: a browser does not get
to configure the room.

A field of the wrong type is refused with a message naming it (:class:`RefusedRequest`, status 400).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lkpersist.exceptions import InvalidInputError
from lkpersist.serve.limits import check_attributes, check_participant_name, check_room_name

MAX_BODY_BYTES = 64 * 1024
"""A TokenSource request is a few hundred bytes; anything this large is not one."""


class RefusedRequest(InvalidInputError):
    """A request the server answers with ``status`` and a one-line ``{"error": message}``."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> None:
        self.status = status
        self.headers = dict(headers or {})
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class TokenRequest:
    """A checked token request. ``participant_identity`` is a claim only: never trusted on its own."""

    room_name: str | None = None
    participant_name: str | None = None
    participant_identity: str | None = None
    participant_metadata: str | None = None
    participant_attributes: Mapping[str, str] = field(default_factory=dict)
    agent_names: tuple[str, ...] = ()
    resume_token: str | None = None


def parse_token_request(body: object) -> TokenRequest:
    """The request in ``body`` (parsed JSON); RefusedRequest(400) naming the first field that is wrong."""
    if not isinstance(body, dict):
        raise RefusedRequest(400, "the request body must be a JSON object")
    try:
        return _parse(body)
    except RefusedRequest:
        raise
    except InvalidInputError as exc:
        raise RefusedRequest(400, str(exc)) from exc


def _parse(body: Mapping[str, Any]) -> TokenRequest:
    room_name = _optional_str(body, "room_name")
    name = _optional_str(body, "participant_name")
    return TokenRequest(
        room_name=None if room_name is None else check_room_name(room_name),
        participant_name=check_participant_name(name) if name else None,
        participant_identity=_optional_str(body, "participant_identity") or None,
        participant_metadata=_optional_str(body, "participant_metadata") or None,
        participant_attributes=check_attributes(_string_map(body, "participant_attributes")),
        agent_names=_agent_names(body.get("room_config")),
        resume_token=_optional_str(body, "resume_token") or None,
    )


def _optional_str(body: Mapping[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is None or isinstance(value, str):
        return value
    raise RefusedRequest(400, f"{name} must be a string")


def _string_map(body: Mapping[str, Any], name: str) -> dict[str, str]:
    value = body.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise RefusedRequest(400, f"{name} must be an object of strings")
    return dict(value)


def _agent_names(room_config: object) -> tuple[str, ...]:
    """The agents ``room_config`` asks to dispatch (snake_case or protobuf-JSON camelCase names)."""
    if room_config is None:
        return ()
    if not isinstance(room_config, dict):
        raise RefusedRequest(400, "room_config must be an object")
    agents = room_config.get("agents")
    if agents is None:
        return ()
    if not isinstance(agents, list) or not all(isinstance(agent, dict) for agent in agents):
        raise RefusedRequest(400, "room_config.agents must be a list of objects")
    names: list[str] = []
    for agent in agents:
        name = agent.get("agent_name", agent.get("agentName", ""))
        if not isinstance(name, str):
            raise RefusedRequest(400, "room_config.agents[].agent_name must be a string")
        names.append(name)
    return tuple(names)


__all__ = ["MAX_BODY_BYTES", "RefusedRequest", "TokenRequest", "parse_token_request"]
