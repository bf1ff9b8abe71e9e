"""The agent's restore on a return leaves one audit record (real controller, real AgentSession)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from lkpersist.audit import reset_agent_audit_log
from lkpersist.clock import VirtualClock
from lkpersist.stores import open_store
from tests.agent.conftest import JobFactory, make_job  # noqa: F401 -- the job fixture


@pytest.fixture
def agent_audit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = tmp_path / "agent-audit.jsonl"
    monkeypatch.setenv("LKPERSIST_AUDIT_LOG", str(path))
    reset_agent_audit_log()
    yield path
    reset_agent_audit_log()


async def test_a_return_with_history_is_recorded_once(
    clock: VirtualClock, make_job: JobFactory, agent_audit: Path  # noqa: F811 -- the fixture
) -> None:
    store = open_store("memory://", clock=clock)
    first = await make_job(store)
    await first.arrive("ada")
    await first.say_user("My name is Ada and my code is 4711.")
    await first.leave("ada")
    clock.advance(30)
    second = await make_job(store)
    await second.arrive("ada")
    reset_agent_audit_log()  # waits for the background write
    (record,) = [json.loads(line) for line in agent_audit.read_text().splitlines()]
    assert (record["component"], record["action"], record["identities"]) == ("agent", "restore", ["ada"])
    assert record["result"]["outcome"] == "ok" and record["result"]["turns"] >= 2
    assert "4711" not in agent_audit.read_text() and "Ada" not in agent_audit.read_text()
