"""``lkpersist sessions export`` and ``sessions import``: sessions with their turns, in and out of a store.

The work is in :mod:`lkpersist.transfer`; these commands parse, call it, show a progress bar on a
terminal (stderr) and print one summary line. Exit codes: 0 done; 1 something asked for did not hold
(an identity not found, a bad line in the file); 2 usage (a file that is not an export, bad options);
3 the store is unusable, a stored record could not be read, or the audit log could not be written.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, BinaryIO, TextIO

import typer

from lkpersist.cli._audit import AuditResult, audited
from lkpersist.cli._options import checked_identity
from lkpersist.cli._output.formats import ExportFormat, SummaryFormat
from lkpersist.cli._runner import fail, run_with_store

if TYPE_CHECKING:
    from lkpersist.model.results import CorruptRecord
    from lkpersist.model.session import Status
    from lkpersist.model.transfer import ConflictRule, SessionRecord
    from lkpersist.stores.base import SessionStore
    from lkpersist.transfer.export import ExportResult
    from lkpersist.transfer.import_ import ImportResult

PERSONAL_DATA_NOTE = (
    "note: the export holds personal data (conversation text, metadata, context) in plaintext, "
    "decrypted with the configured keys; protect it like the store"
)


class StatusChoice(str, Enum):
    active = "active"
    expired = "expired"
    all = "all"


class ConflictChoice(str, Enum):
    skip = "skip"
    merge = "merge"
    replace_ = "replace"  # a member named replace would shadow str.replace


def export(
    ctx: typer.Context,
    identities: Annotated[
        list[str] | None,
        typer.Option("--identity", "-i", metavar="ID", help="Only this identity (repeat for several; exact)."),
    ] = None,
    status: Annotated[StatusChoice, typer.Option("--status", help="Which sessions: active, expired or all.")] = (
        StatusChoice.active
    ),
    file: Annotated[
        Path | None, typer.Option("--file", "-f", help="Write here (mode 0600, complete or not at all) instead of stdout.")
    ] = None,
    fmt: Annotated[
        ExportFormat,
        typer.Option("--format", help="ndjson (versioned, for import) or chat-ctx (one identity's turns for "
                     "livekit-agents' ChatContext.from_dict)."),
    ] = ExportFormat.ndjson,
) -> None:
    """Write sessions with their turns as versioned NDJSON (a header line, then one session per line).

    Streams in bounded memory. Connected sessions are written as disconnected: a participant connected here is not connected where the file is imported.

    The file holds personal data in plaintext, even from an encrypted store.
    """
    chosen = [checked_identity(identity) for identity in identities or []]
    if fmt is ExportFormat.chat_ctx and len(chosen) != 1:
        fail("--format chat-ctx exports one session: give exactly one --identity", 2)
    selection = {"status": status.value, "format": fmt.value, **({"file": str(file)} if file else {})}
    with audited(ctx, "sessions export", identities=chosen, selection=selection) as audit:
        if fmt is ExportFormat.chat_ctx:
            _export_chat_ctx(ctx, chosen[0], status.value, file, audit)
            return
        try:
            result = _export_ndjson(ctx, chosen or None, status.value, file)
        except BrokenPipeError:  # the reader of stdout went away (``export | head``): stop, as ls does
            from lkpersist.cli._output.console import silence_broken_pipe

            silence_broken_pipe()
            audit.outcome = "stopped"
            raise typer.Exit(0) from None
        audit.counts = {"sessions": result.sessions, "turns": result.turns}
        _report_export(result, file)


def _export_ndjson(ctx: typer.Context, identities: list[str] | None, status: Status, file: Path | None) -> ExportResult:
    from lkpersist.crypto.codec import PLAIN, PLAIN_GUARD
    from lkpersist.transfer.export import export_sessions

    async def work(store: SessionStore) -> ExportResult:
        if store.codec not in (PLAIN, PLAIN_GUARD):  # encrypted at rest: the export is not
            typer.echo(PERSONAL_DATA_NOTE, err=True)
        total = len(identities) if identities is not None else await store.count(status)
        with _sessions_bar(total) as advance, _output(file) as out:
            return await export_sessions(store, out, status=status, identities=identities, progress=advance)

    return run_with_store(ctx, work, create=False)


def _export_chat_ctx(ctx: typer.Context, identity: str, status: Status, file: Path | None, audit: AuditResult) -> None:
    import json

    from lkpersist.cli._output.listing import report_corrupt
    from lkpersist.cli._output.text import quoted
    from lkpersist.model.results import CorruptRecord
    from lkpersist.transfer.export import one_record
    from lkpersist.transfer.format import chat_ctx_document

    async def work(store: SessionStore) -> SessionRecord | CorruptRecord | None:
        return await one_record(store, identity, status)

    record = run_with_store(ctx, work, create=False)
    if record is None:
        audit.outcome = "not_found"
        fail(f"no {status} session {quoted(identity)}", 1)
    if isinstance(record, CorruptRecord):
        report_corrupt(record)
        raise typer.Exit(3)
    document = chat_ctx_document(record)
    audit.counts = {"sessions": 1, "turns": len(document["items"])}
    with _output(file) as out:
        out.write(json.dumps(document, ensure_ascii=False) + "\n")


def _report_export(result: ExportResult, file: Path | None) -> None:
    from lkpersist.cli._output.listing import report_corrupt
    from lkpersist.cli._output.text import counted, quoted

    for record in result.corrupt:
        report_corrupt(record)
    for identity in result.missing:
        typer.echo(f"error: session not found: {quoted(identity)}", err=True)
    where = f" to {file}" if file else ""
    typer.echo(f"exported {counted(result.sessions, 'session')} ({counted(result.turns, 'turn')}){where}", err=True)
    if result.corrupt:
        raise typer.Exit(3)
    if result.missing:
        raise typer.Exit(1)


@contextmanager
def _output(file: Path | None) -> Iterator[TextIO]:
    """stdout, or a temporary file beside ``file`` renamed over it only once complete (mode 0600)."""
    import os
    import sys
    import tempfile

    if file is None:
        yield sys.stdout
        sys.stdout.flush()
        return
    try:
        fd, temporary = tempfile.mkstemp(prefix=f".{file.name}.", dir=file.parent or Path("."))
    except OSError as exc:
        fail(f"cannot write {str(file)!r}: {exc.strerror or exc}", 2)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            yield out
        os.replace(temporary, file)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def import_(
    ctx: typer.Context,
    source: Annotated[str, typer.Argument(metavar="FILE", help="An export file, or - for stdin.")] = "-",
    on_conflict: Annotated[
        ConflictChoice,
        typer.Option("--on-conflict", help="When a live session exists: skip it, merge into it, or replace it."),
    ] = ConflictChoice.merge,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would happen; write nothing.")] = False,
    strict: Annotated[bool, typer.Option("--strict", help="Stop at the first bad line (what came before is imported).")] = False,
    output: Annotated[SummaryFormat, typer.Option("--output", "-o", help="text (one line) or json.")] = SummaryFormat.text,
) -> None:
    """Read an export into the store, each session written whole; importing a file twice changes nothing.

    merge (default): earliest joined_at, latest last_seen, larger counts (never added), the file's language and metadata/context keys win, turns merged by item id.

    A bad line is reported with its number and skipped (exit 1 at the end), or stops the import with --strict.
    """
    with audited(ctx, "sessions import", selection={"file": source, "on_conflict": on_conflict.value,
                                                     "dry_run": dry_run}) as audit:
        result = _run_import(ctx, source, on_conflict.value, dry_run, strict)
        audit.counts = {key: int(value) for key, value in result.outcomes.items()} | {"bad_lines": result.bad_lines}
        if output is SummaryFormat.json:
            from lkpersist.cli._output.console import echo_json

            echo_json(result.to_dict())
        else:
            typer.echo(_import_summary(result))
        if result.failed:
            raise typer.Exit(3)
        if result.bad_lines:
            raise typer.Exit(1)


def _run_import(ctx: typer.Context, source: str, rule: ConflictRule, dry_run: bool, strict: bool) -> ImportResult:
    from lkpersist.transfer.format import FormatError
    from lkpersist.transfer.import_ import import_sessions

    def report(message: str) -> None:
        typer.echo(f"error: {message}", err=True)

    async def work(store: SessionStore) -> ImportResult:
        with _input(source) as (lines, size), _bytes_bar(size) as advance:
            return await import_sessions(
                store, lines, on_conflict=rule, dry_run=dry_run, strict=strict, progress=advance, on_problem=report
            )

    try:
        return run_with_store(ctx, work)
    except FormatError as exc:  # the header: not a file this command can read at all
        fail(str(exc), 2)


@contextmanager
def _input(source: str) -> Iterator[tuple[BinaryIO, int | None]]:
    """The file (or stdin) in binary: lines are decoded one by one, so bad bytes are one bad line."""
    import os
    import sys

    if source == "-":
        yield sys.stdin.buffer, None
        return
    try:
        handle = open(source, "rb")  # noqa: SIM115 -- closed below
        size = os.fstat(handle.fileno()).st_size
    except OSError as exc:
        fail(f"cannot read {source!r}: {exc.strerror or exc}", 2)
    with handle:
        yield handle, size


def _import_summary(result: ImportResult) -> str:
    from lkpersist.cli._output.text import counted

    verb = "would import" if result.dry_run else "imported"
    parts = ", ".join(f"{count} {outcome}" for outcome, count in sorted(result.outcomes.items()))
    bad = f"; {counted(result.bad_lines, 'bad line')}" if result.bad_lines else ""
    stopped = f"; stopped at line {result.stopped_at} (--strict)" if result.stopped_at else ""
    return f"{verb} {counted(result.sessions, 'session')} ({parts or 'none'}){bad}{stopped}"


@contextmanager
def _sessions_bar(total: int) -> Iterator[Callable[[int], None]]:
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn

    from lkpersist.cli._output.progress import stderr_progress

    bars = stderr_progress(TextColumn("exporting"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    task = bars.add_task("export", total=total or None)
    with bars:
        yield lambda done: bars.advance(task, done)


@contextmanager
def _bytes_bar(size: int | None) -> Iterator[Callable[[int], None]]:
    from rich.progress import BarColumn, DownloadColumn, TextColumn, TimeElapsedColumn

    from lkpersist.cli._output.progress import stderr_progress

    bars = stderr_progress(TextColumn("importing"), BarColumn(), DownloadColumn(), TimeElapsedColumn())
    task = bars.add_task("import", total=size)
    with bars:
        yield lambda done: bars.advance(task, done)


__all__ = ["export", "import_"]
