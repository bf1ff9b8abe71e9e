"""``--store`` and ``--key-file`` where people type them: before the sub-command or after it (kubectl-style).

One definition on the root callback, copied onto every sub-command by the root group, with the same
environment variables; given in both places, the one after the sub-command wins.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lkpersist.cli import app
from lkpersist.crypto.keys import generate_key
from tests.cli.conftest import LONG_TTL, Seed, seed
from tests.cli.test_completions import _bash_complete


def _identities(stdout: str) -> list[str]:
    return [session["identity"] for session in json.loads(stdout)]


@pytest.mark.parametrize(
    "args",
    [
        ["sessions", "ls", "-o", "json", "--store", "{url}"],
        ["sessions", "ls", "--store={url}", "-o", "json"],
        ["sessions", "--store", "{url}", "ls", "-o", "json"],
        ["--store", "{url}", "sessions", "ls", "-o", "json"],
    ],
    ids=["after", "after-with-equals", "between", "before"],
)
def test_store_before_between_or_after_the_sub_command(runner: CliRunner, cli_url: str, args: list[str]) -> None:
    seed(cli_url, Seed("alice", ttl_policy=LONG_TTL))
    result = runner.invoke(app, [arg.replace("{url}", cli_url) for arg in args], env={"LKPERSIST_STORE": None})
    assert result.exit_code == 0, result.output
    assert _identities(result.stdout) == ["alice"]


def test_every_store_command_takes_it_after_the_sub_command(runner: CliRunner, sqlite_url: str) -> None:
    seed(sqlite_url, Seed("alice", ttl_policy=LONG_TTL))
    for args, expected in (
        (["sessions", "count"], "1\n"),
        (["sessions", "show", "alice", "-o", "json"], '"identity": "alice"'),
        (["sessions", "purge"], "nothing to purge"),
        (["encrypt", "status", "-o", "json"], '"sessions": 1'),
        (["sessions", "rm", "alice"], "removed 'alice'"),
    ):
        result = runner.invoke(app, [*args, "--store", sqlite_url], env={"LKPERSIST_STORE": None})
        assert result.exit_code == 0, (args, result.output)
        assert expected in result.stdout, (args, result.stdout)


def test_after_the_sub_command_wins_over_before_and_over_the_environment(
    runner: CliRunner, tmp_path: Path, sqlite_url: str
) -> None:
    other = f"sqlite:///{tmp_path / 'other.db'}"
    seed(sqlite_url, Seed("here", ttl_policy=LONG_TTL))
    seed(other, Seed("there", ttl_policy=LONG_TTL))
    after = runner.invoke(app, ["--store", other, "sessions", "ls", "-o", "json", "--store", sqlite_url])
    assert _identities(after.stdout) == ["here"], after.output
    env = runner.invoke(app, ["sessions", "ls", "-o", "json", "--store", sqlite_url], env={"LKPERSIST_STORE": other})
    assert _identities(env.stdout) == ["here"], env.output
    from_env = runner.invoke(app, ["sessions", "ls", "-o", "json"], env={"LKPERSIST_STORE": other})
    assert _identities(from_env.stdout) == ["there"], from_env.output


def test_key_file_after_the_sub_command(runner: CliRunner, tmp_path: Path, sqlite_url: str) -> None:
    key = generate_key()
    key_file = tmp_path / "keys"
    key_file.write_text(key + "\n", encoding="utf-8")
    env = {"LKPERSIST_ENCRYPTION_KEYS": None, "LKPERSIST_ENCRYPTION_KEY_FILE": None, "LKPERSIST_STORE": None}
    seed(sqlite_url, Seed("alice", ttl_policy=LONG_TTL, language="fr"))
    migrated = runner.invoke(app, ["encrypt", "migrate", "--store", sqlite_url, "--key-file", str(key_file)], env=env)
    assert migrated.exit_code == 0, migrated.output
    shown = runner.invoke(app, ["sessions", "show", "alice", "-o", "json", "--key-file", str(key_file),
                                "--store", sqlite_url], env=env)
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)["language"] == "fr"
    without = runner.invoke(app, ["sessions", "show", "alice", "--store", sqlite_url], env=env)
    assert without.exit_code == 3, without.output  # encrypted now: the key really came from the option


def test_the_help_of_a_sub_command_lists_them_with_their_variables(runner: CliRunner) -> None:
    result = runner.invoke(app, ["sessions", "ls", "--help"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.split())
    assert "--store URL" in text and "LKPERSIST_STORE" in text
    assert "--key-file PATH" in text and "LKPERSIST_ENCRYPTION_KEY_FILE" in text


def test_completion_offers_them_after_the_sub_command() -> None:
    assert {"--store", "--key-file", "--limit"} <= set(_bash_complete("sessions", "ls", "--"))
