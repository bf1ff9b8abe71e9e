"""What a token request gets: the rules of ``POST /api/token``, free of any web framework.

:class:`TokenIssuer` is what ``lkpersist serve`` runs for every request, and it can be called from an
endpoint of your own (FastAPI, Django, ...) with the parsed JSON body::

    issuer = TokenIssuer(ServeConfig.from_environment(os.environ))
    return issuer.issue(parse_token_request(body)).to_dict()

The rules: a valid ``resume_token`` gets a token for the identity it names and a refreshed credential;
anything else (none, forged, tampered, expired, another server's) gets a new unguessable identity and a
new credential. The request's ``participant_identity`` is a claim and is never used to choose the
identity. The room is the server's choice (:mod:`lkpersist.serve.rooms`); the only agent a token
dispatches is ``--agent-name``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from lkpersist.clock import Clock
from lkpersist.serve.config import ServeConfig
from lkpersist.serve.request import RefusedRequest, TokenRequest
from lkpersist.serve.resume import ResumeSigner
from lkpersist.serve.rooms import RoomPolicy
from lkpersist.tokens import mint_token, new_identity

PUBLISH_SOURCES: Final = ("microphone",)
"""A voice-agent page publishes its microphone and data (text streams); no camera, no screen share."""


@dataclass(frozen=True, slots=True)
class TokenResponse:
    """The answer: what ``TokenSource`` reads (server_url, participant_token) and what the page keeps."""

    server_url: str
    participant_token: str
    participant_identity: str
    resume_token: str
    room_name: str

    def __repr__(self) -> str:
        return f"TokenResponse(participant_identity={self.participant_identity!r}, room={self.room_name!r})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "server_url": self.server_url,
            "participant_token": self.participant_token,
            "participant_identity": self.participant_identity,
            "resume_token": self.resume_token,
            "room_name": self.room_name,
        }


class TokenIssuer:
    """Turns checked token requests into LiveKit tokens and resume credentials."""

    def __init__(self, config: ServeConfig, *, clock: Clock | None = None) -> None:
        self.config = config
        self.signer = ResumeSigner(config.signing_secrets, ttl=config.resume_ttl, clock=clock)
        self.rooms = RoomPolicy(config)

    def identity_of(self, resume_token: str | None) -> str | None:
        """The identity a genuine, unexpired credential names; None otherwise (never why)."""
        return self.signer.verify(resume_token) if resume_token else None

    def issue(self, request: TokenRequest) -> TokenResponse:
        """A token and a fresh credential; RefusedRequest(403) for a room or an agent not on offer."""
        identity = self.identity_of(request.resume_token) or new_identity()
        room = self.rooms.room_for(identity, request.room_name)
        self._check_agents(request.agent_names)
        config = self.config
        minted = mint_token(
            room,
            identity,
            ttl=config.token_ttl,
            name=request.participant_name,
            metadata=request.participant_metadata,
            attributes=request.participant_attributes,
            agent_name=config.agent_name,
            publish_sources=PUBLISH_SOURCES,
            api_key=config.api_key,
            api_secret=config.api_secret,
        )
        return TokenResponse(config.livekit_url, minted.jwt, identity, self.signer.issue(identity), room)

    def _check_agents(self, requested: tuple[str, ...]) -> None:
        """A browser may ask for the agent this server dispatches, never for another one."""
        offered = self.config.agent_name
        unknown = sorted({name for name in requested if name and name != offered})
        if not unknown:
            return
        if offered is None:
            raise RefusedRequest(403, "this server dispatches no named agent: leave room_config out")
        raise RefusedRequest(403, f"this server dispatches only the agent {offered!r}")


__all__ = ["PUBLISH_SOURCES", "TokenIssuer", "TokenResponse"]
