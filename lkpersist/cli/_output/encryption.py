"""``encrypt``: how a store's values are stored, what a migration did, and its progress bars."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from lkpersist.cli._output.progress import stderr_progress
from lkpersist.crypto.migrate import EncryptionStatus, MigrationResult


def print_status(found: EncryptionStatus, key_ids: list[str]) -> None:
    typer.echo(f"sessions       {found.sessions}")
    typer.echo(f"values         {found.values}")
    typer.echo(f"plaintext      {found.plaintext}")
    for kid, count in sorted(found.encrypted.items(), key=lambda item: -item[1]):
        role = " (encrypting key)" if key_ids and kid == key_ids[0] else ""
        typer.echo(f"encrypted      {count}  key id {kid}{role}")
    typer.echo(f"undecryptable  {found.undecryptable}")


def migration_summary(result: MigrationResult) -> str:
    verb = ("would re-encrypt" if result.dry_run else "re-encrypted") if result.rotate else (
        "would encrypt" if result.dry_run else "encrypted"
    )
    retried = f" ({result.retried} read again after agents changed them)" if result.retried else ""
    return f"{verb} {result.rewritten} of {result.values} values in {result.sessions} sessions{retried}"


@contextmanager
def encryption_progress(total: int, *labels: str) -> Iterator[list[Callable[[int], None]]]:
    """One progress bar per label on stderr when it is a terminal (stdout stays the summary alone)."""
    bars = stderr_progress(TextColumn("{task.description:<10}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    tasks = [bars.add_task(label, total=total or None) for label in labels]
    with bars:
        yield [partial(_advance, bars, task) for task in tasks]


def _advance(bars: Progress, task: TaskID, done: int) -> None:
    bars.advance(task, done)
