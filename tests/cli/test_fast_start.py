"""Completion and ``sessions`` stay instant: what those paths must NOT import, checked in real processes.

Not a timed test (times vary with the machine); the README has the measured figures. A Tab press runs
the whole program, so the heavy modules — livekit, cryptography, redis, rich, asyncio, pydantic (typer
0.29 builds pydantic adapters for every option) — and the other sub-commands' modules must stay out.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from lkpersist.cli import COMMANDS, app
from lkpersist.cli._lazy import LazyGroup
from tests.cli.conftest import Seed, seed

HEAVY = ("livekit", "cryptography", "redis", "hiredis", "rich", "pydantic", "asyncio", "markdown_it", "platformdirs")
OTHER_COMMANDS = tuple(COMMANDS[name].module for name in COMMANDS if name != "sessions")

_RECORD_MODULES = textwrap.dedent("""
    import atexit, json, sys
    out = sys.argv[1]
    atexit.register(lambda: open(out, "w").write(json.dumps(sorted(sys.modules))))
    sys.argv = ["lkpersist", *sys.argv[2:]]
    from lkpersist.cli import main
    main()
""")


def _modules_loaded(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> set[str]:
    """Run the real program with ``args`` and return every module it had imported when it exited."""
    out = tmp_path / "modules.json"
    done = subprocess.run([sys.executable, "-c", _RECORD_MODULES, str(out), *args], capture_output=True, text=True,
                          timeout=60, check=False, env={**os.environ, **(env or {})})
    assert done.returncode in (0, 2), done.stderr[-2000:]
    return set(json.loads(out.read_text()))


def _heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in HEAVY)


def _complete_env(*words: str) -> dict[str, str]:
    """What the committed bash script sets for a Tab press after ``lkpersist WORDS``."""
    line = " ".join(("lkpersist", *words))
    return {"_LKPERSIST_COMPLETE": "complete_bash", "COMP_WORDS": line, "COMP_CWORD": str(len(words))}


@pytest.fixture
def default_sqlite(tmp_path: Path) -> dict[str, str]:
    url = f"sqlite:///{tmp_path / 'sessions.db'}"
    seed(url, Seed("alice"))
    return {"LKPERSIST_STORE": url}


def test_sessions_help_imports_nothing_heavy(tmp_path: Path, default_sqlite: dict[str, str]) -> None:
    modules = _modules_loaded(tmp_path, "sessions", "--help", env=default_sqlite)
    assert "lkpersist.cli.sessions" in modules
    assert _heavy(modules) == []
    assert not modules & {*OTHER_COMMANDS, "lkpersist.stores.base", "lkpersist.stores.sqlite"}


@pytest.mark.parametrize("words", [("sessions", "ls", "--"), ("sessions", ""), ("run", ""), ("",)],
                         ids=["option", "sub-command", "run-mode", "command"])
def test_a_tab_press_imports_nothing_heavy(tmp_path: Path, default_sqlite: dict[str, str], words: tuple[str, ...]) -> None:
    modules = _modules_loaded(tmp_path, env={**default_sqlite, **_complete_env(*words)})
    assert _heavy(modules) == []
    named = words[0] if len(words) > 1 else None
    assert {COMMANDS[name].module for name in COMMANDS if name != named}.isdisjoint(modules)


def test_root_help_lists_every_command_without_importing_them(tmp_path: Path) -> None:
    modules = _modules_loaded(tmp_path, "--help")
    assert {command.module for command in COMMANDS.values()}.isdisjoint(modules)
    assert _heavy(modules) == []


def test_listing_a_sqlite_store_loads_neither_redis_nor_cryptography_nor_livekit(
    tmp_path: Path, default_sqlite: dict[str, str]
) -> None:
    modules = _modules_loaded(tmp_path, "sessions", "ls", env=default_sqlite)
    assert "lkpersist.stores.sqlite" in modules
    assert [m for m in _heavy(modules) if m.split(".")[0] in ("livekit", "cryptography", "redis", "pydantic")] == []


@pytest.mark.parametrize("name", list(COMMANDS))
def test_each_registered_summary_is_the_command_s_own_first_sentence(name: str) -> None:
    """Listings show the registry's summary instead of importing the module: it must not drift from it."""
    import typer.main

    group = typer.main.get_command(app)
    assert isinstance(group, LazyGroup)
    real = group._load(name)
    assert " ".join((real.help or "").split()).startswith(COMMANDS[name].summary), (name, real.help)


def test_a_mistyped_command_is_still_matched_against_every_registered_one() -> None:
    """Sub-commands not imported yet are still suggested (the group knows them by their registration)."""
    from typer.testing import CliRunner

    result = CliRunner().invoke(app, ["sesions", "ls"])
    assert result.exit_code == 2
    assert "No such command 'sesions'. Did you mean 'sessions'?" in result.stderr
