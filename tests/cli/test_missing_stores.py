"""Stores that are not there, or not ours: reading never creates one, a read-only file is read, not written.

A read-only command on a SQLite file that does not exist says so in one line and exits 3, creating
neither the file nor its directories; the default store in the state directory says "no store yet".
Writing commands create the store. A file the user may read but not write (an operator inspecting the
service user's database) serves every read command and refuses every write in one line.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lkpersist.cli import app
from tests.cli.conftest import LONG_TTL, Seed, invoke, seed

READ_COMMANDS = (
    ("sessions", "ls"), ("sessions", "ls", "-o", "json"), ("sessions", "show", "alice"), ("sessions", "count"),
    ("sessions", "purge", "--dry-run"), ("encrypt", "status"),
)
WRITE_COMMANDS = (("sessions", "purge"), ("sessions", "rm", "alice"))
NOBODY = 65534


@pytest.mark.parametrize("command", READ_COMMANDS, ids=" ".join)
def test_a_read_command_on_a_missing_file_creates_nothing(runner: CliRunner, tmp_path: Path,
                                                           command: tuple[str, ...]) -> None:
    missing = tmp_path / "no" / "such" / "dir" / "x.db"
    result = invoke(runner, f"sqlite:///{missing}", *command)
    assert result.exit_code == 3, result.output
    assert result.stdout == ""
    assert result.stderr == f"error: SQLite store '{missing}' does not exist (nothing was created)\n"
    assert not (tmp_path / "no").exists()


@pytest.mark.parametrize("command", READ_COMMANDS[:4], ids=" ".join)
def test_no_store_yet_in_the_state_directory(runner: CliRunner, tmp_path: Path, command: tuple[str, ...]) -> None:
    """A machine where the agent never ran: the default store is not created by looking at it."""
    env = {"LKPERSIST_STORE": None, "XDG_STATE_HOME": str(tmp_path / "state"), "HOME": str(tmp_path)}
    result = runner.invoke(app, list(command), env=env)
    assert result.exit_code == 3, result.output
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"error: no store yet: {tmp_path / 'state' / 'lkpersist' / 'sessions.db'} does not exist")
    assert "nothing was created" in line
    assert not (tmp_path / "state").exists()


@pytest.mark.parametrize("command", WRITE_COMMANDS, ids=" ".join)
def test_a_writing_command_creates_the_store(runner: CliRunner, tmp_path: Path, command: tuple[str, ...]) -> None:
    path = tmp_path / "new" / "x.db"
    result = invoke(runner, f"sqlite:///{path}", *command)
    assert result.exit_code in (0, 1), result.output  # rm of a session that is not there: exit 1
    assert path.exists()
    assert invoke(runner, f"sqlite:///{path}", "sessions", "count").stdout == "0\n"


# --- a file this user can read but not write -------------------------------------------------------------


@pytest.fixture
def foreign_db() -> Iterator[Path]:
    """A store with one session, owned by someone else: root's file in a directory only root may write.

    Not pytest's tmp_path: its parents are private to root, and the reader here is another user.
    """
    directory = Path(tempfile.mkdtemp(prefix="lkpersist-foreign-"))
    directory.chmod(0o755)
    path = directory / "data" / "sessions.db"
    seed(f"sqlite:///{path}", Seed("alice", ttl_policy=LONG_TTL, turns=[("user", "hello"), ("assistant", "hi")]))
    path.parent.chmod(0o755)
    path.chmod(0o644)
    try:
        yield path
    finally:
        shutil.rmtree(directory)


# Run as another user: as root the file permissions would not apply. The interpreter may live where that
# user cannot read (pyenv under /root), so the script imports everything while still root, by running
# each command once on a scratch store, and only then drops to the other user's uid and gid.
_AS_ANOTHER_USER = textwrap.dedent("""
    import json, os, sys
    from typer.testing import CliRunner
    from lkpersist.cli import app

    scratch, target, commands = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    runner = CliRunner()
    runner.invoke(app, ["--store", scratch, "sessions", "purge"])  # creates the scratch store
    for command in commands:
        runner.invoke(app, ["--store", scratch, *command])
    if os.geteuid() == 0:
        os.setgid(%(uid)d)
        os.setuid(%(uid)d)
    results = []
    for command in commands:
        result = runner.invoke(app, ["--store", target, *command])
        results.append({"code": result.exit_code, "stdout": result.stdout, "stderr": result.stderr})
    print(json.dumps(results))
""") % {"uid": NOBODY}


def _as_another_user(db: Path, commands: list[tuple[str, ...]], tmp_path: Path) -> list[dict[str, object]]:
    if os.geteuid() != 0:  # already not the owner's uid: only the permissions have to change
        db.parent.chmod(0o555)
        db.chmod(0o444)
    scratch = f"sqlite:///{tmp_path / 'scratch.db'}"
    done = subprocess.run([sys.executable, "-c", _AS_ANOTHER_USER, scratch, f"sqlite:///{db}", json.dumps(commands)],
                          check=False, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    results: list[dict[str, object]] = json.loads(done.stdout)
    return results


@pytest.mark.parametrize("wal_in_use", [False, True], ids=["closed", "a-writer-has-it-open"])
def test_read_commands_work_on_a_file_this_user_cannot_write(foreign_db: Path, tmp_path: Path,
                                                             wal_in_use: bool) -> None:
    writer = None
    if wal_in_use:  # the agent is running: the -wal and -shm files exist (and are not ours either)
        writer = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
            import sqlite3, sys, time
            conn = sqlite3.connect({str(foreign_db)!r}, isolation_level=None)
            conn.execute("BEGIN IMMEDIATE"); conn.execute("UPDATE lkpersist_sessions SET ttl = ttl"); conn.execute("COMMIT")
            print("ready", flush=True)
            time.sleep(60)
        """)], stdout=subprocess.PIPE, text=True)
        assert writer.stdout is not None and writer.stdout.readline() == "ready\n"
        assert Path(f"{foreign_db}-shm").exists()
    try:
        ls, show, count = _as_another_user(
            foreign_db, [("sessions", "ls", "-o", "json"), ("sessions", "show", "alice", "--turns", "all"),
                         ("sessions", "count")], tmp_path)
    finally:
        if writer is not None:
            writer.kill()
            writer.wait()
    assert ls["code"] == 0, ls
    assert [(s["identity"], s["turn_count"]) for s in json.loads(str(ls["stdout"]))] == [("alice", 2)]
    assert show["code"] == 0 and "hello" in str(show["stdout"]), show
    assert (count["code"], count["stdout"]) == (0, "1\n")


def test_writing_commands_on_a_file_this_user_cannot_write_say_so(foreign_db: Path, tmp_path: Path) -> None:
    before = foreign_db.read_bytes()
    for result in _as_another_user(foreign_db, list(WRITE_COMMANDS), tmp_path):
        assert result["code"] == 3, result
        (line,) = str(result["stderr"]).splitlines()
        assert line.startswith(f"error: SQLite store '{foreign_db}' is read-only for this user"), line
    assert foreign_db.read_bytes() == before
    assert sorted(p.name for p in foreign_db.parent.iterdir()) == ["sessions.db"]
