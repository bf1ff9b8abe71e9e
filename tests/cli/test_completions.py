"""The committed completion scripts are current, and completing through them reaches the real app."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lkpersist.cli._completions import DEFAULT_DIR, SHELLS, script_path, write_completions

BASH = shutil.which("bash")


@pytest.mark.parametrize("shell", SHELLS)
def test_committed_completions_are_current(shell: str, tmp_path: Path) -> None:
    write_completions(tmp_path)
    committed = script_path(DEFAULT_DIR, shell)
    assert committed.exists(), f"{committed} missing: run python -m lkpersist.cli._completions"
    assert committed.read_text(encoding="utf-8") == script_path(tmp_path, shell).read_text(encoding="utf-8"), (
        f"{committed} is stale: run python -m lkpersist.cli._completions and commit completions/"
    )


def test_zsh_script_starts_with_compdef() -> None:
    assert script_path(DEFAULT_DIR, "zsh").read_text(encoding="utf-8").startswith("#compdef lkpersist\n")


def _bash_complete(*words: str) -> list[str]:
    """Source the committed bash script and complete ``words`` (the last one is being typed)."""
    assert BASH is not None, "bash is needed to test the bash completion script"
    script = script_path(DEFAULT_DIR, "bash")
    words_array = " ".join(f"'{w}'" for w in ("lkpersist", *words))
    program = (f"source '{script}'; COMP_WORDS=({words_array}); COMP_CWORD={len(words)}; "
               "_lkpersist_completion lkpersist; printf '%s\\n' \"${COMPREPLY[@]}\"")
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    done = subprocess.run([BASH, "--norc", "-c", program], check=False, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PATH": path})
    assert done.returncode == 0, done.stderr
    return [line for line in done.stdout.splitlines() if line]


def test_bash_completes_commands_and_choices() -> None:
    assert {"ls", "show", "rm", "purge", "count"} <= set(_bash_complete("sessions", ""))
    assert "sessions" in _bash_complete("")
    assert _bash_complete("sessions", "ls", "-o", "") == ["table", "json", "ndjson"]
    assert {"--older-than", "--dry-run", "--quiet"} <= set(_bash_complete("sessions", "purge", "--"))


def test_bash_script_parses() -> None:
    assert BASH is not None
    done = subprocess.run([BASH, "-n", str(script_path(DEFAULT_DIR, "bash"))], check=False, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
