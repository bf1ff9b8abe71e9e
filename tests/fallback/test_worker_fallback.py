"""The bundled worker turns the fallback on for Redis by default; ``--no-fallback`` / LKPERSIST_FALLBACK."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from lkpersist.agent.config import ENV, WorkerConfig
from lkpersist.cli import app
from lkpersist.exceptions import InvalidInputError


@pytest.mark.parametrize(
    ("url", "given", "expected"),
    [
        ("redis://127.0.0.1:6379/0", None, True),
        ("rediss://h:6380/0", None, True),
        ("redis+cluster://h:7000", None, True),
        ("sqlite:///sessions.db", None, False),
        ("memory://", None, False),
        ("redis://127.0.0.1:6379/0", False, False),
        ("sqlite:///sessions.db", True, True),
    ],
)
def test_on_by_default_for_redis_only(url: str, given: bool | None, expected: bool) -> None:
    config = WorkerConfig(store_url=url, fallback=given)
    assert config.uses_fallback() is expected
    assert WorkerConfig.from_env(config.to_env()) == config


def test_the_environment_variable_is_a_flag() -> None:
    assert WorkerConfig.from_env({ENV["fallback"]: "off"}).fallback is False
    assert WorkerConfig.from_env({ENV["fallback"]: "1"}).fallback is True
    with pytest.raises(InvalidInputError, match="LKPERSIST_FALLBACK"):
        WorkerConfig.from_env({ENV["fallback"]: "sometimes"})


def test_run_help_documents_the_option() -> None:
    result = CliRunner().invoke(app, ["run", "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "--no-fallback" in result.output
