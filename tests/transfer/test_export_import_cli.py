"""``sessions export`` / ``sessions import`` through the CLI, between real stores (SQLite files, Redis)."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lkpersist.crypto.keys import generate_key
from lkpersist.stores import open_store
from lkpersist.transfer.format import FORMAT_NAME, FORMAT_VERSION
from tests.cli.conftest import Seed, invoke, seed
from tests.conftest import store_url_for

SEEDS = (
    Seed("alice", age=30, language="fr", metadata={"plan": "pro"}, context={"summary": "trains"},
         turns=[("user", "bonjour"), ("assistant", "salut")]),
    Seed("bob", age=60, disconnected=True, turns=[("user", "hello")]),
    Seed("x\ny {*}", age=90, metadata={"k": [1, 2]}),
)


@pytest.fixture(params=("sqlite", "redis"))
def target_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'target.db'}"
    return store_url_for("redis", tmp_path, request)


def _records(url: str) -> dict[str, tuple[dict[str, object], list[dict[str, object]]]]:
    async def read() -> dict[str, tuple[dict[str, object], list[dict[str, object]]]]:
        store = open_store(url)
        try:
            found = {}
            async for page in store.iter_records("all"):
                for r in page:
                    found[r.session.identity] = (r.session.to_dict(), [t.to_dict() for t in r.turns])  # type: ignore[union-attr]
            return found
        finally:
            await store.close()

    return asyncio.run(read())


def test_export_then_import_moves_every_session(runner: CliRunner, sqlite_url: str, target_url: str, tmp_path: Path) -> None:
    seed(sqlite_url, *SEEDS)
    dump = tmp_path / "dump.ndjson"
    exported = invoke(runner, sqlite_url, "sessions", "export", "--file", str(dump))
    assert exported.exit_code == 0, exported.output
    assert exported.stderr == f"exported 3 sessions (3 turns) to {dump}\n"
    assert oct(dump.stat().st_mode & 0o777) == "0o600"
    lines = dump.read_text().splitlines()
    header = json.loads(lines[0])
    assert (header["format"], header["version"], header["status"]) == (FORMAT_NAME, FORMAT_VERSION, "active")
    assert all(json.loads(line)["session"]["connected"] is False for line in lines[1:])
    imported = invoke(runner, target_url, "sessions", "import", str(dump))
    assert imported.exit_code == 0, imported.output
    assert imported.stdout == "imported 3 sessions (3 created)\n"
    source, target = _records(sqlite_url), _records(target_url)
    assert set(target) == {"alice", "bob", "x\ny {*}"}
    assert target["alice"][1] == source["alice"][1]
    assert target["alice"][0]["metadata"] == {"plan": "pro"} and target["alice"][0]["language"] == "fr"
    assert target["bob"] == source["bob"]  # disconnected at the source: identical field for field
    again = invoke(runner, target_url, "sessions", "import", str(dump), "-o", "json")
    assert json.loads(again.stdout)["unchanged"] == 3 and _records(target_url) == target


def test_export_to_stdout_pipes_into_import(runner: CliRunner, sqlite_url: str, target_url: str) -> None:
    seed(sqlite_url, *SEEDS)
    exported = invoke(runner, sqlite_url, "sessions", "export", "-i", "bob", "-i", "alice")
    assert exported.exit_code == 0, exported.output
    assert len(exported.stdout.splitlines()) == 3
    imported = runner.invoke(__import__("lkpersist.cli", fromlist=["app"]).app,
                             ["--store", target_url, "sessions", "import", "-"], input=exported.stdout)
    assert imported.exit_code == 0, imported.output
    assert set(_records(target_url)) == {"alice", "bob"}


def test_export_of_a_missing_identity_exits_1_after_the_others(runner: CliRunner, sqlite_url: str) -> None:
    seed(sqlite_url, *SEEDS)
    result = invoke(runner, sqlite_url, "sessions", "export", "-i", "alice", "-i", "nobody")
    assert result.exit_code == 1
    assert "error: session not found: 'nobody'" in result.stderr
    assert len(result.stdout.splitlines()) == 2


def test_bad_lines_are_reported_by_number_and_strict_stops(runner: CliRunner, sqlite_url: str, tmp_path: Path) -> None:
    seed(sqlite_url, *SEEDS)
    dump = tmp_path / "dump.ndjson"
    invoke(runner, sqlite_url, "sessions", "export", "--file", str(dump))
    header, first, second, third = dump.read_text().splitlines()
    edited = json.loads(second)
    edited["session"]["reconnect_count"] = "many"
    broken = tmp_path / "broken.ndjson"
    broken.write_text("\n".join([header, first, json.dumps(edited), third, third[: len(third) // 2]]) + "\n")
    target = f"sqlite:///{tmp_path / 't1.db'}"
    result = invoke(runner, target, "sessions", "import", str(broken))
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "error: line 3: invalid value (invalid literal for int() with base 10: 'many')",
        "error: line 5: truncated line",
    ]
    assert result.stdout == "imported 2 sessions (2 created); 2 bad lines\n"
    strict_target = f"sqlite:///{tmp_path / 't2.db'}"
    strict = invoke(runner, strict_target, "sessions", "import", str(broken), "--strict")
    assert strict.exit_code == 1
    assert strict.stdout == "imported 1 session (1 created); 1 bad line; stopped at line 3 (--strict)\n"
    assert len(_records(strict_target)) == 1


def test_a_file_that_is_not_an_export_is_refused(runner: CliRunner, sqlite_url: str, tmp_path: Path) -> None:
    other = tmp_path / "other.json"
    other.write_text('{"hello": 1}\n')
    result = invoke(runner, sqlite_url, "sessions", "import", str(other))
    assert result.exit_code == 2
    assert result.stderr.startswith("error: line 1: not an lkpersist export")
    newer = tmp_path / "newer.ndjson"
    newer.write_text(json.dumps({"format": FORMAT_NAME, "version": FORMAT_VERSION + 1}) + "\n")
    assert "newer than this lkpersist reads" in invoke(runner, sqlite_url, "sessions", "import", str(newer)).stderr


def test_dry_run_predicts_and_writes_nothing(runner: CliRunner, sqlite_url: str, tmp_path: Path) -> None:
    seed(sqlite_url, *SEEDS)
    dump = tmp_path / "dump.ndjson"
    invoke(runner, sqlite_url, "sessions", "export", "--file", str(dump))
    target = f"sqlite:///{tmp_path / 't.db'}"
    seed(target, Seed("alice"))
    result = invoke(runner, target, "sessions", "import", str(dump), "--dry-run", "--on-conflict", "skip")
    assert result.stdout == "would import 3 sessions (2 created, 1 skipped)\n"
    assert set(_records(target)) == {"alice"}


def test_encrypted_export_says_it_holds_personal_data_and_import_encrypts(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source, target = f"sqlite:///{tmp_path / 's.db'}", f"sqlite:///{tmp_path / 't.db'}"
    monkeypatch.setenv("LKPERSIST_ENCRYPTION_KEYS", generate_key())
    seed(source, *SEEDS)
    dump = tmp_path / "dump.ndjson"
    exported = invoke(runner, source, "sessions", "export", "--file", str(dump))
    assert exported.exit_code == 0 and "holds personal data" in exported.stderr
    assert "bonjour" in dump.read_text()  # decrypted
    monkeypatch.setenv("LKPERSIST_ENCRYPTION_KEYS", generate_key())  # the target's own key
    assert invoke(runner, target, "sessions", "import", str(dump)).exit_code == 0
    raw = (tmp_path / "t.db").read_bytes()
    assert b"bonjour" not in raw and b"trains" not in raw
    assert _records(target)["alice"][1][0]["text"] == "bonjour"


def test_chat_ctx_loads_in_livekit_agents(runner: CliRunner, sqlite_url: str) -> None:
    from livekit.agents import llm

    seed(sqlite_url, *SEEDS)
    result = invoke(runner, sqlite_url, "sessions", "export", "--format", "chat-ctx", "-i", "alice")
    assert result.exit_code == 0, result.output
    chat_ctx = llm.ChatContext.from_dict(json.loads(result.stdout))
    messages = chat_ctx.messages()
    assert [(m.role, m.text_content, m.id) for m in messages] == [
        ("user", "bonjour", "item-0"), ("assistant", "salut", "item-1")]
    assert messages[0].created_at == pytest.approx(_records(sqlite_url)["alice"][1][0]["timestamp"])
    both = invoke(runner, sqlite_url, "sessions", "export", "--format", "chat-ctx", "-i", "alice", "-i", "bob")
    assert both.exit_code == 2


def test_export_file_is_complete_or_absent(runner: CliRunner, tmp_path: Path) -> None:
    broken = f"sqlite:///{tmp_path / 'not-a-db.db'}"
    (tmp_path / "not-a-db.db").write_bytes(b"garbage" * 1000)
    dump = tmp_path / "dump.ndjson"
    result = invoke(runner, broken, "sessions", "export", "--file", str(dump))
    assert result.exit_code == 3
    assert not dump.exists() and not [p for p in os.listdir(tmp_path) if p.startswith(".dump")]


def test_a_line_of_bad_bytes_is_one_bad_line(runner: CliRunner, sqlite_url: str, tmp_path: Path) -> None:
    seed(sqlite_url, *SEEDS)
    dump = tmp_path / "dump.ndjson"
    invoke(runner, sqlite_url, "sessions", "export", "--file", str(dump))
    header, first, *rest = dump.read_bytes().splitlines()
    broken = tmp_path / "broken.ndjson"
    broken.write_bytes(b"\n".join([header, first.replace(b'"identity":"', b'"identity":"\xff'), *rest]) + b"\n")
    result = invoke(runner, f"sqlite:///{tmp_path / 't.db'}", "sessions", "import", str(broken))
    assert result.exit_code == 1
    assert result.stderr == "error: line 2: not UTF-8 text\n"
    assert result.stdout == "imported 2 sessions (2 created); 1 bad line\n"


def test_export_into_a_closed_pipe_stops_quietly(sqlite_url: str) -> None:
    import subprocess
    import sys

    from tests.transfer.test_round_trip import _records as many_records

    async def fill() -> None:
        store = open_store(sqlite_url)
        try:
            await store.import_records(many_records(3000))  # far more than a pipe buffers
        finally:
            await store.close()

    asyncio.run(fill())
    reader = f"{sys.executable} -c 'import sys; print(sys.stdin.read(10))'"
    export = f"{sys.executable} -m lkpersist --store '{sqlite_url}' sessions export --status all"
    done = subprocess.run(["bash", "-c", f"{export} | {reader}; exit ${{PIPESTATUS[0]}}"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.stdout == '{"format":\n'
    assert done.returncode == 0 and done.stderr == "", done.stderr  # as ls: the reader chose to stop
