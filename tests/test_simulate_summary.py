"""``simulate reconnect --turns 150``: a long first visit, summarised, and the summary restored on return."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from lkpersist.cli import app
from lkpersist.clock import VirtualClock
from lkpersist.model.session import CoveredTurns
from lkpersist.sim.reconnect import simulate_reconnect
from lkpersist.stores import open_store
from lkpersist.stores.memory import MemoryStore


async def test_a_long_first_visit_is_summarised_and_the_summary_restored(clock: VirtualClock) -> None:
    store = open_store("memory://", clock=clock)
    report = await simulate_reconnect(store, clock, identity="long", gap=3, turns=150)
    assert report.ok, report.checks
    checks = {check.name: check for check in report.checks}
    assert checks["first visit: older turns summarised"].ok
    assert checks["return 1 (visit 2): summary restored before the recent turns"].ok
    assert (
        report.final_session is not None
        and "Earlier, the user said" in report.final_session.context["summary"]
    )
    assert len(await store.recent_turns("long")) <= 100 + 10


async def test_the_verdict_fails_when_nothing_is_summarised(clock: VirtualClock) -> None:
    class NeverCompacts(MemoryStore):
        async def _compact_turns(self, identity: str, summary: str, covered: CoveredTurns) -> bool:
            return False

    report = await simulate_reconnect(NeverCompacts(clock=clock), clock, identity="long", gap=3, turns=60)
    assert not report.ok
    assert [c.name for c in report.checks if not c.ok] == ["first visit: older turns summarised"]


def test_cli_turns_150_shows_the_summary(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'sessions.db'}"
    args = ["--store", url, "simulate", "reconnect", "--identity", "long", "--turns", "150", "-o", "json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["ok"] is True and doc["turns"] == 150
    names = [check["name"] for check in doc["checks"] if check["ok"]]
    assert "return 1 (visit 2): summary restored before the recent turns" in names
    texts = [event["text"] for event in doc["timeline"]]
    assert "… 146 more exchanges …" in texts
    assert any(text.startswith("context['summary']: Earlier, the user said") for text in texts)
    assert doc["session"]["context"]["summary"].startswith("Earlier, the user said")


def test_cli_turns_above_200_is_a_usage_error() -> None:
    result = CliRunner().invoke(app, ["simulate", "reconnect", "--identity", "x", "--turns", "201"])
    assert result.exit_code == 2
