"""LiveKit access tokens for participants, and identities nobody can guess.

Why the server hands out identities: lkpersist recognises a returning participant by identity alone
and gives them back their session, context and recent conversation. An identity the browser makes up
from something predictable (``user-<timestamp>``, a counter, a name) lets anyone who guesses it join
as that person and hear their history. So the browser asks your server for a token; the server
creates a random identity the first time (:func:`new_identity`, 192 bits from :mod:`secrets`), the
browser keeps it (e.g. in localStorage) and asks again with it on later visits, and your server only
ever signs tokens for identities it issued. ``lkpersist token`` does the signing for scripts and demos.

The token is the one livekit-api's ``AccessToken`` makes (the same claims, HS256), signed here with the
standard library: minting needs no livekit package at all.
"""

from __future__ import annotations

import base64
import hmac
import json
import os
import re
import secrets
import time
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from lkpersist.exceptions import InvalidInputError
from lkpersist.logsafe import register_secret
from lkpersist.model.session import validate_identity

ENV_API_KEY: Final = "LIVEKIT_API_KEY"
ENV_API_SECRET: Final = "LIVEKIT_API_SECRET"
IDENTITY_PREFIX: Final = "p_"
IDENTITY_RANDOM_BYTES: Final = 24
"""192 bits: comfortably above the 128 bits that make guessing hopeless."""
DEFAULT_TOKEN_TTL: Final = 3600.0
LIVEKIT_NAME_LIMIT: Final = 256
"""Bytes a LiveKit server accepts by default in an identity, a room name and a participant name
(livekit-server's ``limit.max_participant_identity_length`` and friends); a longer one is refused at join."""


@dataclass(frozen=True, slots=True)
class MintedToken:
    """A signed access token and what it grants. ``jwt`` is a credential: never log it."""

    jwt: str
    identity: str
    room: str
    expires_at: float

    def __repr__(self) -> str:
        return f"MintedToken(identity={self.identity!r}, room={self.room!r}, expires_at={self.expires_at})"

    def to_dict(self) -> dict[str, Any]:
        return {"token": self.jwt, "identity": self.identity, "room": self.room, "expires_at": self.expires_at}


def new_identity(prefix: str = IDENTITY_PREFIX) -> str:
    """A fresh unguessable identity: ``prefix`` + 32 url-safe characters (192 random bits)."""
    return prefix + secrets.token_urlsafe(IDENTITY_RANDOM_BYTES)


def check_livekit_name(value: str, what: str) -> str:
    """``value`` when a LiveKit server accepts it as ``what`` (identity, room, name); else InvalidInputError.

    An empty or blank value is refused rather than replaced: ``--identity "$UNSET_VARIABLE"`` must not
    quietly turn a returning participant into a stranger.
    """
    if not value.strip():
        raise InvalidInputError(f"{what} is empty")
    if _has_control_characters(value):
        raise InvalidInputError(f"{what} contains control characters")
    size = len(value.encode("utf-8", "surrogatepass"))
    if size > LIVEKIT_NAME_LIMIT:
        raise InvalidInputError(f"{what} is {size} bytes; LiveKit accepts at most {LIVEKIT_NAME_LIMIT}")
    return value


def _has_control_characters(value: str) -> bool:
    # The fast path matters to `lkpersist serve`, which checks three names per token: in ASCII the only
    # such characters are C0 controls and DEL (no format or separator characters exist there).
    if value.isascii():
        return _ASCII_CONTROL.search(value) is not None
    return any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in value)


_ASCII_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")


def livekit_credentials(environ: Mapping[str, str] | None = None) -> tuple[str, str]:
    """``(api_key, api_secret)`` from the environment; a missing one is named (its value never is)."""
    env = os.environ if environ is None else environ
    values: list[str] = []
    for name in (ENV_API_KEY, ENV_API_SECRET):
        value = env.get(name, "").strip()
        if not value:
            raise InvalidInputError(f"{name} is not set: export the API key and secret of your LiveKit project")
        values.append(value)
    return values[0], values[1]


