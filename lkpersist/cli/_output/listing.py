"""``sessions ls``: sessions printed as they arrive from the store.

Listings stream: the table is printed in chunks of :data:`TABLE_CHUNK` rows with fixed column widths
(the identity, whose width cannot be known in advance, is the last column, as ``ps`` puts COMMAND last),
``-o json`` writes one array element per line as it arrives, ``-o ndjson`` one object per line, flushed.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Protocol

import typer
from rich.table import Table
from rich.text import Text

from lkpersist.cli._output.console import print_table, stdout_console
from lkpersist.cli._output.formats import ListFormat
from lkpersist.cli._output.text import (
    expires_cell,
    identity_cell,
    iso_utc,
    quoted,
    relative,
    safe_text,
    status_of,
)
from lkpersist.cli._runner import stderr_console
from lkpersist.model.results import CorruptRecord
from lkpersist.model.session import Session

TABLE_CHUNK = 200
IDENTITY_WIDTH = 64
LANGUAGE_WIDTH = 8


class _Writer(Protocol):
    def add(self, session: Session) -> None: ...

    def close(self) -> None: ...


@dataclass
class ListingResult:
    """What a listing printed; ``corrupt`` names the records that could not be decoded."""

    listed: int = 0
    corrupt: list[CorruptRecord] = field(default_factory=list)


async def write_listing(
    items: AsyncIterator[Session | CorruptRecord],
    output: ListFormat,
    *,
    now: float,
    limit: int | None,
    empty_message: str,
) -> ListingResult:
    """Print sessions as they arrive; report each corrupt record on stderr and carry on."""
    writer = _writer_for(output, now)
    result = ListingResult()
    try:
        async for item in items:
            if isinstance(item, CorruptRecord):
                result.corrupt.append(item)
                report_corrupt(item)
                continue
            writer.add(item)
            result.listed += 1
            if limit is not None and result.listed >= limit:
                break
    finally:
        await _close_stream(items)
    writer.close()
    if result.listed == 0 and output is ListFormat.table:
        stderr_console().print(empty_message, markup=False)
    return result


async def _close_stream(items: AsyncIterator[object]) -> None:
    """Stop the store's page generator now (after ``--limit``) rather than whenever it is collected."""
    closer = getattr(items, "aclose", None)
    if closer is not None:
        await closer()


def report_corrupt(record: CorruptRecord) -> None:
    stderr_console().print(
        f"error: corrupt session record {quoted(record.identity)}: {safe_text(record.reason, 200)}",
        markup=False,
    )


def _writer_for(output: ListFormat, now: float) -> _Writer:
    if output is ListFormat.json:
        return _JsonArrayWriter()
    if output is ListFormat.ndjson:
        return _NdjsonWriter()
    return _TableWriter(now)


class _NdjsonWriter:
    """One object per line, flushed at once so a consumer sees each session as it is read."""

    def add(self, session: Session) -> None:
        typer.echo(json.dumps(session.to_dict(), ensure_ascii=False))

    def close(self) -> None:
        """Nothing is buffered."""


class _JsonArrayWriter:
    """One JSON array, written element by element (one per line) instead of built in memory."""

    def __init__(self) -> None:
        self._count = 0

    def add(self, session: Session) -> None:
        lead = "[\n  " if self._count == 0 else ",\n  "
        typer.echo(lead + json.dumps(session.to_dict(), ensure_ascii=False), nl=False)
        self._count += 1

    def close(self) -> None:
        typer.echo("[]" if self._count == 0 else "\n]")


class _TableWriter:
    """Rows are printed every TABLE_CHUNK sessions with fixed widths, so the chunks line up."""

    _HEADERS = (("STATUS", 12), ("LAST SEEN (UTC)", 20), ("AGE", 9), ("RECONNECTS", 10), ("TURNS", 5),
                ("LANG", LANGUAGE_WIDTH), ("EXPIRES", 10))

    def __init__(self, now: float) -> None:
        self._now = now
        self._console = stdout_console()
        self._rows: list[tuple[Text, ...]] = []
        self._printed_header = False

    def add(self, session: Session) -> None:
        self._rows.append(self._row(session))
        if len(self._rows) >= TABLE_CHUNK:
            self._flush()

    def close(self) -> None:
        if self._rows:
            self._flush()

    def _row(self, session: Session) -> tuple[Text, ...]:
        now = self._now
        cells = (
            status_of(session, now),
            iso_utc(session.last_seen),
            relative(session.last_seen, now),
            str(session.reconnect_count),
            "-" if session.turn_count is None else str(session.turn_count),
            safe_text(session.language or "-", LANGUAGE_WIDTH),
            expires_cell(session, now),
            identity_cell(session.identity, IDENTITY_WIDTH),
        )
        return tuple(Text(cell) for cell in cells)

    def _flush(self) -> None:
        table = Table(box=None, pad_edge=False, show_header=not self._printed_header, header_style="bold")
        for title, width in self._HEADERS:
            table.add_column(title, width=width, no_wrap=True, overflow="ellipsis")
        table.add_column("IDENTITY", no_wrap=True, overflow="ellipsis")
        for row in self._rows:
            table.add_row(*row)
        print_table(self._console, table)
        self._printed_header = True
        self._rows.clear()
