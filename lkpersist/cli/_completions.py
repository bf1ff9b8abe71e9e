"""Generate the committed shell completion scripts in ``completions/`` from the real app.

Run after any CLI change (a test fails while the committed files are stale)::

    python -m lkpersist.cli._completions            # writes completions/lkpersist.{bash,zsh,fish}
    python -m lkpersist.cli._completions OUTDIR     # writes them somewhere else

Each script is what the installed program prints for ``_LKPERSIST_COMPLETE=source_<shell> lkpersist``:
a small shell function that calls back into ``lkpersist`` for every completion, so new sub-commands and
options complete without regenerating (the scripts only change when Typer changes its templates).
"""

from __future__ import annotations

import sys
from pathlib import Path

from typer.testing import CliRunner

PROG_NAME = "lkpersist"
COMPLETE_VAR = "_LKPERSIST_COMPLETE"
SHELLS = ("bash", "zsh", "fish")
DEFAULT_DIR = Path(__file__).resolve().parents[2] / "completions"


def completion_script(shell: str) -> str:
    """The script the real app prints for ``shell``, ending with one newline."""
    from lkpersist.cli import app

    result = CliRunner().invoke(app, [], prog_name=PROG_NAME, env={COMPLETE_VAR: f"source_{shell}"})
    if result.exit_code != 0 or not result.stdout.strip():
        raise RuntimeError(f"no {shell} completion script from {PROG_NAME}: {result.output!r}")
    # strip: zsh autoloads a file from fpath only when its first line is "#compdef ..."
    return result.stdout.strip() + "\n"


def script_path(directory: Path, shell: str) -> Path:
    return directory / f"{PROG_NAME}.{shell}"


def write_completions(directory: Path = DEFAULT_DIR) -> list[Path]:
    """Write one script per shell into ``directory``; return the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for shell in SHELLS:
        path = script_path(directory, shell)
        path.write_text(completion_script(shell), encoding="utf-8")
        written.append(path)
    return written


def main(argv: list[str]) -> None:
    directory = Path(argv[0]) if argv else DEFAULT_DIR
    for path in write_completions(directory):
        print(path)


if __name__ == "__main__":
    main(sys.argv[1:])
