"""``lkpersist run``: configuration, the checks made before livekit starts, and the worker module itself."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lkpersist.agent.config import ENV, WorkerConfig, missing_environment
from lkpersist.cli import app
from lkpersist.cli.run import _config
from lkpersist.exceptions import InvalidInputError

LIVEKIT_ENV = (
    "LIVEKIT_URL",
    "LIVEKIT_API_KEY",
    "LIVEKIT_API_SECRET",
    "LIVEKIT_INFERENCE_API_KEY",
    "LIVEKIT_INFERENCE_API_SECRET",
)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    for name in (*LIVEKIT_ENV, *ENV.values()):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(ENV["store_url"], f"sqlite:///{tmp_path / 'sessions.db'}")
    return monkeypatch


def test_options_map_to_config_and_survive_the_trip_through_the_environment(tmp_path: Path) -> None:
    greetings = tmp_path / "g.json"
    greetings.write_text('{"new": {"en": "Hi!"}}', encoding="utf-8")
    config = _config(
        "redis://127.0.0.1:6379/0",
        stt="deepgram/nova-2",
        llm="scripted",
        tts="cartesia/sonic-3",
        instructions="Be brief.",
        greetings=str(greetings),
        agent_name="concierge",
        ttl_first="2m",
        ttl_returning="15m",
        ttl_frequent="1h",
        store_timeout="0.25",
        ready_timeout="4s",
        heartbeat="20s",
    )
    assert config.ttl_policy().ttl_for(0) == 120 and config.ttl_policy().ttl_for(1) == 900
    assert (config.store_timeout, config.ready_timeout, config.heartbeat_interval) == (0.25, 4, 20)
    assert config.greetings().render(returning=False, language="en", visit=1) == "Hi!"
    assert WorkerConfig.from_env(config.to_env()) == config


def test_unset_options_keep_the_defaults() -> None:
    none = dict.fromkeys(
        (
            "stt",
            "llm",
            "tts",
            "instructions",
            "greetings",
            "agent_name",
            "ttl_first",
            "ttl_returning",
            "ttl_frequent",
            "store_timeout",
            "ready_timeout",
            "heartbeat",
        )
    )
    assert _config(None, **none) == WorkerConfig()


def test_a_heartbeat_slower_than_the_ttl_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="heartbeat"):
        WorkerConfig(heartbeat_interval=600, ttl_first=300)


def test_required_environment_by_mode() -> None:
    config = WorkerConfig()
    assert missing_environment(config, "start", [], {}) == [
        "LIVEKIT_URL",
        "LIVEKIT_API_KEY",
        "LIVEKIT_API_SECRET",
    ]
    assert (
        missing_environment(config, "dev", ["--url", "wss://x", "--api-key=k"], {"LIVEKIT_API_SECRET": "s"})
        == []
    )
    assert missing_environment(config, "console", [], {}) == ["LIVEKIT_API_KEY", "LIVEKIT_API_SECRET"]
    inference = {"LIVEKIT_INFERENCE_API_KEY": "k", "LIVEKIT_INFERENCE_API_SECRET": "s"}
    assert missing_environment(config, "console", [], inference) == []
    assert missing_environment(config, "download-files", [], {}) == []


@pytest.mark.parametrize(
    ("mode", "variable"), [("start", "LIVEKIT_URL"), ("dev", "LIVEKIT_URL"), ("console", "LIVEKIT_API_KEY")]
)
def test_missing_credentials_give_one_line_and_exit_2(
    clean_env: pytest.MonkeyPatch, mode: str, variable: str
) -> None:
    result = CliRunner().invoke(app, ["run", mode, "--log-level", "debug"])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and variable in lines[0] and "Traceback" not in result.output


def test_a_missing_mode_is_a_usage_error(clean_env: pytest.MonkeyPatch) -> None:
    result = CliRunner().invoke(app, ["run"])
    assert result.exit_code == 2
    assert "missing MODE" in result.output


def test_an_unusable_store_url_exits_3(clean_env: pytest.MonkeyPatch) -> None:
    result = CliRunner().invoke(app, ["--store", "ftp://nowhere", "run", "start"])
    assert result.exit_code == 3, result.output
    assert "unsupported store URL scheme" in result.output


def test_a_bad_greetings_file_exits_2(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    bad = tmp_path / "g.json"
    bad.write_text('{"new": {"en": "Hi {nobody}"}}', encoding="utf-8")
    result = CliRunner().invoke(app, ["run", "start", "--greetings", str(bad)])
    assert result.exit_code == 2, result.output
    assert "{nobody}" in result.output or "nobody" in result.output


async def test_the_worker_module_builds_its_agent_server(monkeypatch: pytest.MonkeyPatch) -> None:
    from livekit.agents import AgentServer

    monkeypatch.setenv("LIVEKIT_API_KEY", "test-key")  # LiveKit Inference STT/TTS are built with it
    monkeypatch.setenv("LIVEKIT_API_SECRET", "test-secret-" + "x" * 32)
    from lkpersist.agent import worker

    assert isinstance(worker.server, AgentServer)
    assert worker.server._entrypoint_fnc is worker.entrypoint  # registered at module level for job processes
    scripted = worker.build_session(WorkerConfig(llm="scripted"))
    assert type(scripted.llm).__name__ == "ScriptedLLM"
    inference = worker.build_session(WorkerConfig())
    assert (inference.llm.model, inference.stt.model, inference.tts.model) == (  # type: ignore[union-attr]
        "openai/gpt-4.1-mini",
        "deepgram/nova-3",
        "cartesia/sonic-2",
    )


def test_the_sessions_commands_do_not_load_livekit() -> None:
    code = "import sys, lkpersist.cli; print(any(m.startswith('livekit') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_switch_line_reaches_the_jobs_through_the_environment() -> None:
    config = WorkerConfig(switch_line="You're now on your phone.")
    assert config.to_env()[ENV["switch_line"]] == "You're now on your phone."
    assert WorkerConfig.from_env(config.to_env()) == config
    assert ENV["switch_line"] not in WorkerConfig().to_env()  # unset: the jobs say nothing on a switch
