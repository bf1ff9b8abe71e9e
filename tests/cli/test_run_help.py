"""``lkpersist run``: the livekit modes in its usage line and in completion, livekit's help per mode."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from lkpersist.cli import app
from lkpersist.cli.run import Mode
from tests.cli.test_completions import _bash_complete

MODES = ("dev", "start", "console", "connect", "download-files")


def test_the_usage_line_lists_the_modes() -> None:
    result = CliRunner().invoke(app, ["run", "--help"])
    assert result.exit_code == 0, result.output
    usage = " ".join(result.stdout.split("\n\n")[0].split())
    assert usage == "Usage: lkpersist run [OPTIONS] [{dev|start|console|connect|download-files}] [LIVEKIT OPTIONS]..."
    assert tuple(mode.value for mode in Mode) == MODES


def test_completion_offers_the_modes() -> None:
    assert set(_bash_complete("run", "")) >= set(MODES)
    assert _bash_complete("run", "down") == ["download-files"]


@pytest.mark.parametrize("mode", ["start", "dev", "connect"])
def test_mode_help_is_livekit_s_own(mode: str) -> None:
    """``run start --help`` is what livekit's own CLI says about ``start``: its options, not ours."""
    result = CliRunner().invoke(app, ["run", mode, "--help"], env={"LIVEKIT_URL": None, "LIVEKIT_API_KEY": None})
    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.split())
    assert f"lkpersist run {mode} [OPTIONS]" in text
    assert "--log-level" in text and "--url" in text and "--api-key" in text
    assert "--ttl-first" not in text  # lkpersist's options are in `lkpersist run --help`


def test_an_unknown_mode_is_a_usage_error() -> None:
    result = CliRunner().invoke(app, ["run", "serve"])
    assert result.exit_code == 2
    assert "'serve' is not one of 'dev', 'start', 'console', 'connect', 'download-files'" in result.stderr


def test_livekit_options_after_the_mode_still_pass_through() -> None:
    """``run start --log-level debug`` without credentials: the check names them (the option was not eaten)."""
    env = {"LIVEKIT_URL": None, "LIVEKIT_API_KEY": None, "LIVEKIT_API_SECRET": None}
    result = CliRunner().invoke(app, ["run", "start", "--log-level", "debug", "--url", "ws://127.0.0.1:1"], env=env)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: LIVEKIT_API_KEY, LIVEKIT_API_SECRET not set")
