"""Configuration of ``lkpersist serve``, checked before anything listens (no aiohttp, no livekit here).

``LIVEKIT_URL``, ``LIVEKIT_API_KEY`` and ``LIVEKIT_API_SECRET`` come from the environment (the names of
the missing ones are given together); the resume secrets from ``LKPERSIST_RESUME_SECRET`` /
``LKPERSIST_RESUME_SECRET_OLD`` (:mod:`lkpersist.serve.resume`); everything else from options.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlsplit

from lkpersist.exceptions import InvalidInputError
from lkpersist.serve.limits import MAX_ROOM_NAME_BYTES, check_room_name
from lkpersist.serve.ratelimit import RateLimit
from lkpersist.serve.resume import resume_secrets

LIVEKIT_ENV: Final = ("LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET")
DEFAULT_ROOM_PREFIX: Final = "lkpersist-"
DEFAULT_TOKEN_TTL: Final = 15 * 60.0
DEFAULT_RESUME_TTL: Final = 30 * 86400.0
DEFAULT_CONNECT_TIMEOUT: Final = 10.0
DEFAULT_HISTORY_TURNS: Final = 20
DEFAULT_RATE_LIMIT: Final = RateLimit(60, 60.0)
ROOM_SUFFIX_CHARS: Final = 22
"""A per-identity room is the prefix plus 22 base64url characters (132 bits) derived from the identity."""
_URL_SCHEMES: Final = ("ws", "wss", "http", "https")


@dataclass(frozen=True, slots=True)
class ServeConfig:
    """Everything ``lkpersist serve`` can be told; durations in seconds. Secrets stay out of ``repr``."""

    livekit_url: str
    api_key: str
    api_secret: str = field(repr=False)
    resume_secrets: tuple[str, ...] = field(repr=False, default=())
    """The first signs resume credentials, all verify; empty means the LiveKit API secret."""
    host: str = "127.0.0.1"
    port: int = 8080
    agent_name: str | None = None
    room: str | None = None
    room_prefix: str = DEFAULT_ROOM_PREFIX
    token_ttl: float = DEFAULT_TOKEN_TTL
    resume_ttl: float = DEFAULT_RESUME_TTL
    allow_origins: tuple[str, ...] = ()
    rate_limit: RateLimit | None = DEFAULT_RATE_LIMIT
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    history_turns: int = DEFAULT_HISTORY_TURNS
    store_url: str | None = None
    access_log: bool = True

    def __post_init__(self) -> None:
        _check_livekit_url(self.livekit_url)
        if not 0 <= self.port <= 65535:
            raise InvalidInputError(f"--port must be between 0 and 65535, not {self.port}")
        if min(self.token_ttl, self.resume_ttl, self.connect_timeout) <= 0:
            raise InvalidInputError("--token-ttl, --resume-ttl and --connect-timeout must be positive")
        if not 1 <= self.history_turns <= 100:
            raise InvalidInputError("--history-turns must be between 1 and 100")
        if self.room is not None:
            check_room_name(self.room, "--room")
        elif self.room_prefix:
            check_room_name(self.room_prefix, "--room-prefix")
            if len(self.room_prefix.encode("utf-8")) + ROOM_SUFFIX_CHARS > MAX_ROOM_NAME_BYTES:
                raise InvalidInputError(
                    f"--room-prefix is too long for a {MAX_ROOM_NAME_BYTES}-byte room name"
                )
        if self.agent_name is not None and not self.agent_name.strip():
            raise InvalidInputError("--agent-name must not be empty")
        for origin in self.allow_origins:
            _check_origin(origin)

    @property
    def signing_secrets(self) -> tuple[str, ...]:
        """The resume secrets in use, the signing one first."""
        return self.resume_secrets or (self.api_secret,)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str], **options: Any) -> ServeConfig:
        """LiveKit settings and resume secrets from ``environ``, the rest from ``options``."""
        missing = [name for name in LIVEKIT_ENV if not environ.get(name, "").strip()]
        if missing:
            verb = "is" if len(missing) == 1 else "are"
            raise InvalidInputError(
                f"{', '.join(missing)} {verb} not set: export the settings of your LiveKit project"
            )
        url, key, secret = (environ[name].strip() for name in LIVEKIT_ENV)
        return cls(url, key, secret, resume_secrets=resume_secrets(environ, secret), **options)


def _check_livekit_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in _URL_SCHEMES or not parts.hostname:
        raise InvalidInputError(f"LIVEKIT_URL must be a ws://, wss://, http:// or https:// URL, not {url!r}")


def _check_origin(origin: str) -> None:
    """``scheme://host[:port]`` and nothing after it (the Origin header's exact form), or ``*``."""
    if origin == "*":
        return
    parts = urlsplit(origin)
    extra = parts.path or parts.query or parts.fragment
    if parts.scheme not in ("http", "https") or not parts.hostname or extra:
        raise InvalidInputError(
            f"--allow-origin takes an origin such as https://app.example.com, not {origin!r}"
        )


__all__ = ["DEFAULT_RATE_LIMIT", "DEFAULT_ROOM_PREFIX", "LIVEKIT_ENV", "ROOM_SUFFIX_CHARS", "ServeConfig"]
