"""``lkpersist audit``: read the audit log (``LKPERSIST_AUDIT_LOG``, or ``--file``).

Records at or after ``--since`` naming ``--identity`` (hashed first when the records hold keyed hashes),
oldest first. A line that is not a record is named on stderr with its number and skipped (then exit 1).
Exit codes: 0 ok, 1 bad lines met, 2 usage (no audit file configured, syslog), 3 the file cannot be read.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated, Any

import typer

from lkpersist.cli._audit import audit_hasher_of
from lkpersist.cli._options import checked_identity, duration_seconds
from lkpersist.cli._output.formats import ShowFormat
from lkpersist.cli._runner import fail

if TYPE_CHECKING:
    from lkpersist.audit.reader import BadLine

app = typer.Typer()


@app.command("audit")
def audit(
    ctx: typer.Context,
    since: Annotated[str | None, typer.Option("--since", metavar="DURATION", help="Only records this recent (1d, 2h).")] = None,
    identity: Annotated[str | None, typer.Option("--identity", "-i", metavar="ID", help="Only records naming this identity.")] = None,
    file: Annotated[str | None, typer.Option("--file", help="The audit file (default: $LKPERSIST_AUDIT_LOG).")] = None,
    output: Annotated[ShowFormat, typer.Option("--output", "-o", help="table or json.")] = ShowFormat.table,
) -> None:
    """Show who accessed which sessions' personal data, when, and with what outcome.

    Reads the file LKPERSIST_AUDIT_LOG names (or --file); -o json for one array. Exit 1 when a line is not a record.
    """
    import time

    from lkpersist.audit import AuditWriteError
    from lkpersist.audit.reader import read_records
    from lkpersist.cli._output.audit import write_json, write_table

    seconds = duration_seconds(since)
    if identity is not None:
        checked_identity(identity)
    path = file or _configured_file()
    hasher = audit_hasher_of(ctx) if identity is not None else None
    bad: list[BadLine] = []
    records = read_records(path, since=None if seconds is None else time.time() - seconds, identity=identity,
                           hasher=hasher)
    try:
        shown = (write_json if output is ShowFormat.json else write_table)(_good(records, bad))
    except AuditWriteError as exc:
        fail(str(exc), 3)
    if shown == 0 and output is ShowFormat.table:
        typer.echo("no audit records", err=True)
    if bad:
        raise typer.Exit(1)


def _configured_file() -> str:
    from lkpersist.audit import ENV_AUDIT_LOG, SYSLOG

    where = os.environ.get(ENV_AUDIT_LOG, "").strip()
    if not where:
        fail(f"no audit log: set {ENV_AUDIT_LOG}=PATH (or give --file)", 2)
    if where == SYSLOG:
        fail("the audit log goes to syslog: read it with `journalctl -t lkpersist-audit` (or give --file)", 2)
    return where


def _good(records: Iterator[dict[str, Any] | BadLine], bad: list[BadLine]) -> Iterator[dict[str, Any]]:
    from lkpersist.audit.reader import BadLine

    for record in records:
        if isinstance(record, BadLine):
            bad.append(record)
            typer.echo(f"error: line {record.line}: {record.reason}", err=True)
        else:
            yield record


__all__ = ["app", "audit"]
