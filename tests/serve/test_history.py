"""GET /api/history: the bearer of a session's resume credential reads its recent turns, nobody else."""

from __future__ import annotations

from pathlib import Path

import pytest

from lkpersist.model.session import Turn
from lkpersist.stores import open_store
from tests.conftest import T0
from tests.serve._process import closed_port
from tests.serve.conftest import Server, StartServer


async def _seeded(server: Server, turns: int = 3) -> tuple[str, str]:
    """A participant who talked: (identity, resume credential)."""
    _, answer = await server.token({})
    identity = answer["participant_identity"]
    await server.store.connect(identity)
    for n in range(turns):
        role = "user" if n % 2 == 0 else "assistant"
        await server.store.append_turn(identity, Turn(role, f"turn {n}", T0 + n, item_id=f"item-{n}"))
    await server.store.update(identity, metadata={"plan": "pro"}, context={"summary": "secret summary"})
    return identity, answer["resume_token"]


async def test_the_recent_turns_and_nothing_else(server: Server) -> None:
    _, credential = await _seeded(server)
    status, answer = await server.history(credential)
    assert status == 200, answer
    assert answer == {"turns": [{"role": "user", "text": "turn 0", "timestamp": T0},
                                {"role": "assistant", "text": "turn 1", "timestamp": T0 + 1},
                                {"role": "user", "text": "turn 2", "timestamp": T0 + 2}]}


async def test_limit(server: Server) -> None:
    _, credential = await _seeded(server, turns=5)
    _, answer = await server.history(credential, "?limit=2")
    assert [turn["text"] for turn in answer["turns"]] == ["turn 3", "turn 4"]


@pytest.mark.parametrize("query", ["?limit=0", "?limit=101", "?limit=-1", "?limit=two", "?limit=%C2%B2", "?limit="])
async def test_a_bad_limit(server: Server, query: str) -> None:
    _, credential = await _seeded(server, turns=1)
    status, answer = await server.history(credential, query)
    assert status == 400 and "limit must be a whole number from 1 to 100" in answer["error"]


async def test_the_default_number_of_turns_is_configurable(start_server: StartServer) -> None:
    server = await start_server(history_turns=2)
    _, credential = await _seeded(server, turns=4)
    assert len((await server.history(credential))[1]["turns"]) == 2


async def test_a_new_participant_has_no_history(server: Server) -> None:
    _, answer = await server.token({})
    assert await server.history(answer["resume_token"]) == (200, {"turns": []})


async def test_without_a_valid_credential_401(server: Server) -> None:
    _, credential = await _seeded(server)
    for bad in (None, "", "garbage", credential[:-2] + "AA", credential + "x"):
        status, answer = await server.history(bad)
        assert status == 401 and "a valid resume token is needed" in answer["error"], bad
    async with server.http.get(f"{server.url}/api/history", headers={"Authorization": f"Basic {credential}"}) as r:
        assert r.status == 401 and r.headers["WWW-Authenticate"].startswith("Bearer")


async def test_an_expired_credential_reads_nothing(server: Server) -> None:
    _, credential = await _seeded(server)
    server.clock.advance(server.config.resume_ttl + 1)
    assert (await server.history(credential))[0] == 401


async def test_a_store_that_cannot_be_reached_is_a_503_and_the_server_keeps_serving(
    start_server: StartServer,
) -> None:
    server = await start_server(store_url=f"redis://127.0.0.1:{closed_port()}/0?socket_connect_timeout=0.5")
    _, answer = await server.token({})
    status, error = await server.history(answer["resume_token"])
    assert status == 503 and error == {"error": "the session store is unavailable; try again shortly"}
    assert (await server.token({}))[0] == 200


async def test_before_any_agent_created_the_store_there_is_no_history(start_server: StartServer,
                                                                      tmp_path: Path) -> None:
    """lkpersist serve only reads: a missing SQLite file is not created, and means nobody has a history."""
    path = tmp_path / "not-yet" / "sessions.db"
    server = await start_server(store_url=f"sqlite:///{path}", create=False)
    _, answer = await server.token({})
    assert await server.history(answer["resume_token"]) == (200, {"turns": []})
    assert not path.exists()
    writer = open_store(f"sqlite:///{path}", clock=server.clock)  # the agent, later
    await writer.connect(answer["participant_identity"])
    await writer.append_turn(answer["participant_identity"], Turn("user", "hello", T0, "i1"))
    await writer.close()
    assert (await server.history(answer["resume_token"]))[1]["turns"][0]["text"] == "hello"


async def test_each_history_read_is_audited_without_the_text(server: Server, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """With the audit log on (LKPERSIST_AUDIT_LOG), a read of personal data through serve is recorded."""
    import json

    from lkpersist.audit import reset_agent_audit_log

    path = tmp_path / "audit.jsonl"
    monkeypatch.setenv("LKPERSIST_AUDIT_LOG", str(path))
    reset_agent_audit_log()
    try:
        identity, credential = await _seeded(server)
        assert (await server.history(credential))[0] == 200
        _, stranger = await server.token({})
        assert (await server.history(stranger["resume_token"]))[1] == {"turns": []}  # nothing shown: no record
    finally:
        reset_agent_audit_log()  # waits for the background write
    (record,) = [json.loads(line) for line in path.read_text().splitlines()]
    assert (record["component"], record["action"], record["identities"]) == ("serve", "history", [identity])
    assert record["result"] == {"outcome": "ok", "turns": 3}
    assert "turn 0" not in path.read_text()
