"""Rendering for the CLI: rich tables for people, JSON for scripts.

Human output shows times as ISO-8601 UTC (``2027-01-15T08:00:00Z``) with a relative age beside them;
JSON keeps epoch seconds exactly as :meth:`lkpersist.model.session.Session.to_dict` gives them, so a script
never parses a display format. Identities are untrusted text: in tables every control character (and
the backslash) is escaped and long ones are cut with an ellipsis; JSON carries them exactly.

Listings stream: the table is printed in chunks of :data:`TABLE_CHUNK` rows with fixed column widths
(the identity, whose width cannot be known in advance, is the last column, as ``ps`` puts COMMAND last),
``-o json`` writes one array element per line as it arrives, ``-o ndjson`` one object per line, flushed.
"""

from __future__ import annotations

import json
import os
import re
import sys
import unicodedata
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from typing import Any, Protocol

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from lkpersist.cli._runner import err_console
from lkpersist.durations import format_duration
from lkpersist.model.results import CorruptRecord, PurgeResult
from lkpersist.model.session import Session, Turn

TABLE_CHUNK = 200
IDENTITY_WIDTH = 64
SHOW_IDENTITY_WIDTH = 512
LANGUAGE_WIDTH = 8
_WIDE_PIPE = 1000  # when stdout is not a terminal, tables keep their natural width (no squeezing)


class ListFormat(str, Enum):
    """Output of ``sessions ls``."""

    table = "table"
    json = "json"
    ndjson = "ndjson"


class ShowFormat(str, Enum):
    """Output of ``sessions show``."""

    table = "table"
    json = "json"


class SummaryFormat(str, Enum):
    """Output of one-line commands (``purge``, ``count``)."""

    text = "text"
    json = "json"


# --- text helpers -----------------------------------------------------------------------------------


def iso_utc(timestamp: float) -> str:
    """``2027-01-15T08:00:00Z``: the one human time format."""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def relative(timestamp: float, now: float) -> str:
    """``3m ago`` / ``in 4m12s``, at most two units so the column stays narrow."""
    delta = timestamp - now
    span = "".join(re.findall(r"\d+[dhms]", format_duration(abs(delta)))[:2])
    return f"in {span}" if delta > 0.5 else f"{span} ago"


def safe_text(text: str, limit: int | None = None, *, keep_newlines: bool = False) -> str:
    """``text`` made harmless for a terminal: control and format characters escaped, cut at ``limit``."""
    escaped = "".join(_escape_char(ch, keep_newlines) for ch in text)
    if limit is not None and len(escaped) > limit:
        return escaped[: limit - 1] + "…"
    return escaped


def quoted(identity: str) -> str:
    """An identity for a one-line message: escaped, quoted, at most about a line long."""
    return f"'{safe_text(identity, 80)}'"


def _escape_char(ch: str, keep_newlines: bool) -> str:
    if ch == "\\":
        return "\\\\"
    if keep_newlines and ch in "\n\t":
        return ch
    if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp"):
        return ch.encode("unicode_escape").decode("ascii")
    return ch


def status_of(session: Session, now: float) -> str:
    """``connected``, ``disconnected`` (counting down) or ``expired``."""
    if session.is_expired(now):
        return "expired"
    return "connected" if session.connected else "disconnected"


def _expires_cell(session: Session, now: float) -> str:
    if session.connected and not session.is_expired(now):
        return "-"
    return relative(session.deadline, now)


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


# --- listings -----------------------------------------------------------------------------------------


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
        err_console.print(empty_message, markup=False)
    return result


async def _close_stream(items: AsyncIterator[object]) -> None:
    """Stop the store's page generator now (after ``--limit``) rather than whenever it is collected."""
    closer = getattr(items, "aclose", None)
    if closer is not None:
        await closer()


def report_corrupt(record: CorruptRecord) -> None:
    err_console.print(
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

    _HEADERS = (("STATUS", 12), ("LAST SEEN (UTC)", 20), ("AGE", 9), ("RECONNECTS", 10),
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
            safe_text(session.language or "-", LANGUAGE_WIDTH),
            _expires_cell(session, now),
            safe_text(session.identity, IDENTITY_WIDTH),
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


# --- one session --------------------------------------------------------------------------------------


def session_document(session: Session, turns: list[Turn] | None) -> dict[str, Any]:
    """``show -o json``: the session's stable dict, plus ``turns`` (oldest first) when they were asked for."""
    document = session.to_dict()
    if turns is not None:
        document["turns"] = [turn.to_dict() for turn in turns]
    return document


def print_session(session: Session, turns: list[Turn] | None, now: float) -> None:
    """``show`` for people: the fields as a two-column table, then the turns when asked for."""
    console = stdout_console()
    print_table(console, _fields_table(session, now))
    if turns is not None:
        typer.echo("")
        print_table(console, _turns_table(turns))


def _fields_table(session: Session, now: float) -> Table:
    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    expires = "- (while connected)" if session.connected and not session.is_expired(now) else (
        f"{iso_utc(session.deadline)} ({relative(session.deadline, now)})"
    )
    rows = (
        ("identity", safe_text(session.identity, SHOW_IDENTITY_WIDTH)),
        ("status", status_of(session, now)),
        ("joined", f"{iso_utc(session.joined_at)} ({relative(session.joined_at, now)})"),
        ("last seen", f"{iso_utc(session.last_seen)} ({relative(session.last_seen, now)})"),
        ("reconnects", str(session.reconnect_count)),
        ("language", safe_text(session.language or "-", 64)),
        ("expires", expires),
        ("ttl", format_duration(session.ttl)),
        ("metadata", _compact_json(session.metadata)),
        ("context", _compact_json(session.context)),
    )
    for name, value in rows:
        table.add_row(Text(name), Text(value))
    return table


def _turns_table(turns: list[Turn]) -> Table:
    table = Table(box=None, pad_edge=False, header_style="bold")
    table.add_column("TIME (UTC)", no_wrap=True)
    table.add_column("ROLE", no_wrap=True)
    table.add_column("TEXT", overflow="fold")
    for turn in turns:
        table.add_row(
            Text(iso_utc(turn.timestamp)), Text(safe_text(turn.role, 16)), Text(safe_text(turn.text, keep_newlines=True))
        )
    if not turns:
        table.caption = "no turns recorded"
    return table


def _compact_json(value: dict[str, Any]) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True) if value else "{}"


# --- summaries ----------------------------------------------------------------------------------------


def purge_summary(result: PurgeResult, older_than: float | None) -> str:
    """``purged 12 expired sessions`` / ``would purge ... (dry run)`` / ``nothing to purge: ...``."""
    def what(count: int) -> str:
        noun = "session" if count == 1 else "sessions"
        if older_than is None:
            return f"expired {noun}"
        return f"{noun} expired or last seen more than {format_duration(older_than)} ago"

    suffix = " (dry run)" if result.dry_run else ""
    if result.purged == 0:
        return f"nothing to purge: no {what(0)}{suffix}"
    verb = "would purge" if result.dry_run else "purged"
    return f"{verb} {result.purged} {what(result.purged)}{suffix}"


def purge_document(result: PurgeResult, older_than: float | None) -> dict[str, Any]:
    return {"purged": result.purged, "dry_run": result.dry_run, "older_than": older_than}


def silence_broken_pipe() -> None:
    """After the reader of stdout went away (``ls | head``): stop writing without a traceback.

    Pointing stdout at /dev/null keeps Python's final flush from raising again at exit.
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass
