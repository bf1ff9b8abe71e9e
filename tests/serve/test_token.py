"""POST /api/token: who gets which identity, and what the signed token grants (checked by livekit-api)."""

from __future__ import annotations

import pytest

from lkpersist.serve.resume import ResumeSigner
from lkpersist.tokens import IDENTITY_PREFIX
from tests.serve.conftest import API_SECRET, Server, StartServer, verify

ANSWER_KEYS = {"server_url", "participant_token", "participant_identity", "resume_token", "room_name"}


async def test_a_first_request_gets_a_new_unguessable_identity(server: Server) -> None:
    status, answer = await server.token({})
    assert status == 200, answer
    assert set(answer) == ANSWER_KEYS
    identity = answer["participant_identity"]
    assert identity.startswith(IDENTITY_PREFIX) and len(identity) - len(IDENTITY_PREFIX) >= 22  # >= 128 bits
    assert answer["server_url"] == server.config.livekit_url
    claims = verify(answer["participant_token"])
    assert claims.identity == identity
    assert claims.video.room_join and claims.video.room == answer["room_name"]
    assert claims.video.can_publish_sources == ["microphone"] and claims.video.can_publish_data
    assert claims.room_config is None  # no --agent-name: automatic dispatch


async def test_identities_differ_between_requests(server: Server) -> None:
    identities = {(await server.token({}))[1]["participant_identity"] for _ in range(20)}
    assert len(identities) == 20


async def test_a_valid_resume_token_keeps_the_identity_and_is_refreshed(server: Server) -> None:
    _, first = await server.token({})
    server.clock.advance(3600)
    _, second = await server.token({"resume_token": first["resume_token"]})
    assert second["participant_identity"] == first["participant_identity"]
    assert verify(second["participant_token"]).identity == first["participant_identity"]
    assert second["resume_token"] != first["resume_token"]  # a new expiry: remembered 30 days from now
    assert second["room_name"] == first["room_name"]  # the same room: the agent there re-links the participant


async def test_a_claimed_identity_alone_is_ignored(server: Server) -> None:
    _, victim = await server.token({})
    status, answer = await server.token({"participant_identity": victim["participant_identity"]})
    assert status == 200
    assert answer["participant_identity"] != victim["participant_identity"]
    assert verify(answer["participant_token"]).identity == answer["participant_identity"]


async def test_a_resume_token_wins_over_a_claimed_identity(server: Server) -> None:
    _, mine = await server.token({})
    _, other = await server.token({})
    _, answer = await server.token({"resume_token": mine["resume_token"],
                                    "participant_identity": other["participant_identity"]})
    assert answer["participant_identity"] == mine["participant_identity"]


@pytest.mark.parametrize("spoil", [
    lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),              # signature changed
    lambda t: t[:20] + ("A" if t[20] != "A" else "B") + t[21:],      # payload changed
    lambda t: t.split(".")[0],                                        # signature dropped
    lambda t: t + "." + t,                                            # extra part
    lambda t: "garbage",
    lambda t: "x" * 5000,                                             # longer than any credential
])
async def test_a_tampered_resume_token_gets_a_new_identity_and_the_same_kind_of_answer(
    server: Server, spoil: object
) -> None:
    _, mine = await server.token({})
    status, answer = await server.token({"resume_token": spoil(mine["resume_token"]),  # type: ignore[operator]
                                         "participant_identity": mine["participant_identity"]})
    assert status == 200 and set(answer) == ANSWER_KEYS  # nothing tells which check failed
    assert answer["participant_identity"] != mine["participant_identity"]


async def test_an_expired_resume_token_gets_a_new_identity(server: Server) -> None:
    _, mine = await server.token({})
    server.clock.advance(server.config.resume_ttl + 1)
    _, answer = await server.token({"resume_token": mine["resume_token"]})
    assert answer["participant_identity"] != mine["participant_identity"]


async def test_another_servers_resume_token_gets_a_new_identity(start_server: StartServer) -> None:
    ours = await start_server(resume_secrets=("our-resume-secret-with-32-characters-or-more",))
    theirs = await start_server(resume_secrets=("their-resume-secret-with-32-characters-or-more",))
    _, foreign = await theirs.token({})
    _, answer = await ours.token({"resume_token": foreign["resume_token"]})
    assert answer["participant_identity"] != foreign["participant_identity"]


async def test_rotation_keeps_returning_browsers(start_server: StartServer) -> None:
    old, new = "the-old-resume-secret-with-32-characters-or-more", "the-new-resume-secret-with-32-characters"
    before = await start_server(resume_secrets=(old,))
    _, first = await before.token({})
    after = await start_server(resume_secrets=(new, old))
    _, second = await after.token({"resume_token": first["resume_token"]})
    assert second["participant_identity"] == first["participant_identity"]
    new_only = ResumeSigner([new], ttl=60, clock=after.clock)
    assert new_only.verify(second["resume_token"]) == first["participant_identity"]


async def test_without_a_resume_secret_the_livekit_secret_is_the_key_material(server: Server) -> None:
    _, answer = await server.token({})
    assert ResumeSigner([API_SECRET], ttl=60, clock=server.clock).verify(answer["resume_token"]) is not None


async def test_the_agent_name_puts_a_dispatch_in_the_token(start_server: StartServer) -> None:
    server = await start_server(agent_name="support-agent")
    _, answer = await server.token({"room_config": {"agents": [{"agent_name": "support-agent"}]}})
    claims = verify(answer["participant_token"])
    assert claims.room_config is not None
    assert [agent.agent_name for agent in claims.room_config.agents] == ["support-agent"]
    _, plain = await server.token({})  # the stock TokenSource without agentName gets the same dispatch
    assert [a.agent_name for a in verify(plain["participant_token"]).room_config.agents] == ["support-agent"]


async def test_name_metadata_attributes_and_ttl_reach_the_token(start_server: StartServer) -> None:
    server = await start_server(token_ttl=600.0)
    _, answer = await server.token({"participant_name": "Alice", "participant_metadata": '{"plan":"pro"}',
                                    "participant_attributes": {"language": "es-MX"}})
    claims = verify(answer["participant_token"])
    assert (claims.name, claims.metadata, claims.attributes) == ("Alice", '{"plan":"pro"}', {"language": "es-MX"})
    import jwt

    payload = jwt.decode(answer["participant_token"], options={"verify_signature": False})
    assert payload["exp"] - payload["nbf"] == 600


async def test_each_identity_has_its_own_room_unless_one_room_is_configured(start_server: StartServer) -> None:
    per_identity = await start_server(room_prefix="support-")
    rooms = {(await per_identity.token({}))[1]["room_name"] for _ in range(3)}
    assert len(rooms) == 3 and all(room.startswith("support-") for room in rooms)
    shared = await start_server(room="lobby")
    assert {(await shared.token({}))[1]["room_name"] for _ in range(3)} == {"lobby"}
    status, _ = await shared.token({"room_name": "lobby"})
    assert status == 200


async def test_the_stock_tokensource_request_is_accepted(start_server: StartServer) -> None:
    """The exact body livekit-client 2.23's TokenSource.endpoint() sends (captured from the real client)."""
    server = await start_server(agent_name="my-agent")
    body = {"participant_name": "Alice", "participant_identity": "alice", "participant_metadata": '{"m":1}',
            "participant_attributes": {"a": "b"},
            "room_config": {"agents": [{"agent_name": "my-agent", "metadata": '{"x":2}'}]}}
    status, answer = await server.token(body)
    assert status == 200, answer
    assert answer["participant_identity"] != "alice"
    assert verify(answer["participant_token"]).name == "Alice"
