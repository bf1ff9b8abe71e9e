"""Unusable stores and corrupt records: one clear line on stderr, exit 3, never a traceback."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from lkpersist.cli import app
from tests.cli.conftest import Seed, exists, invoke, seed
from tests.conftest import free_port, start_redis_server

COMMANDS = (
    ("sessions", "ls"), ("sessions", "ls", "-o", "json"), ("sessions", "show", "alice"),
    ("sessions", "rm", "alice"), ("sessions", "purge"), ("sessions", "count"),
)


def _assert_one_line_exit_3(result: Result, *secrets: str) -> str:
    assert result.exit_code == 3, result.output
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith("error: ") and "Traceback" not in result.stderr
    for secret in secrets:
        assert secret not in result.output
    return result.stderr


@pytest.fixture(scope="module")
def password_redis() -> Iterator[int]:
    proc, port = start_redis_server("--requirepass", "s3cret-pw")
    yield port
    proc.terminate()
    proc.wait(timeout=10)


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("url", ["not-a-url", "ftp://host/db", "redis://127.0.0.1:notaport/0"])
def test_bad_store_url(runner: CliRunner, url: str, command: tuple[str, ...]) -> None:
    line = _assert_one_line_exit_3(invoke(runner, url, *command))
    assert "URL" in line or "url" in line


@pytest.mark.parametrize("command", COMMANDS)
def test_unreachable_redis(runner: CliRunner, command: tuple[str, ...]) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    _assert_one_line_exit_3(invoke(runner, url, *command))


@pytest.mark.parametrize("command", COMMANDS)
def test_wrong_redis_password(runner: CliRunner, password_redis: int, command: tuple[str, ...]) -> None:
    url = f"redis://:wrong-pw-123@127.0.0.1:{password_redis}/0"
    _assert_one_line_exit_3(invoke(runner, url, *command), "wrong-pw-123")


def test_missing_redis_password(runner: CliRunner, password_redis: int) -> None:
    """Not Redis' raw "HELLO must be called with the client already authenticated...": what to do."""
    url = f"redis://127.0.0.1:{password_redis}/0"
    line = _assert_one_line_exit_3(invoke(runner, url, "sessions", "ls"))
    assert line == (f"error: Redis store {url} requires authentication: put the password in the URL: "
                    "redis://:PASSWORD@host:port/db (redis://USER:PASSWORD@host:port/db for an ACL user)\n")


def test_wrong_redis_password_says_so(runner: CliRunner, password_redis: int) -> None:
    line = _assert_one_line_exit_3(invoke(runner, f"redis://:nope-pw-1@127.0.0.1:{password_redis}/0", "sessions", "ls"))
    assert "refused the credentials (wrong user name or password" in line and "nope-pw-1" not in line


def test_right_redis_password_works(runner: CliRunner, password_redis: int) -> None:
    url = f"redis://:s3cret-pw@127.0.0.1:{password_redis}/0?prefix=pwtest"
    result = invoke(runner, url, "sessions", "count")
    assert result.exit_code == 0, result.output
    assert result.stdout == "0\n"


def test_store_from_environment(runner: CliRunner, sqlite_url: str) -> None:
    seed(sqlite_url, Seed("alice"))
    result = runner.invoke(app, ["sessions", "ls", "-o", "json"], env={"LKPERSIST_STORE": sqlite_url})
    assert result.exit_code == 0, result.output
    assert [s["identity"] for s in json.loads(result.stdout)] == ["alice"]


# --- corrupt records ------------------------------------------------------------------------------------


def _corrupt_sqlite(url: str, identity: str) -> None:
    with sqlite3.connect(url.removeprefix("sqlite:///")) as db:
        changed = db.execute(
            "UPDATE lkpersist_sessions SET metadata = ?, joined_at = 'garbage' WHERE identity = ?",
            ("\x00\xff not json {", identity),
        ).rowcount
    assert changed == 1


def _corrupt_redis(url: str, identity: str) -> None:
    import redis

    from lkpersist.stores.redis.keys import KeyLayout

    prefix = url.split("prefix=", 1)[1]
    _, keys = KeyLayout(prefix).keys_for(identity)
    client = redis.Redis.from_url(url.split("?", 1)[0])
    try:
        assert client.exists(keys.session) == 1
        client.hset(keys.session, mapping={"j": b"\xff\xfegarbage", "l": "not-a-number"})
    finally:
        client.close()


def _corrupt(url: str, identity: str) -> None:
    if url.startswith("sqlite"):
        _corrupt_sqlite(url, identity)
    else:
        _corrupt_redis(url, identity)


GOOD = (Seed("alice", age=1), Seed("zed", age=30))


