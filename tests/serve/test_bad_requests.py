"""Every bad request gets a 4xx with one line of JSON naming the problem, and the server keeps serving."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from lkpersist.serve.request import MAX_BODY_BYTES, RefusedRequest, parse_token_request
from tests.serve.conftest import Server, StartServer


async def _post(server: Server, data: bytes | str, content_type: str | None = "application/json",
                **kwargs: Any) -> tuple[int, str, str]:
    headers = {"Content-Type": content_type} if content_type else {}
    async with server.http.post(f"{server.url}/api/token", data=data, headers=headers, **kwargs) as response:
        return response.status, response.content_type, await response.text()


async def assert_refused(server: Server, status: int, content_type: str, text: str, expected: int, words: str) -> None:
    assert status == expected, text
    assert content_type == "application/json"
    assert text.count("\n") == 0 and text.startswith('{"error": '), text
    assert words in text, text
    ok, answer = await server.token({})  # and the server is still serving
    assert ok == 200, answer


@pytest.mark.parametrize(("data", "content_type", "expected", "words"), [
    ("room_name=x", "application/x-www-form-urlencoded", 415, "Content-Type: application/json"),
    ('{"room_name": "x"}', "text/plain", 415, "as JSON"),
    ("{not json", "application/json", 400, "not valid JSON"),
    (b"\xff\xfe{}", "application/json", 400, "not valid JSON"),
    ("", "application/json", 400, "not valid JSON"),
    ("[" * 30_000 + "]" * 30_000, "application/json", 400, "not valid JSON"),
    ("[]", "application/json", 400, "must be a JSON object"),
    ('"text"', "application/json", 400, "must be a JSON object"),
    ("null", "application/json", 400, "must be a JSON object"),
])
async def test_bodies_that_are_not_a_json_object(server: Server, data: str | bytes, content_type: str,
                                                 expected: int, words: str) -> None:
    await assert_refused(server, *await _post(server, data, content_type), expected, words)


@pytest.mark.parametrize(("body", "words"), [
    ({"room_name": 5}, "room_name must be a string"),
    ({"participant_name": ["a"]}, "participant_name must be a string"),
    ({"participant_identity": {"x": 1}}, "participant_identity must be a string"),
    ({"participant_metadata": True}, "participant_metadata must be a string"),
    ({"participant_attributes": "a=b"}, "participant_attributes must be an object of strings"),
    ({"participant_attributes": {"a": 1}}, "participant_attributes must be an object of strings"),
    ({"resume_token": 12}, "resume_token must be a string"),
    ({"room_config": []}, "room_config must be an object"),
    ({"room_config": {"agents": {"agent_name": "x"}}}, "room_config.agents must be a list of objects"),
    ({"room_config": {"agents": ["x"]}}, "room_config.agents must be a list of objects"),
    ({"room_config": {"agents": [{"agent_name": 1}]}}, "agent_name must be a string"),
])
async def test_fields_of_the_wrong_type(server: Server, body: dict[str, Any], words: str) -> None:
    status, answer = await server.token(body)
    assert status == 400 and words in answer["error"], answer


@pytest.mark.parametrize(("body", "words"), [
    ({"room_name": ""}, "room_name is empty"),
    ({"room_name": "   "}, "room_name is empty"),
    ({"room_name": "r" * 257}, "257 bytes; LiveKit accepts at most 256"),
    ({"room_name": "é" * 129}, "258 bytes; LiveKit accepts at most 256"),
    ({"room_name": "room\nname"}, "control characters"),
    ({"room_name": "room\u2028x"}, "control characters"),
    ({"room_name": "\ud800"}, "not valid Unicode"),
    ({"participant_name": "n" * 257}, "LiveKit accepts at most 256"),
    ({"participant_name": "Alice\r\nSet-Cookie: x"}, "control characters"),
    ({"participant_attributes": {"lk.agent.state": "speaking"}}, "LiveKit's own 'lk.agent.state'"),
])
async def test_names_and_attributes_livekit_would_refuse(server: Server, body: dict[str, Any], words: str) -> None:
    status, answer = await server.token(body)
    assert status == 400 and words in answer["error"], answer


def test_attributes_over_livekits_limit_are_refused() -> None:
    """Bodies that large are refused by size first; a framework of your own may allow larger ones."""
    with pytest.raises(RefusedRequest, match="LiveKit allows 65536") as refused:
        parse_token_request({"participant_attributes": {"k": "v" * (64 * 1024)}})
    assert refused.value.status == 400


async def test_a_room_the_server_did_not_choose_is_forbidden(start_server: StartServer) -> None:
    for server in (await start_server(), await start_server(room="lobby")):
        status, answer = await server.token({"room_name": "someone-elses-room"})
        assert status == 403 and "room_name is chosen by the server" in answer["error"]


async def test_an_agent_the_server_does_not_dispatch_is_forbidden(start_server: StartServer) -> None:
    named = await start_server(agent_name="support")
    status, answer = await named.token({"room_config": {"agents": [{"agent_name": "billing-admin"}]}})
    assert status == 403 and "only the agent 'support'" in answer["error"]
    unnamed = await start_server()
    status, answer = await unnamed.token({"room_config": {"agents": [{"agentName": "support"}]}})
    assert status == 403 and "dispatches no named agent" in answer["error"]


async def test_a_one_megabyte_body_is_refused_before_it_is_read(server: Server) -> None:
    body = b'{"participant_metadata": "' + b"x" * (1024 * 1024) + b'"}'
    await assert_refused(server, *await _post(server, body), 413, f"over {MAX_BODY_BYTES // 1024} KiB")


async def test_a_large_body_without_content_length_is_refused(server: Server) -> None:
    async def chunks() -> Any:
        for _ in range(32):
            yield b"x" * 4096

    status, content_type, text = await _post(server, chunks())  # type: ignore[arg-type]
    await assert_refused(server, status, content_type, text, 413, "KiB")


async def test_unknown_paths_and_methods_answer_json(server: Server) -> None:
    async with server.http.get(f"{server.url}/api/nothing-here") as response:
        assert response.status == 404 and (await response.json()) == {"error": "not found"}
    async with server.http.get(f"{server.url}/api/token") as response:
        assert response.status == 405 and "POST" in response.headers["Allow"]
        assert (await response.json()) == {"error": "method not allowed"}
    async with server.http.get(f"{server.url}/static/../handlers.py") as response:
        assert response.status in (403, 404)


async def test_unknown_fields_are_ignored(server: Server) -> None:
    status, answer = await server.token({"future_field": {"x": 1}, "room_config": {"egress": {"room": {}}}})
    assert status == 200, answer


async def test_a_closed_connection_mid_body_does_not_stop_the_server(server: Server) -> None:
    _, writer = await asyncio.open_connection("127.0.0.1", int(server.url.rsplit(":", 1)[1]))
    writer.write(b"POST /api/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 1000\r\n\r\n{\"room")
    await writer.drain()
    writer.close()
    status, _ = await server.token({})
    assert status == 200


async def test_client_errors_are_not_logged_as_server_errors(server: Server,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    await _post(server, "{bad")
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]
