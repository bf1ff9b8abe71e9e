"""Hostile identities: stored, shown and removed exactly; patterns never match anything but themselves."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from lkpersist.cli._output.listing import IDENTITY_WIDTH
from tests.cli.conftest import Seed, exists, invoke, seed

HUGE = "é" + "x" * 10240
HOSTILE = ("*", "user-1*", "a{b}c", "a:b", "x\ny", HUGE, "Zoë 日本 🙂", "\x1b[31mred", "[bold]b[/bold]")
NEIGHBOURS = ("user-1", "user-10", "a", "b", "c", "x", "y", "red", "user-1x")


def test_hostile_identities_listed_exactly_in_json(runner: CliRunner, cli_url: str) -> None:
    seed(cli_url, *(Seed(i) for i in HOSTILE + NEIGHBOURS))
    result = invoke(runner, cli_url, "sessions", "ls", "-o", "ndjson")
    assert result.exit_code == 0, result.output
    assert sorted(json.loads(line)["identity"] for line in result.stdout.splitlines()) == sorted(HOSTILE + NEIGHBOURS)


def test_hostile_identities_cannot_wreck_the_table(runner: CliRunner, cli_url: str) -> None:
    seed(cli_url, *(Seed(i) for i in HOSTILE))
    result = invoke(runner, cli_url, "sessions", "ls")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 1 + len(HOSTILE)  # one line per session, whatever the identity holds
    shown = {line.split(maxsplit=8)[-1] for line in lines[1:]}
    assert {"*", "user-1*", "a{b}c", "a:b", "x\\ny", "Zoë 日本 🙂", "\\x1b[31mred", "[bold]b[/bold]"} <= shown
    assert "\x1b" not in result.stdout
    (huge,) = (cell for cell in shown if cell.startswith("éx"))
    assert huge.endswith("…") and len(huge) == IDENTITY_WIDTH
    assert max(len(line) for line in lines) < 200


def test_hostile_identities_shown_and_removed_exactly(runner: CliRunner, cli_url: str) -> None:
    seed(cli_url, *(Seed(i) for i in HOSTILE + NEIGHBOURS))
    for identity in HOSTILE:
        shown = invoke(runner, cli_url, "sessions", "show", identity, "-o", "json")
        assert shown.exit_code == 0, shown.output
        assert json.loads(shown.stdout)["identity"] == identity
    table = invoke(runner, cli_url, "sessions", "show", "x\ny")
    assert table.stdout.splitlines()[0].split() == ["identity", "x\\ny"]
    for identity in HOSTILE:
        removed = invoke(runner, cli_url, "sessions", "rm", identity)
        assert removed.exit_code == 0, removed.output
        assert len(removed.stdout.splitlines()) == 1 and removed.stdout.startswith("removed '")
        assert all(exists(cli_url, n) for n in NEIGHBOURS), f"rm {identity!r} touched another identity"
    left = invoke(runner, cli_url, "sessions", "ls", "--all", "-o", "json")
    assert sorted(s["identity"] for s in json.loads(left.stdout)) == sorted(NEIGHBOURS)


def test_rm_star_removes_only_the_identity_star(runner: CliRunner, cli_url: str) -> None:
    seed(cli_url, *(Seed(i) for i in NEIGHBOURS))
    result = invoke(runner, cli_url, "sessions", "rm", "*", "user-1*")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == ["error: session not found: '*'", "error: session not found: 'user-1*'"]
    assert all(exists(cli_url, n) for n in NEIGHBOURS)


def test_purge_touches_only_expired_hostile_identities(runner: CliRunner, cli_url: str) -> None:
    seed(cli_url, *(Seed(i, age=3600, disconnected=True) for i in HOSTILE), *(Seed(n) for n in NEIGHBOURS))
    result = invoke(runner, cli_url, "sessions", "purge")
    assert result.exit_code == 0, result.output
    assert result.stdout == f"purged {len(HOSTILE)} expired sessions\n"
    assert all(exists(cli_url, n) for n in NEIGHBOURS)
    assert not any(exists(cli_url, h) for h in HOSTILE)


def test_purge_leaves_live_hostile_identities(runner: CliRunner, cli_url: str) -> None:
    seed(cli_url, *(Seed(i) for i in HOSTILE), *(Seed(n, age=3600, disconnected=True) for n in NEIGHBOURS))
    result = invoke(runner, cli_url, "sessions", "purge")
    assert result.stdout == f"purged {len(NEIGHBOURS)} expired sessions\n"
    assert all(exists(cli_url, h) for h in HOSTILE)


def test_identities_with_blank_edges_are_visible_in_the_table(runner: CliRunner, cli_url: str) -> None:
    """An identity of spaces is not an empty-looking row, and ' alice' does not pass for 'alice'."""
    seed(cli_url, Seed("   ", age=3), Seed(" alice", age=2), Seed("alice", age=1))
    result = invoke(runner, cli_url, "sessions", "ls")
    assert result.exit_code == 0, result.output
    shown = [line.split(maxsplit=8)[-1] for line in result.stdout.splitlines()[1:]]
    assert shown == ["alice", "' alice'", "'   '"]
