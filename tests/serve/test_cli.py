"""``lkpersist serve`` on the command line: configuration errors are one line and a documented exit code."""

from __future__ import annotations

import socket
import sys

import pytest
from typer.testing import CliRunner

from lkpersist.cli import app
from tests.serve._process import API_KEY, API_SECRET

LIVEKIT = {"LIVEKIT_URL": "ws://127.0.0.1:7880", "LIVEKIT_API_KEY": API_KEY, "LIVEKIT_API_SECRET": API_SECRET}


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """LiveKit settings present, nothing else of ours."""
    for name in ("LKPERSIST_RESUME_SECRET", "LKPERSIST_RESUME_SECRET_OLD", "LKPERSIST_AGENT_NAME",
                 "LKPERSIST_STORE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in LIVEKIT.items():
        monkeypatch.setenv(name, value)
    return monkeypatch


def one_error_line(args: list[str], code: int) -> str:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == code, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.output, result.output
    return lines[0]


@pytest.mark.parametrize("missing", [["LIVEKIT_URL"], ["LIVEKIT_API_KEY", "LIVEKIT_API_SECRET"],
                                     ["LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET"]])
def test_missing_livekit_settings_are_named_together(env: pytest.MonkeyPatch, missing: list[str]) -> None:
    for name in missing:
        env.delenv(name)
    line = one_error_line(["serve"], 2)
    assert f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set" in line


@pytest.mark.parametrize(("args", "words"), [
    (["--token-ttl", "soon"], "invalid duration 'soon'"),
    (["--resume-ttl", "0"], "must be positive"),
    (["--connect-timeout", "-1s"], "invalid duration"),
    (["--rate-limit", "lots"], "invalid rate limit 'lots'"),
    (["--room", "lobby", "--room-prefix", "x-"], "at most one of --room and --room-prefix"),
    (["--room", "a\nb"], "--room contains control characters"),
    (["--room-prefix", "p" * 240], "--room-prefix is too long"),
    (["--port", "70000"], "--port must be between 0 and 65535"),
    (["--allow-origin", "https://app.example.com/path"], "--allow-origin takes an origin"),
    (["--history-turns", "0"], "--history-turns must be between 1 and 100"),
    (["--agent-name", " "], "--agent-name must not be empty"),
])
def test_bad_options_exit_2(env: pytest.MonkeyPatch, args: list[str], words: str) -> None:
    assert words in one_error_line(["serve", *args], 2)


@pytest.mark.parametrize("url", ["livekit.example.com", "ftp://x", "ws://"])
def test_a_bad_livekit_url_exits_2(env: pytest.MonkeyPatch, url: str) -> None:
    env.setenv("LIVEKIT_URL", url)
    assert "LIVEKIT_URL must be a ws://, wss://, http:// or https:// URL" in one_error_line(["serve"], 2)


def test_demo_checks_the_workers_settings_before_serving(env: pytest.MonkeyPatch) -> None:
    env.setenv("LKPERSIST_TTL_FIRST", "never")
    assert "invalid duration 'never'" in one_error_line(["--store", "memory://", "serve", "--demo"], 2)


def test_a_short_resume_secret_exits_2(env: pytest.MonkeyPatch) -> None:
    env.setenv("LKPERSIST_RESUME_SECRET", "too-short")
    assert "LKPERSIST_RESUME_SECRET is shorter than 32 characters" in one_error_line(["serve"], 2)


def test_an_unusable_store_url_exits_3(env: pytest.MonkeyPatch) -> None:
    line = one_error_line(["--store", "ftp://nowhere", "serve", "--port", "0"], 3)
    assert "unsupported store URL scheme" in line


def test_a_port_in_use_exits_1(env: pytest.MonkeyPatch) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        line = one_error_line(["--store", "memory://", "serve", "--port", str(port)], 1)
    assert f"cannot listen on 127.0.0.1:{port}" in line


def test_without_aiohttp_one_line_names_the_install_and_exits_4(env: pytest.MonkeyPatch) -> None:
    env.setitem(sys.modules, "aiohttp", None)  # makes `import aiohttp` fail
    line = one_error_line(["serve"], 4)
    assert "pip install 'lkpersist[agent]'" in line


def test_help_names_the_environment(env: pytest.MonkeyPatch) -> None:
    result = CliRunner().invoke(app, ["serve", "--help"])
    assert result.exit_code == 0
    for name in ("LIVEKIT_URL", "LKPERSIST_RESUME_SECRET", "--demo", "--allow-origin", "--rate-limit"):
        assert name in result.output


def test_the_cli_imports_no_aiohttp_until_serve_runs() -> None:
    import subprocess

    code = ("import sys, lkpersist.cli; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('aiohttp', 'livekit')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_commands_defaults_are_the_librarys() -> None:
    """The command declares its defaults as literals (its module imports no library code): no drift."""
    import typer.main

    from lkpersist.agent.config import ENV
    from lkpersist.cli import serve as command
    from lkpersist.serve import config
    from lkpersist.serve.ratelimit import RateLimit

    assert command.DEFAULT_ROOM_PREFIX == config.DEFAULT_ROOM_PREFIX
    assert command.AGENT_NAME_ENV == ENV["agent_name"]
    params = {p.name: p.default for p in typer.main.get_command(command.app).params}
    assert RateLimit.parse(str(params["rate_limit"])) == config.DEFAULT_RATE_LIMIT
    assert params["connect_timeout"] == f"{config.DEFAULT_CONNECT_TIMEOUT:g}s"
    assert params["history_turns"] == config.DEFAULT_HISTORY_TURNS
