"""``lkpersist audit``: audit records as a table for people, or one JSON array for scripts."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import typer
from rich.table import Table

from lkpersist.cli._output.console import print_table, stdout_console
from lkpersist.cli._output.text import iso_utc, safe_text

TABLE_CHUNK = 200
_SHOWN_IDENTITIES = 3


def write_json(records: Iterable[dict[str, Any]]) -> int:
    """One JSON array, an element per line, written as records are read; returns how many."""
    count = 0
    for record in records:
        typer.echo(("[\n  " if count == 0 else ",\n  ") + json.dumps(record, ensure_ascii=False), nl=False)
        count += 1
    typer.echo("[]" if count == 0 else "\n]")
    return count


def write_table(records: Iterable[dict[str, Any]]) -> int:
    console, count, table = stdout_console(), 0, _table()
    for record in records:
        table.add_row(*_row(record))
        count += 1
        if count % TABLE_CHUNK == 0:
            print_table(console, table)
            table = _table(header=False)
    if table.row_count:
        print_table(console, table)
    return count


def _table(header: bool = True) -> Table:
    table = Table(box=None, show_header=header, pad_edge=False)
    for name, width in (("TIME", 24), ("ACTION", 22), ("OUTCOME", 10), ("WHO", 28), ("RESULT", 28), ("IDENTITIES", None)):
        table.add_column(name, min_width=width, max_width=width, no_wrap=True, overflow="ellipsis")
    return table


def _row(record: dict[str, Any]) -> tuple[str, ...]:
    result = record.get("result") or {}
    counts = " ".join(f"{key}={value}" for key, value in result.items() if key != "outcome")
    who = f"{record.get('user')}@{record.get('host')}[{record.get('pid')}]"
    return (iso_utc(float(record["time"])), f"{record.get('component')} {record.get('action')}",
            str(result.get("outcome", "?")), safe_text(who, 28), counts, _identities(record))


def _identities(record: dict[str, Any]) -> str:
    names = [str(name) for name in record.get("identities") or []]
    if not names:
        selection = record.get("selection") or {}
        return " ".join(f"{key}={value}" for key, value in selection.items())
    shown = ", ".join(f"'{safe_text(name, 40)}'" for name in names[:_SHOWN_IDENTITIES])
    return shown + (f" (+{len(names) - _SHOWN_IDENTITIES} more)" if len(names) > _SHOWN_IDENTITIES else "")
