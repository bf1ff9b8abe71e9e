"""``lkpersist run --greeting template|llm|off`` and the summary options: parsed, checked, carried to jobs."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from lkpersist.agent.config import ENV, WorkerConfig
from lkpersist.cli import app
from lkpersist.exceptions import InvalidInputError
from tests.agent.test_worker import clean_env  # noqa: F401 -- the fixture: no LIVEKIT_*/LKPERSIST_* set


def test_the_conversation_settings_survive_the_trip_to_a_job() -> None:
    config = WorkerConfig(greeting="llm", summaries=False, summary_cap=60, summary_keep=10, summary_words=80)
    assert WorkerConfig.from_env(config.to_env()) == config
    assert config.summary_policy() is None
    on = WorkerConfig(summary_cap=60, summary_keep=10, summary_words=80).summary_policy()
    assert on is not None and (on.cap, on.keep, on.max_words) == (60, 10, 80)
    assert WorkerConfig().greeting == "template" and WorkerConfig().summaries is True


def test_environment_values_are_checked() -> None:
    assert WorkerConfig.from_env({ENV["greeting"]: "off", ENV["summaries"]: "no"}).summaries is False
    with pytest.raises(InvalidInputError, match="greeting must be one of template, llm, off"):
        WorkerConfig.from_env({ENV["greeting"]: "loud"})
    with pytest.raises(InvalidInputError, match="LKPERSIST_SUMMARY_CAP='many': expected a whole number"):
        WorkerConfig.from_env({ENV["summary_cap"]: "many"})


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--greeting", "loud"], "Invalid value for '--greeting'"),
        (["--summary-keep", "100"], "keep (100) must be at least 0 and below cap (100)"),
        (["--summary-cap", "600"], "must be below the store's max_turns (500)"),
        (["--summary-words", "5"], "Invalid value for '--summary-words'"),
    ],
)
@pytest.mark.usefixtures("clean_env")
def test_bad_conversation_options_exit_2_with_one_clear_line(args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["run", *args, "start"], terminal_width=200)
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output


@pytest.mark.usefixtures("clean_env")
def test_run_help_lists_the_greeting_modes() -> None:
    result = CliRunner().invoke(app, ["run", "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "template|llm|off" in result.output and "--no-summaries" in result.output


def test_the_cli_choices_are_the_configs() -> None:
    from lkpersist.agent.config import GREETING_CHOICES
    from lkpersist.cli.run import Greeting

    assert [choice.value for choice in Greeting] == list(GREETING_CHOICES)