def test_ls_names_a_corrupt_record_and_lists_the_others(runner: CliRunner, cli_url: str) -> None:
    seed(cli_url, *GOOD, Seed("broken", age=10))
    _corrupt(cli_url, "broken")
    for output in ("table", "json", "ndjson"):
        result = invoke(runner, cli_url, "sessions", "ls", "-o", output)
        assert result.exit_code == 3, result.output
        assert result.stderr.startswith("error: corrupt session record 'broken': ")
        assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr
        assert "alice" in result.stdout and "zed" in result.stdout
    as_json = json.loads(invoke(runner, cli_url, "sessions", "ls", "-o", "json").stdout)
    assert [s["identity"] for s in as_json] == ["alice", "zed"]


def test_show_corrupt_record_exits_3_naming_it(runner: CliRunner, cli_url: str) -> None:
    seed(cli_url, *GOOD, Seed("broken"))
    _corrupt(cli_url, "broken")
    line = _assert_one_line_exit_3(invoke(runner, cli_url, "sessions", "show", "broken"))
    assert "broken" in line


def test_purge_and_rm_carry_on_past_a_corrupt_record(runner: CliRunner, cli_url: str) -> None:
    seed(cli_url, Seed("alice"), Seed("old", age=3600, disconnected=True), Seed("broken"))
    _corrupt(cli_url, "broken")
    purged = invoke(runner, cli_url, "sessions", "purge")
    assert purged.exit_code == 0, purged.output
    assert not exists(cli_url, "old")
    removed = invoke(runner, cli_url, "sessions", "rm", "broken")
    assert removed.exit_code == 0, removed.output
    listed = invoke(runner, cli_url, "sessions", "ls", "-o", "json")
    assert listed.exit_code == 0, listed.output
    assert [s["identity"] for s in json.loads(listed.stdout)] == ["alice"]


def test_unwritable_sqlite_path(runner: CliRunner, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    _assert_one_line_exit_3(invoke(runner, f"sqlite:///{blocker}/sub/sessions.db", "sessions", "ls"))


def test_garbage_sqlite_file(runner: CliRunner, tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not a database" * 100)
    _assert_one_line_exit_3(invoke(runner, f"sqlite:///{garbage}", "sessions", "ls"))



def test_unreachable_sentinels_fail_fast_naming_them(runner: CliRunner) -> None:
    """Not 92 s of silence and a 1,500-character line of client reprs: one connect attempt per sentinel."""
    ports = [free_port(), free_port()]
    url = f"redis+sentinel://127.0.0.1:{ports[0]},127.0.0.1:{ports[1]}/mymaster"
    started = time.monotonic()
    line = _assert_one_line_exit_3(invoke(runner, url, "sessions", "ls"))
    assert time.monotonic() - started < 10  # the connect timeout (2 s) per sentinel, not the failover budget
    assert line == (f"error: Redis Sentinel {url} is unreachable: no sentinel answered "
                    f"(tried 127.0.0.1:{ports[0]}, 127.0.0.1:{ports[1]})\n")


REPR_MARKS = ("<redis.", "object at 0x", "Connection<", "Connection(", "Pool(")
EVERY_STORE_COMMAND = (*COMMANDS, ("sessions", "watch", "--timeout", "1s"), ("encrypt", "status"),
                       ("encrypt", "migrate"), ("simulate", "load", "--operations", "5", "--identities", "2"))


@pytest.mark.parametrize("command", EVERY_STORE_COMMAND)
@pytest.mark.parametrize("kind", ["unreachable", "sentinel", "cluster", "password", "no-password", "missing-file"])
def test_no_error_line_carries_an_object_repr(
    runner: CliRunner, password_redis: int, tmp_path: Path, kind: str, command: tuple[str, ...]
) -> None:
    url = {
        "unreachable": f"redis://127.0.0.1:{free_port()}/0",
        "sentinel": f"redis+sentinel://127.0.0.1:{free_port()}/mymaster",
        "cluster": f"redis+cluster://127.0.0.1:{free_port()}",
        "password": f"redis://:wrong-pw-123@127.0.0.1:{password_redis}/0",
        "no-password": f"redis://127.0.0.1:{password_redis}/0",
        "missing-file": f"sqlite:///{tmp_path / 'missing' / 'x.db'}",
    }[kind]
    result = invoke(runner, url, *command)
    # writing commands create a missing SQLite file (then rm finds nothing: 1; migrate has no key: 2)
    assert result.exit_code in ((0, 1, 2, 3) if kind == "missing-file" else (3,)), result.output
    assert "Traceback" not in result.output
    for mark in REPR_MARKS:
        assert mark not in result.stderr, result.stderr
