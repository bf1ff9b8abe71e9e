"""``lkpersist stats``: the daily analytics as a table with bars and totals, or the documented JSON."""

from __future__ import annotations

import json
import time

from typer.testing import CliRunner

from lkpersist.cli._output.stats import BAR_WIDTH, bar
from lkpersist.model.analytics import DAY, day_of
from tests.cli.conftest import Seed, invoke, seed


def _seeded(url: str) -> None:
    seed(
        url,
        Seed("alice", age=2 * DAY, turns=[("user", "hi"), ("assistant", "hello")]),
        Seed("bob", age=2 * DAY),
        Seed("alice", age=0.0, turns=[("user", "back")]),
    )


def test_json_lists_every_day_oldest_first_with_today_and_totals(runner: CliRunner, cli_url: str) -> None:
    _seeded(cli_url)
    result = invoke(runner, cli_url, "stats", "--days", "3", "-o", "json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    now = time.time()
    assert [day["date"] for day in document["days"]] == [day_of(now - 2 * DAY), day_of(now - DAY), day_of(now)]
    assert document["days"][0] == {"date": day_of(now - 2 * DAY), "active_identities": 2, "connections": 2,
                                   "returns": 0, "new_sessions": 2, "turns": 2}
    assert document["days"][1]["connections"] == 0
    assert document["days"][2] == {"date": day_of(now), "active_identities": 1, "connections": 1, "returns": 0,
                                   "new_sessions": 1, "turns": 1}
    assert document["totals"] == {"active_identities": 2, "connections": 3, "returns": 0, "new_sessions": 3,
                                  "turns": 3}


def test_default_is_fourteen_days(runner: CliRunner, cli_url: str) -> None:
    _seeded(cli_url)
    document = json.loads(invoke(runner, cli_url, "stats", "-o", "json").stdout)
    assert len(document["days"]) == 14 and document["days"][-1]["date"] == day_of(time.time())


def test_table_has_a_row_per_day_bars_and_totals(runner: CliRunner, cli_url: str) -> None:
    _seeded(cli_url)
    result = invoke(runner, cli_url, "stats", "--days", "3")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["date", "active", "connections", "returns", "new", "sessions", "turns"]
    busy = next(line for line in lines if line.startswith(day_of(time.time() - 2 * DAY)))
    assert busy.count("█" * BAR_WIDTH) == 4  # the busiest day fills the bars of the columns it leads
    assert lines[-1].split() == ["total", "2", "3", "0", "3", "3"]


def test_bars_scale_to_the_largest_value() -> None:
    assert bar(0, 10) == "" and bar(5, 0) == ""
    assert bar(10, 10) == "█" * BAR_WIDTH
    assert bar(5, 10) == "█" * (BAR_WIDTH // 2)
    assert bar(1, 1000) == "▏"


def test_out_of_range_days_is_a_usage_error(runner: CliRunner, sqlite_url: str) -> None:
    result = invoke(runner, sqlite_url, "stats", "--days", "0")
    assert result.exit_code == 2


def test_a_missing_sqlite_file_is_not_created(runner: CliRunner, tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'absent.db'}"
    result = invoke(runner, url, "stats")
    assert result.exit_code == 3 and not (tmp_path / "absent.db").exists()
