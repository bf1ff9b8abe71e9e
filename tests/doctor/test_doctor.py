"""``lkpersist doctor`` against real stores and a real (loopback) HTTP server standing in for LiveKit."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lkpersist.crypto.keys import generate_key
from tests.cli.conftest import Seed, invoke, seed
from tests.conftest import free_port


class _Ok(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"OK")

    def log_message(self, *args: object) -> None:
        """Quiet."""


@pytest.fixture
def livekit(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A loopback HTTP server answering GET / as a LiveKit server does, and the credentials set."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"ws://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setenv("LIVEKIT_URL", url)
    monkeypatch.setenv("LIVEKIT_API_KEY", "devkey")
    monkeypatch.setenv("LIVEKIT_API_SECRET", "secret" * 6)
    try:
        yield url
    finally:
        server.shutdown()


def _checks(result: object) -> dict[str, dict[str, object]]:
    document = json.loads(result.stdout)  # type: ignore[attr-defined]
    return {check["name"]: check for check in document["checks"]}


def test_everything_passes_on_a_healthy_sqlite_store(runner: CliRunner, sqlite_url: str, livekit: str) -> None:
    seed(sqlite_url, Seed("alice", turns=[("user", "hi")]))
    result = invoke(runner, sqlite_url, "doctor")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert [line.split()[1] for line in lines] == [
        "store", "schema", "encryption", "clock", "purge", "livekit", "livekit", "agent", "metrics"]
    assert all(line.startswith("✓ ") for line in lines)
    assert f"{livekit} answers (HTTP 200)" in result.stdout
    assert "layout version 5" in result.stdout


def test_a_closed_livekit_port_and_missing_credentials_fail_with_the_fix(
    runner: CliRunner, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(sqlite_url, Seed("alice"))
    monkeypatch.setenv("LIVEKIT_URL", f"ws://127.0.0.1:{free_port()}")
    monkeypatch.delenv("LIVEKIT_API_KEY", raising=False)
    monkeypatch.delenv("LIVEKIT_API_SECRET", raising=False)
    result = invoke(runner, sqlite_url, "doctor", "-o", "json")
    assert result.exit_code == 1
    checks = _checks(result)
    assert checks["livekit server"]["ok"] is False and "Connection refused" in str(checks["livekit server"]["detail"])
    assert checks["livekit credentials"]["detail"] == "not set: LIVEKIT_API_KEY, LIVEKIT_API_SECRET"
    assert "LIVEKIT_API_KEY" in str(checks["livekit credentials"]["fix"])
    assert checks["store"]["ok"] is True


def test_an_overdue_purge_and_plaintext_under_keys_are_reported(
    runner: CliRunner, sqlite_url: str, livekit: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(sqlite_url, Seed("left-long-ago", age=3 * 3600, disconnected=True), Seed("here"))
    monkeypatch.setenv("LKPERSIST_ENCRYPTION_KEYS", generate_key())
    result = invoke(runner, sqlite_url, "doctor")
    assert result.exit_code == 1
    purge = next(line for line in result.stdout.splitlines() if " purge " in line)
    assert purge.startswith("✗ purge") and "1 of them expired over 1 h ago" in purge
    assert "fix: schedule `lkpersist sessions purge`" in purge
    encryption = next(line for line in result.stdout.splitlines() if " encryption " in line)
    assert encryption.startswith("✗") and "run `lkpersist encrypt migrate`" in encryption
    assert invoke(runner, sqlite_url, "encrypt", "migrate").exit_code == 0
    assert invoke(runner, sqlite_url, "sessions", "purge").exit_code == 0
    assert invoke(runner, sqlite_url, "doctor").exit_code == 0


def test_redis_reports_its_version_and_clock_offset(runner: CliRunner, livekit: str, redis_url: str, redis_prefix: str) -> None:
    result = invoke(runner, f"{redis_url}?prefix={redis_prefix}", "doctor", "-o", "json")
    assert result.exit_code == 0, result.output
    checks = _checks(result)
    assert "Redis 7" in str(checks["schema"]["detail"]) or "Redis" in str(checks["schema"]["detail"])
    assert "s behind" in str(checks["clock"]["detail"]) or "s ahead of" in str(checks["clock"]["detail"])


def test_an_unreachable_store_is_one_failed_line(runner: CliRunner, livekit: str) -> None:
    result = invoke(runner, f"redis://127.0.0.1:{free_port()}/0?socket_connect_timeout=0.3", "doctor")
    assert result.exit_code == 1
    first, *rest = result.stdout.splitlines()
    assert first.startswith("✗ store") and "unavailable" in first and "fix: check --store" in first
    assert [line.split()[1] for line in rest] == ["livekit", "livekit", "agent", "metrics"]


def test_a_store_that_does_not_exist_is_reported_and_not_created(runner: CliRunner, tmp_path: Path, livekit: str) -> None:
    path = tmp_path / "nothing-here" / "sessions.db"
    result = invoke(runner, f"sqlite:///{path}", "doctor")
    assert result.exit_code == 1
    first = result.stdout.splitlines()[0]
    assert first.startswith("✗ store") and "does not exist" in first
    assert not path.parent.exists()
