"""What the agent learns about a participant from LiveKit: language, name, attributes, metadata.

A frontend can announce the user's language as a participant attribute (``language``, ``lang`` or
``locale``, e.g. ``"es-MX"``) or in JSON participant metadata (``{"language": "es"}``); the first one
found wins. The device attributes (:mod:`lkpersist.agent.presence`) go to the session's devices. Everything
else is recorded into the session so the next visit knows it before the user speaks.
"""

from __future__ import annotations

import json
from typing import Any

from livekit import rtc

LANGUAGE_ATTRIBUTES = ("language", "lang", "locale")
DEVICE_ATTRIBUTES = ("lkpersist.device", "lkpersist.device_label")
"""Recorded as the session's devices (bounded, escaped), so left out of ``metadata["attributes"]``."""


def language_of(participant: rtc.Participant) -> str | None:
    """The language the participant announced, or None."""
    attributes = participant.attributes
    for key in LANGUAGE_ATTRIBUTES:
        value = attributes.get(key, "").strip()
        if value:
            return value
    parsed = _json_object(participant.metadata)
    announced = parsed.get("language") if parsed else None
    return announced.strip() or None if isinstance(announced, str) else None


def metadata_of(participant: rtc.Participant) -> dict[str, Any]:
    """The participant facts to merge into ``Session.metadata`` (a None value removes a stale key)."""
    raw = participant.metadata
    return {
        "name": participant.name or None,
        "kind": rtc.ParticipantKind.Name(participant.kind).removeprefix("PARTICIPANT_KIND_").lower(),
        "attributes": {k: v for k, v in participant.attributes.items() if k not in DEVICE_ATTRIBUTES} or None,
        "participant_metadata": (_json_object(raw) or raw) or None,
    }


def _json_object(text: str) -> dict[str, Any] | None:
    if not text or not text.lstrip().startswith("{"):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