def mint_token(
    room: str,
    identity: str,
    *,
    ttl: float = DEFAULT_TOKEN_TTL,
    name: str | None = None,
    metadata: str | None = None,
    attributes: Mapping[str, str] | None = None,
    agent_name: str | None = None,
    publish_sources: Sequence[str] | None = None,
    api_key: str | None = None,
    api_secret: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> MintedToken:
    """Sign a token that lets ``identity`` join ``room`` for ``ttl`` seconds.

    ``agent_name`` puts a room configuration in the token that dispatches that agent when the room is
    created (explicit dispatch: a worker registered with ``agent_name`` takes the job; without it,
    workers without a name are dispatched automatically). ``publish_sources`` (e.g. ``["microphone"]``)
    limits what the participant may publish. Credentials default to ``LIVEKIT_API_KEY`` /
    ``LIVEKIT_API_SECRET``.
    """
    check_livekit_name(identity, "identity")
    validate_identity(identity)
    check_livekit_name(room, "room name")
    if name:
        check_livekit_name(name, "participant name")
    if ttl <= 0:
        raise InvalidInputError("token TTL must be positive")
    if api_key is None or api_secret is None:
        api_key, api_secret = livekit_credentials(environ)
    register_secret(api_secret)
    now = int(time.time())
    claims = _claims(room, name=name, metadata=metadata, attributes=attributes, agent_name=agent_name,
                     publish_sources=publish_sources)
    expires_at = now + max(1, int(ttl))
    claims.update(sub=identity, iss=api_key, nbf=now, exp=expires_at)
    return MintedToken(jwt=_sign_hs256(claims, api_secret), identity=identity, room=room,
                       expires_at=float(expires_at))


def _claims(
    room: str,
    *,
    name: str | None,
    metadata: str | None,
    attributes: Mapping[str, str] | None,
    agent_name: str | None,
    publish_sources: Sequence[str] | None,
) -> dict[str, Any]:
    """The claims livekit-api's ``AccessToken.to_jwt()`` writes for the same grants, built directly.

    Same names (camelCase), same defaults, unset values left out; tested equal to livekit-api's own
    output and read back by its ``TokenVerifier``. Built by hand because ``AccessToken`` spends two
    thirds of its time in ``dataclasses.asdict``, and ``lkpersist serve`` mints one per request.
    """
    video: dict[str, Any] = {"roomJoin": True, "room": room, "canPublish": True, "canSubscribe": True,
                             "canPublishData": True}
    if publish_sources is not None:
        video["canPublishSources"] = list(publish_sources)
    claims: dict[str, Any] = {"video": video}
    if name:
        claims["name"] = name
    if metadata:
        claims["metadata"] = metadata
    if attributes:
        claims["attributes"] = dict(attributes)
    if agent_name:
        claims["roomConfig"] = {"agents": [{"agentName": agent_name}]}
    return claims


def _sign_hs256(claims: Mapping[str, Any], secret: str) -> str:
    """A compact JWS (RFC 7515) with HMAC-SHA256: what PyJWT's ``jwt.encode(..., "HS256")`` produces.

    Signing with a fixed header has no choices to get wrong (verifying is where JWT goes wrong, and
    LiveKit does that); PyJWT spends most of its time on key-format checks that an HMAC secret does not
    need. The result is read back by livekit-api's ``TokenVerifier`` in the tests.
    """
    payload = _b64url(json.dumps(claims, separators=(",", ":")).encode("ascii"))
    signing_input = f"{_JWT_HEADER}.{payload}"
    signature = hmac.digest(secret.encode("utf-8"), signing_input.encode("ascii"), "sha256")
    return f"{signing_input}.{_b64url(signature)}"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


_JWT_HEADER: Final = _b64url(b'{"alg":"HS256","typ":"JWT"}')


__all__ = [
    "DEFAULT_TOKEN_TTL",
    "ENV_API_KEY",
    "ENV_API_SECRET",
    "IDENTITY_PREFIX",
    "LIVEKIT_NAME_LIMIT",
    "MintedToken",
    "check_livekit_name",
    "livekit_credentials",
    "mint_token",
    "new_identity",
]
