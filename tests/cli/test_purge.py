"""``lkpersist sessions purge``: cron-safe, one summary line, exit 0 when there is nothing to do."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from tests.cli.conftest import LONG_TTL, Seed, exists, invoke, seed

SEEDS = (
    Seed("live"),
    Seed("idle-2h", age=7200, disconnected=True, ttl_policy=LONG_TTL),  # old, not expired
    Seed("expired-1", age=3600, disconnected=True),
    Seed("expired-2", age=1800, disconnected=True),
)


def test_purge_dry_run_deletes_nothing(runner: CliRunner, cli_url: str) -> None:
    seed(cli_url, *SEEDS)
    result = invoke(runner, cli_url, "sessions", "purge", "--dry-run")
    assert result.exit_code == 0, result.output
    assert result.stdout == "would purge 2 expired sessions (dry run)\n"
    assert all(exists(cli_url, s.identity) for s in SEEDS)


def test_purge_removes_only_expired(runner: CliRunner, cli_url: str) -> None:
    seed(cli_url, *SEEDS)
    result = invoke(runner, cli_url, "sessions", "purge")
    assert result.exit_code == 0, result.output
    assert result.stdout == "purged 2 expired sessions\n" and result.stderr == ""
    assert [exists(cli_url, s.identity) for s in SEEDS] == [True, True, False, False]
    again = invoke(runner, cli_url, "sessions", "purge")
    assert again.exit_code == 0, again.output
    assert again.stdout == "nothing to purge: no expired sessions\n"


def test_purge_older_than(runner: CliRunner, cli_url: str) -> None:
    seed(cli_url, *SEEDS)
    result = invoke(runner, cli_url, "sessions", "purge", "--older-than", "1h", "-o", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"purged": 3, "dry_run": False, "older_than": 3600.0}
    assert [exists(cli_url, s.identity) for s in SEEDS] == [True, False, False, False]


def test_purge_older_than_text(runner: CliRunner, cli_url: str) -> None:
    seed(cli_url, *SEEDS)
    result = invoke(runner, cli_url, "sessions", "purge", "--older-than", "90m", "--dry-run")
    assert result.stdout == "would purge 3 sessions expired or last seen more than 1h30m ago (dry run)\n"


def test_purge_quiet_prints_nothing(runner: CliRunner, cli_url: str) -> None:
    seed(cli_url, *SEEDS)
    result = invoke(runner, cli_url, "sessions", "purge", "--quiet")
    assert result.exit_code == 0, result.output
    assert result.output == ""
    assert not exists(cli_url, "expired-1")


def test_purge_nothing_to_do_exits_0(runner: CliRunner, cli_url: str) -> None:
    result = invoke(runner, cli_url, "sessions", "purge", "-o", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"purged": 0, "dry_run": False, "older_than": None}


def test_purge_bad_duration_exits_2_with_one_line(runner: CliRunner, cli_url: str) -> None:
    seed(cli_url, *SEEDS)
    for bad in ("5x", "-5m", "soon", ""):
        result = invoke(runner, cli_url, "sessions", "purge", "--older-than", bad)
        assert result.exit_code == 2, (bad, result.output)
        assert result.stdout == ""
        assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith("error: invalid duration")
    assert all(exists(cli_url, s.identity) for s in SEEDS)
