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


def _expired_sessions(url: str, count: int) -> None:
    """``count`` sessions that left an hour ago (first-visit TTL 5 minutes: long expired)."""
    import asyncio
    import time

    from lkpersist.clock import VirtualClock
    from lkpersist.stores import open_store

    async def write() -> None:
        async with open_store(url, clock=VirtualClock(time.time() - 3600)) as store:
            for index in range(count):
                await store.connect(f"gone-{index}")
                await store.disconnect(f"gone-{index}")

    asyncio.run(write())


def _purge_with_stderr_on_a_terminal(url: str) -> tuple[str, bytes]:
    """Run the real program with stderr on a pseudo-terminal; return its stdout and what the terminal got."""
    import os
    import pty
    import subprocess

    from tests.cli.test_processes import ROOT, lkpersist_command

    controller, terminal = pty.openpty()
    proc = subprocess.Popen([*lkpersist_command(), "--store", url, "sessions", "purge"], stdout=subprocess.PIPE,
                            stderr=terminal, cwd=ROOT, env={**os.environ, "TERM": "xterm-256color", "COLUMNS": "100"})
    os.close(terminal)
    seen = b""
    while True:
        try:
            chunk = os.read(controller, 4096)
        except OSError:  # the terminal closed with the process
            break
        if not chunk:
            break
        seen += chunk
    os.close(controller)
    assert proc.stdout is not None
    stdout = proc.stdout.read().decode()
    assert proc.wait(timeout=60) == 0, seen
    return stdout, seen


def test_purge_shows_a_transient_progress_bar_on_a_terminal(sqlite_url: str) -> None:
    _expired_sessions(sqlite_url, 2500)
    stdout, terminal = _purge_with_stderr_on_a_terminal(sqlite_url)
    assert stdout == "purged 2500 expired sessions\n"  # the summary alone, on stdout
    assert b"purging" in terminal and b"0/2500" in terminal and b"2500/2500" in terminal
    assert terminal.endswith(b"\x1b[2K")  # transient: the bar's line is erased when the purge is done


def test_purge_prints_no_bar_without_a_terminal(runner: CliRunner, sqlite_url: str) -> None:
    """Cron's mail (stdout and stderr are pipes or files) gets the summary line and nothing else."""
    from tests.cli.test_processes import run_cli

    _expired_sessions(sqlite_url, 1500)
    done = run_cli("--store", sqlite_url, "sessions", "purge")
    assert done.returncode == 0, done.stderr
    assert (done.stdout, done.stderr) == ("purged 1500 expired sessions\n", "")
