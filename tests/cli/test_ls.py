"""``lkpersist sessions ls`` and ``count`` against real SQLite files and the real Redis."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from tests.cli.conftest import LONG_TTL, Seed, invoke, seed

SEEDS = (
    Seed("alice", age=10, language="en", metadata={"plan": "pro"}),
    Seed("bob", age=60, disconnected=True),
    Seed("carol", age=3600, disconnected=True),  # expired 55 minutes ago
)


def _rows(output: str) -> list[list[str]]:
    return [line.split() for line in output.splitlines()[1:]]


def test_ls_table_lists_active_sessions_newest_first(runner: CliRunner, cli_url: str) -> None:
    seed(cli_url, *SEEDS)
    result = invoke(runner, cli_url, "sessions", "ls")
    assert result.exit_code == 0, result.output
    header, *lines = result.stdout.splitlines()
    assert header.split() == ["STATUS", "LAST", "SEEN", "(UTC)", "AGE", "RECONNECTS", "TURNS", "LANG", "EXPIRES",
                              "IDENTITY"]
    assert [line.split()[-1] for line in lines] == ["alice", "bob"]
    alice, bob = _rows(result.stdout)
    assert alice[0] == "connected" and alice[4] == "0" and alice[5] == "0" and alice[6] == "en" and alice[7] == "-"
    assert alice[1].endswith("Z") and alice[1][10] == "T"  # ISO-8601 UTC
    assert alice[2] == "10s" and alice[3] == "ago"
    assert bob[0] == "disconnected" and bob[-3:-1] in (["in", "4m"], ["in", "3m59s"], ["in", "3m58s"])


def test_ls_filters(runner: CliRunner, cli_url: str) -> None:
    seed(cli_url, *SEEDS)
    expired = invoke(runner, cli_url, "sessions", "ls", "--expired")
    assert expired.exit_code == 0, expired.output
    assert [row[-1] for row in _rows(expired.stdout)] == ["carol"]
    assert _rows(expired.stdout)[0][0] == "expired"
    every = invoke(runner, cli_url, "sessions", "ls", "--all")
    assert [row[-1] for row in _rows(every.stdout)] == ["alice", "bob", "carol"]
    active = invoke(runner, cli_url, "sessions", "ls", "--active")
    assert [row[-1] for row in _rows(active.stdout)] == ["alice", "bob"]


def test_ls_rejects_two_filters(runner: CliRunner, cli_url: str) -> None:
    result = invoke(runner, cli_url, "sessions", "ls", "--active", "--expired")
    assert result.exit_code == 2
    assert result.stderr.strip() == "error: give at most one of --active, --expired, --all"


def test_ls_limit_keeps_the_newest(runner: CliRunner, cli_url: str) -> None:
    seed(cli_url, *SEEDS)
    result = invoke(runner, cli_url, "sessions", "ls", "--all", "--limit", "2", "-o", "ndjson")
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["identity"] for line in result.stdout.splitlines()] == ["alice", "bob"]
    assert invoke(runner, cli_url, "sessions", "ls", "--limit", "0").exit_code == 2


def test_ls_json_is_one_document_with_the_contract_fields(runner: CliRunner, cli_url: str) -> None:
    seed(cli_url, *SEEDS)
    result = invoke(runner, cli_url, "sessions", "ls", "-o", "json")
    assert result.exit_code == 0, result.output
    sessions = json.loads(result.stdout)
    assert [s["identity"] for s in sessions] == ["alice", "bob"]
    alice = sessions[0]
    assert alice["language"] == "en" and alice["metadata"] == {"plan": "pro"}
    assert alice["connected"] is True and alice["expires_at"] is None
    assert isinstance(alice["last_seen"], float) and alice["last_seen"] > alice["joined_at"] - 1
    assert sessions[1]["connected"] is False and sessions[1]["expires_at"] > sessions[1]["last_seen"]


def test_ls_ndjson_is_one_object_per_line(runner: CliRunner, cli_url: str) -> None:
    seed(cli_url, *SEEDS)
    result = invoke(runner, cli_url, "sessions", "ls", "--expired", "-o", "ndjson")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["identity"] == "carol"


def test_ls_streams_past_one_page(runner: CliRunner, sqlite_url: str) -> None:
    """More sessions than a table chunk and a store page: all listed once, in order, header once."""
    seed(sqlite_url, *(Seed(f"user-{i:04d}", age=i, ttl_policy=LONG_TTL) for i in range(620)))
    table = invoke(runner, sqlite_url, "sessions", "ls")
    assert table.exit_code == 0, table.output
    lines = table.stdout.splitlines()
    assert lines[0].startswith("STATUS") and sum(line.startswith("STATUS") for line in lines) == 1
    assert [line.split()[-1] for line in lines[1:]] == [f"user-{i:04d}" for i in range(620)]
    as_json = invoke(runner, sqlite_url, "sessions", "ls", "-o", "json")
    assert [s["identity"] for s in json.loads(as_json.stdout)] == [f"user-{i:04d}" for i in range(620)]


def test_ls_empty(runner: CliRunner, cli_url: str) -> None:
    assert invoke(runner, cli_url, "sessions", "purge").exit_code == 0  # a writing command creates the store
    table = invoke(runner, cli_url, "sessions", "ls")
    assert table.exit_code == 0, table.output
    assert table.stdout == "" and table.stderr.strip() == "no active sessions"
    assert json.loads(invoke(runner, cli_url, "sessions", "ls", "-o", "json").stdout) == []
    assert invoke(runner, cli_url, "sessions", "ls", "-o", "ndjson").stdout == ""


def test_count(runner: CliRunner, cli_url: str) -> None:
    seed(cli_url, *SEEDS)
    assert invoke(runner, cli_url, "sessions", "count").stdout == "2\n"
    assert invoke(runner, cli_url, "sessions", "count", "--expired").stdout == "1\n"
    result = invoke(runner, cli_url, "sessions", "count", "--all", "-o", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"status": "all", "count": 3}


def test_ls_shows_how_many_turns_each_session_holds(runner: CliRunner, cli_url: str) -> None:
    seed(cli_url, Seed("talker", age=1, turns=[("user", "a"), ("assistant", "b"), ("user", "c")]), Seed("quiet", age=2))
    table = invoke(runner, cli_url, "sessions", "ls")
    assert table.exit_code == 0, table.output
    assert {row[-1]: row[5] for row in _rows(table.stdout)} == {"talker": "3", "quiet": "0"}
    listed = json.loads(invoke(runner, cli_url, "sessions", "ls", "-o", "json").stdout)
    assert {s["identity"]: s["turn_count"] for s in listed} == {"talker": 3, "quiet": 0}
