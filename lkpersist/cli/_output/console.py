"""Writing to stdout: a console that does not squeeze pipes, tables without trailing padding, JSON, and
stopping quietly when the reader of stdout went away."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

_WIDE_PIPE = 1000  # when stdout is not a terminal, tables keep their natural width (no squeezing)


def stdout_console() -> Console:
    """A console for stdout: the terminal's width on a TTY, no squeezing when piped."""
    console = Console(highlight=False, soft_wrap=False)
    if not console.is_terminal:
        console = Console(highlight=False, soft_wrap=False, width=_WIDE_PIPE)
    return console


def print_table(console: Console, table: Table) -> None:
    """Print ``table`` without the padding rich leaves at the end of each line (noise in pipes and diffs)."""
    with console.capture() as captured:
        console.print(table)
    typer.echo("\n".join(line.rstrip() for line in captured.get().splitlines()))


def echo_json(document: Any) -> None:
    """One JSON document on stdout; non-ASCII kept readable, control characters escaped by json."""
    typer.echo(json.dumps(document, ensure_ascii=False))


def silence_broken_pipe() -> None:
    """After the reader of stdout went away (``ls | head``): stop writing without a traceback.

    Pointing stdout at /dev/null keeps Python's final flush from raising again at exit.
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass
