"""The real program in real processes: cross-process visibility, fast start without livekit, pipes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.cli.conftest import LONG_TTL, Seed, seed

ROOT = Path(__file__).resolve().parents[2]


def lkpersist_command() -> list[str]:
    """The installed console script when it sits beside this interpreter, else ``python -m lkpersist``."""
    script = Path(sys.executable).parent / "lkpersist"
    return [str(script)] if script.exists() else [sys.executable, "-m", "lkpersist"]


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*lkpersist_command(), *args], check=False, capture_output=True, text=True,
                          timeout=60, cwd=ROOT, env=env)


def test_session_written_by_one_process_is_listed_by_another(cli_url: str) -> None:
    writer = textwrap.dedent("""
        import asyncio, sys
        from lkpersist import open_store

        async def main():
            store = open_store(sys.argv[1])
            try:
                await store.connect("written-elsewhere")
                await store.update("written-elsewhere", language="de", metadata={"by": "process"})
            finally:
                await store.close()

        asyncio.run(main())
    """)
    done = subprocess.run([sys.executable, "-c", writer, cli_url], check=False, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    listed = run_cli("--store", cli_url, "sessions", "ls", "-o", "json")
    assert listed.returncode == 0, listed.stderr
    (session,) = json.loads(listed.stdout)
    assert session["identity"] == "written-elsewhere" and session["metadata"] == {"by": "process"}
    table = run_cli("sessions", "ls", env={**os.environ, "LKPERSIST_STORE": cli_url})
    assert table.returncode == 0, table.stderr
    assert table.stdout.splitlines()[1].split()[-1] == "written-elsewhere"


def _imported_modules(*args: str) -> set[str]:
    done = subprocess.run([sys.executable, "-X", "importtime", *args], check=False, capture_output=True, text=True,
                          timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    return {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}


def test_sessions_commands_do_not_import_livekit(sqlite_url: str) -> None:
    seed(sqlite_url, Seed("someone"))
    for args in (("-m", "lkpersist", "sessions", "--help"),
                 ("-m", "lkpersist", "--store", sqlite_url, "sessions", "ls", "-o", "json"),
                 ("-c", "import lkpersist, lkpersist.cli")):
        modules = _imported_modules(*args)
        assert "lkpersist.cli.sessions" in modules or args[0] == "-c"
        loaded = sorted(m for m in modules if m.split(".")[0] == "livekit")
        assert loaded == [], f"{args} imported {loaded[:5]}"


def test_ls_into_a_closed_pipe_exits_quietly(sqlite_url: str) -> None:
    """``lkpersist sessions ls -o ndjson | head -1``: no traceback when the reader goes away."""
    seed(sqlite_url, *(Seed(f"user-{i:04d}", age=i, ttl_policy=LONG_TTL) for i in range(600)))
    proc = subprocess.Popen([*lkpersist_command(), "--store", sqlite_url, "sessions", "ls", "-o", "ndjson"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    assert proc.stdout is not None and proc.stderr is not None
    first = json.loads(proc.stdout.readline())
    proc.stdout.close()
    stderr = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 0, stderr
    assert first["identity"] == "user-0000"
    assert "Traceback" not in stderr and "Exception" not in stderr, stderr
