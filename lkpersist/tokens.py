"""LiveKit access tokens for participants, and identities nobody can guess.

Why the server hands out identities: lkpersist recognises a returning participant by identity alone
and gives them back their session, context and recent conversation. An identity the browser makes up
from something predictable (``user-<timestamp>``, a counter, a name) lets anyone who guesses it join
as that person and hear their history. So the browser asks your server for a token; the server
creates a random identity the first time (:func:`new_identity`, 192 bits from :mod:`secrets`), the
browser keeps it (e.g. in localStorage) and asks again with it on later visits, and your server only
ever signs tokens for identities it issued. ``lkpersist token`` does the signing for scripts and demos.

livekit-api is imported only when a token is minted, so the rest of lkpersist works without it.
"""

from __future__ import annotations

import os
import secrets
import time
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
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
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in value):
        raise InvalidInputError(f"{what} contains control characters")
    size = len(value.encode("utf-8", "surrogatepass"))
    if size > LIVEKIT_NAME_LIMIT:
        raise InvalidInputError(f"{what} is {size} bytes; LiveKit accepts at most {LIVEKIT_NAME_LIMIT}")
    return value


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
    api_key: str | None = None,
    api_secret: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> MintedToken:
    """Sign a token that lets ``identity`` join ``room`` for ``ttl`` seconds.

    Credentials default to ``LIVEKIT_API_KEY`` / ``LIVEKIT_API_SECRET``.
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
    api = _livekit_api()
    token = (
        api.AccessToken(api_key, api_secret)
        .with_identity(identity)
        .with_grants(api.VideoGrants(room_join=True, room=room))
        .with_ttl(timedelta(seconds=ttl))
    )
    if name:
        token = token.with_name(name)
    expires_at = float(int(time.time() + ttl))
    return MintedToken(jwt=token.to_jwt(), identity=identity, room=room, expires_at=expires_at)


def _livekit_api() -> Any:
    from lkpersist.optional import import_agent_side

    return import_agent_side("livekit.api", "lkpersist token")


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
