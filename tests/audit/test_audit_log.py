"""The audit log: each command leaves exactly one record, with its outcome, and no personal data."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lkpersist.audit import AuditLog, record_restore, reset_agent_audit_log
from lkpersist.audit.sinks import FileSink
from lkpersist.crypto.keys import generate_key
from tests.cli.conftest import Seed, invoke, seed

SECRETS = ("bonjour", "salut", "pro-plan", "trains", "fr-CA", "plan", "summary")
"""Conversation text, metadata and context values and keys, the language: never in a record."""


@pytest.fixture
def audit_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "audit.jsonl"
    monkeypatch.setenv("LKPERSIST_AUDIT_LOG", str(path))
    return path


@pytest.fixture
def seeded(sqlite_url: str) -> str:
    seed(sqlite_url, Seed("alice", age=10, language="fr-CA", metadata={"plan": "pro-plan"},
                          context={"summary": "trains"}, turns=[("user", "bonjour"), ("assistant", "salut")]),
         Seed("bob", age=20_000, disconnected=True))
    return sqlite_url


def _records(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


COMMANDS = [
    (("sessions", "show", "alice", "--turns", "5", "-o", "json"), "sessions show", 0, "ok", ["alice"]),
    (("sessions", "show", "nobody"), "sessions show", 1, "not_found", ["nobody"]),
    (("sessions", "ls", "-o", "json"), "sessions ls", 0, "ok", []),
    (("sessions", "export", "--status", "all"), "sessions export", 0, "ok", []),
    (("sessions", "rm", "alice", "nobody"), "sessions rm", 1, "partial", ["alice", "nobody"]),
    (("sessions", "purge"), "sessions purge", 0, "ok", []),
    (("encrypt", "migrate"), "encrypt migrate", 0, "ok", []),
    (("encrypt", "rotate", "--dry-run"), "encrypt rotate", 0, "ok", []),
]


@pytest.mark.parametrize(("args", "action", "code", "outcome", "identities"), COMMANDS)
def test_each_command_leaves_exactly_one_record(
    runner: CliRunner, seeded: str, audit_file: Path, monkeypatch: pytest.MonkeyPatch,
    args: tuple[str, ...], action: str, code: int, outcome: str, identities: list[str],
) -> None:
    monkeypatch.setenv("LKPERSIST_ENCRYPTION_KEYS", generate_key())  # encrypt needs a key; reads still work
    result = invoke(runner, seeded, *args)
    assert result.exit_code == code, result.output
    (record,) = _records(audit_file)
    assert (record["component"], record["action"], record["identities"]) == ("cli", action, identities)
    assert record["result"]["outcome"] == outcome  # type: ignore[index]
    assert (record["pid"], record["host"]) == (os.getpid(), socket.gethostname())
    assert record["user"] and record["identity_form"] == "plain"
    text = audit_file.read_text()
    assert not [secret for secret in SECRETS if secret in text]


def test_import_is_recorded_with_its_counts(runner: CliRunner, seeded: str, audit_file: Path, tmp_path: Path) -> None:
    dump = tmp_path / "dump.ndjson"
    invoke(runner, seeded, "sessions", "export", "--status", "all", "--file", str(dump))
    target = f"sqlite:///{tmp_path / 'target.db'}"
    assert invoke(runner, target, "sessions", "import", str(dump)).exit_code == 0
    export_record, import_record = _records(audit_file)
    assert export_record["result"] == {"outcome": "ok", "sessions": 2, "turns": 2}
    assert import_record["action"] == "sessions import"
    assert import_record["result"] == {"outcome": "ok", "created": 2, "bad_lines": 0}


def test_a_failed_audit_write_stops_the_command_before_it_acts(
    runner: CliRunner, seeded: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LKPERSIST_AUDIT_LOG", str(tmp_path / "missing-dir" / "audit.jsonl"))
    result = invoke(runner, seeded, "sessions", "rm", "alice")
    assert result.exit_code == 3
    assert result.stderr.startswith("error: audit log: cannot open") and "nothing was done" in result.stderr
    assert result.stdout == ""
    assert invoke(runner, seeded.replace("", ""), "sessions", "count", "--all").stdout == "2\n"  # nothing removed


def test_hashed_identities_and_the_audit_command(
    runner: CliRunner, seeded: str, audit_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LKPERSIST_AUDIT_IDENTITY", "hash")
    monkeypatch.setenv("LKPERSIST_IDENTITY_KEY", "k" * 40)
    invoke(runner, seeded, "sessions", "show", "alice")
    invoke(runner, seeded, "sessions", "show", "bob")
    assert "alice" not in audit_file.read_text()
    first, _ = _records(audit_file)
    assert first["identity_form"] == "hmac-sha256" and len(first["identities"][0]) == 32  # type: ignore[index]
    shown = runner.invoke(__import__("lkpersist.cli", fromlist=["app"]).app, ["audit", "-i", "alice", "-o", "json"])
    assert shown.exit_code == 0, shown.output
    assert [r["identities"] for r in json.loads(shown.stdout)] == [first["identities"]]
    table = runner.invoke(__import__("lkpersist.cli", fromlist=["app"]).app, ["audit", "--since", "1h"])
    assert table.exit_code == 0 and table.stdout.count("cli sessions show") == 2


def test_audit_reports_bad_lines_by_number(runner: CliRunner, audit_file: Path) -> None:
    log = AuditLog(FileSink(str(audit_file)))
    entry = log.begin("sessions show", identities=["zoe"])
    audit_file.open("a").write('{"truncated": \n')
    entry.finish("ok")
    result = runner.invoke(__import__("lkpersist.cli", fromlist=["app"]).app, ["audit", "-o", "json"])
    assert result.exit_code == 1
    assert result.stderr == "error: line 2: not a JSON record (truncated or edited?)\n"
    assert json.loads(result.stdout)[0]["result"] == {"outcome": "ok"}


def test_a_record_is_written_before_the_command_acts_and_completed_in_place(audit_file: Path) -> None:
    log = AuditLog(FileSink(str(audit_file)))
    entry = log.begin("sessions export", selection={"status": "all"})
    other = AuditLog(FileSink(str(audit_file))).begin("sessions show", identities=["x"])  # another process
    assert [r["result"]["outcome"] for r in _records(audit_file)] == ["pending", "pending"]  # type: ignore[index]
    entry.counts = {"sessions": 100_000, "turns": 2_000_000}
    entry.finish("ok")
    other.finish("not_found")
    first, second = _records(audit_file)
    assert first["result"] == {"outcome": "ok", "sessions": 100_000, "turns": 2_000_000}
    assert second["result"] == {"outcome": "not_found"}


def test_syslog_gets_one_message_per_command(
    runner: CliRunner, seeded: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    address = str(tmp_path / "log.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(address)
    server.settimeout(5)
    monkeypatch.setenv("LKPERSIST_AUDIT_LOG", "syslog")
    monkeypatch.setenv("LKPERSIST_AUDIT_SYSLOG_ADDRESS", address)
    try:
        assert invoke(runner, seeded, "sessions", "show", "alice").exit_code == 0
        message = server.recv(65536)
        server.setblocking(False)
        with pytest.raises(BlockingIOError):
            server.recv(65536)
    finally:
        server.close()
    assert message.startswith(b"<86>lkpersist-audit[")
    record = json.loads(message.split(b"]: ", 1)[1])
    assert record["action"] == "sessions show" and record["result"] == {"outcome": "ok", "turns": 0}


def test_the_agent_hook_writes_in_the_background_and_only_warns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "agent-audit.jsonl"
    monkeypatch.setenv("LKPERSIST_AUDIT_LOG", str(path))
    reset_agent_audit_log()
    try:
        record_restore("alice", 7)
        reset_agent_audit_log()  # waits for the background write
        (record,) = _records(path)
        assert (record["component"], record["action"], record["identities"]) == ("agent", "restore", ["alice"])
        assert record["result"] == {"outcome": "ok", "turns": 7}
        monkeypatch.setenv("LKPERSIST_AUDIT_LOG", str(tmp_path / "no-such-dir" / "a.jsonl"))
        record_restore("alice", 1)  # must not raise
        reset_agent_audit_log()
        assert "audit log: cannot open" in caplog.text
    finally:
        reset_agent_audit_log()
