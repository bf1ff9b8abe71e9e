"""``simulate reconnect``: the library on every gap of the seed's plan, and the CLI on SQLite and Redis."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lkpersist.cli import app
from lkpersist.clock import VirtualClock
from lkpersist.sim.reconnect import simulate_reconnect
from lkpersist.stores import open_store
from tests.conftest import store_url_for


@pytest.mark.parametrize(("gap", "returning"), [(3, True), (10, True), (240, True), (360, False)])
async def test_gaps_of_the_seed_plan(clock: VirtualClock, gap: float, returning: bool) -> None:
    store = open_store("memory://", clock=clock)
    report = await simulate_reconnect(store, clock, identity="user-1", gap=gap)
    assert report.ok, report.checks
    assert report.decisions[-1].returning is returning
    assert report.decisions[-1].visit == (2 if returning else 1)


async def test_several_returns_count_up_and_lengthen_the_ttl(clock: VirtualClock) -> None:
    store = open_store("memory://", clock=clock)
    report = await simulate_reconnect(store, clock, identity="user-1", gap=240, times=3, turns=3)
    assert [d.returning for d in report.decisions] == [False, True, True, True]
    assert report.ok, report.checks
    assert report.final_session is not None and report.final_session.reconnect_count == 3
    assert report.final_session.ttl == store.ttl_policy.frequent  # 3 returns: a frequent returner


async def test_past_the_first_ttl_every_return_starts_anew(clock: VirtualClock) -> None:
    store = open_store("memory://", clock=clock)
    report = await simulate_reconnect(store, clock, identity="user-1", gap=400, times=2)
    assert [d.returning for d in report.decisions] == [False, False, False]
    assert report.ok, report.checks


async def test_a_wrong_outcome_fails_the_verdict(clock: VirtualClock) -> None:
    """The verdict can fail: a store that forgets everything on leave is caught."""
    from lkpersist.stores.memory import MemoryStore

    class ForgetfulStore(MemoryStore):
        async def leave(self, identity: str, connection: str, **options: object):  # type: ignore[no-untyped-def]
            await self.delete(identity)

    store = ForgetfulStore(clock=clock)
    report = await simulate_reconnect(store, clock, identity="user-1", gap=3)
    assert not report.ok


@pytest.mark.parametrize("agents", [2, 3])
async def test_several_agents_greet_each_visit_once_with_the_store_visit(clock: VirtualClock, agents: int) -> None:
    store = open_store("memory://", clock=clock)
    report = await simulate_reconnect(store, clock, identity="user-1", gap=30, times=3, agents=agents)
    assert report.ok, [c for c in report.checks if not c.ok]
    by_visit = {v: [d for d in report.decisions if d.visit == v] for v in (1, 2, 3, 4)}
    assert all(len(ds) == agents and sum(d.greet for d in ds) == 1 for ds in by_visit.values())
    greeters = [e.actor for e in report.timeline if e.text.startswith(("says: Hello!", "says: Welcome back!"))]
    assert len(greeters) == 4 and len(set(greeters)) > 1  # the join order rotates: not always one agent greets
    assert report.final_session is not None and report.final_session.reconnect_count == 3
    assert sum(c.name.endswith(f"one visit number across {agents} agents") for c in report.checks) == 4


async def test_the_agents_verdict_fails_when_each_connect_counts(clock: VirtualClock) -> None:
    """The bug of issue 11: a store that opens a visit per connection is caught by the verdict."""
    from lkpersist.stores.memory import MemoryStore

    class EveryConnectCounts(MemoryStore):
        async def arrive(self, identity: str, connection: str, **options: object):  # type: ignore[no-untyped-def]
            live = await self.get(identity)
            for other in live.connections if live is not None else ():  # forget who else is live
                await super().leave(identity, other.id)
            return await super().arrive(identity, connection, **options)  # type: ignore[arg-type]

    store = EveryConnectCounts(clock=clock)
    report = await simulate_reconnect(store, clock, identity="user-1", gap=3, agents=2)
    assert not report.ok


@pytest.mark.parametrize("agents", [1, 2])
async def test_a_device_switch_continues_the_visit(clock: VirtualClock, agents: int) -> None:
    store = open_store("memory://", clock=clock)
    report = await simulate_reconnect(store, clock, identity="user-1", gap=10, times=1, agents=agents,
                                      device_switch=True)
    assert report.ok, [c for c in report.checks if not c.ok]
    switches = [c for c in report.checks if c.name.startswith("device switch")]
    assert len(switches) == 8 and all(c.ok for c in switches)  # 2 visits × 4 checks
    assert sum(d.switched for d in report.decisions) == 2
    assert report.final_session is not None and report.final_session.reconnect_count == 1
    assert {d.device_id for d in report.final_session.devices} == {"laptop", "phone"}


async def test_the_switch_verdict_fails_when_a_switch_is_a_return(clock: VirtualClock) -> None:
    """A store that treats the DUPLICATE_IDENTITY leave as any other (no switch) fails the verdict."""
    from lkpersist.stores.memory import MemoryStore

    class NoSwitches(MemoryStore):
        async def leave(self, identity: str, connection: str, **options: object):  # type: ignore[no-untyped-def]
            return await super().leave(identity, connection)

    report = await simulate_reconnect(NoSwitches(clock=clock), clock, identity="u", gap=3, device_switch=True)
    assert not report.ok
    failed = [c.name for c in report.checks if not c.ok]
    assert failed[:2] == ["device switch in visit 1: the visit goes on", "device switch in visit 1: no welcome back"]


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_cli_agents_and_device_switch(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    url = store_url_for(backend, tmp_path, request)
    result = CliRunner().invoke(app, ["--store", url, "simulate", "reconnect", "--identity", "user-1", "--agents",
                                      "2", "--device-switch", "--times", "2", "-o", "json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert (doc["ok"], doc["agents"], doc["device_switch"]) == (True, 2, True)
    assert [v["visit"] for v in doc["visits"] if v["greeted"]] == [1, 2, 3]
    assert sum(v["switched"] for v in doc["visits"]) == 3
    assert doc["session"]["reconnect_count"] == 2
    assert any(e["text"] == "says: You're now on your other device." for e in doc["timeline"])
    human = CliRunner().invoke(app, ["--store", url, "simulate", "reconnect", "--identity", "user-2",
                                     "--agents", "3"])
    assert human.exit_code == 0, human.output
    assert "3 agent(s)" in human.output and "verdict: PASS" in human.output


def test_cli_agents_out_of_range_is_a_usage_error() -> None:
    result = CliRunner().invoke(app, ["--store", "memory://", "simulate", "reconnect", "--identity", "u",
                                      "--agents", "0"])
    assert result.exit_code == 2


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_cli_json_on_a_shared_backend(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    url = store_url_for(backend, tmp_path, request)
    result = CliRunner().invoke(
        app,
        [
            "--store",
            url,
            "simulate",
            "reconnect",
            "--identity",
            "user-1",
            "--gap",
            "3s",
            "--times",
            "2",
            "-o",
            "json",
        ],
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["ok"] is True and doc["identity"] == "user-1" and doc["gap_seconds"] == 3
    assert [v["returning"] for v in doc["visits"]] == [False, True, True]
    assert [v["greeted"] for v in doc["visits"]] == [True, True, True]
    assert doc["session"]["reconnect_count"] == 2
    assert all(check["ok"] for check in doc["checks"])
    assert any(e["actor"] == "agent" and "Welcome back" in e["text"] for e in doc["timeline"])


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_cli_six_minutes_on_a_first_visit_is_a_new_session_and_passes(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = store_url_for(backend, tmp_path, request)
    result = CliRunner().invoke(
        app, ["--store", url, "simulate", "reconnect", "--identity", "fresh-1", "--gap", "6m"]
    )
    assert result.exit_code == 0, result.output
    assert "new session after 6m (expired" in result.output
    assert "verdict: PASS" in result.output


def test_cli_human_output_shows_the_timeline(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    result = CliRunner().invoke(app, ["--store", url, "simulate", "reconnect", "--identity", "user-[1]"])
    assert result.exit_code == 0, result.output
    assert "Welcome back! This is visit number 2." in result.output
    assert "user-[1]" in result.output  # rich markup in identities is shown, not interpreted


def test_cli_bad_gap_is_a_usage_error() -> None:
    result = CliRunner().invoke(
        app, ["--store", "memory://", "simulate", "reconnect", "--identity", "u", "--gap", "soon"]
    )
    assert result.exit_code == 2
    assert "invalid duration" in result.output


def test_cli_default_store_works_on_a_fresh_machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LKPERSIST_STORE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    result = CliRunner().invoke(app, ["simulate", "reconnect", "--identity", "user-1", "-o", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["store"].startswith("sqlite:///")


def test_cli_simulation_ends_at_the_real_now(tmp_path: Path) -> None:
    """The virtual clock starts in the past, so the sessions left behind are not last seen in the future."""
    import asyncio
    import time

    from lkpersist.stores import open_store

    url = f"sqlite:///{tmp_path / 'sim.db'}"
    before = time.time()
    result = CliRunner().invoke(app, ["--store", url, "simulate", "reconnect", "--identity", "u", "--gap", "1h"])
    assert result.exit_code == 0, result.output

    async def last_seen() -> float:
        store = open_store(url)
        try:
            return (await store.require("u")).last_seen
        finally:
            await store.close()

    assert before - 5 <= asyncio.run(last_seen()) <= time.time()


def _restored_counts(doc: dict[str, object]) -> tuple[list[int], list[int]]:
    """The restored-turn counts of the ``llm`` timeline lines and of the memory checks, in order."""
    import re

    timeline = [e["text"] for e in doc["timeline"] if e["actor"] == "llm"]  # type: ignore[attr-defined]
    checks = [c["detail"] for c in doc["checks"] if "earlier turns reached the LLM" in c["name"]]  # type: ignore[attr-defined]
    number = re.compile(r"(\d+) restored user turn")
    return [int(number.search(t).group(1)) for t in timeline], [int(number.search(d).group(1)) for d in checks]  # type: ignore[union-attr]


def test_cli_run_twice_labels_what_happened_in_this_run(tmp_path: Path) -> None:
    """The second run's first arrival is visit 3, not a "first visit"; the restored counts agree."""
    url = f"sqlite:///{tmp_path / 's.db'}"
    args = ["--store", url, "simulate", "reconnect", "--identity", "bob", "-o", "json"]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    assert [c["name"] for c in json.loads(first.stdout)["checks"]][:2] == [
        "first visit: greeted once", "first visit: recognised as new"]
    second = CliRunner().invoke(app, args)
    assert second.exit_code == 0, second.output
    doc = json.loads(second.stdout)
    assert [v["visit"] for v in doc["visits"]] == [3, 4]
    names = [c["name"] for c in doc["checks"]]
    assert not any("first visit" in name for name in names), names
    assert names[:2] == ["arrival 1 (visit 3, continuing a session left by an earlier run): greeted once",
                         "arrival 1 (visit 3, continuing a session left by an earlier run): recognised as returning"]
    assert all(name.startswith("return 1 (visit 4): ") for name in names[2:]), names
    timeline, checks = _restored_counts(doc)
    assert timeline[-1:] == checks and checks[0] > 2  # this run's 2 lines and the earlier run's


def test_cli_restored_counts_agree_on_a_first_run(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["--store", f"sqlite:///{tmp_path / 's.db'}", "simulate", "reconnect",
                                      "--identity", "amy", "--times", "2", "-o", "json"])
    assert result.exit_code == 0, result.output
    timeline, checks = _restored_counts(json.loads(result.stdout))
    assert timeline == checks == [2, 3]
