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
    """The verdict can fail: a store that forgets everything on disconnect is caught."""
    from lkpersist.stores.memory import MemoryStore

    class ForgetfulStore(MemoryStore):
        async def disconnect(self, identity: str):  # type: ignore[no-untyped-def]
            await self.delete(identity)

    store = ForgetfulStore(clock=clock)
    report = await simulate_reconnect(store, clock, identity="user-1", gap=3)
    assert not report.ok


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
