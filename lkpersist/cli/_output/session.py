"""``sessions show``: one session's fields, its live connections and devices, and its turns when asked for."""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.table import Table
from rich.text import Text

from lkpersist.cli._output.console import print_table, stdout_console
from lkpersist.cli._output.text import identity_cell, iso_utc, relative, safe_text, status_of
from lkpersist.durations import format_duration
from lkpersist.model.analytics import SessionCounters
from lkpersist.model.session import Session, Turn

SHOW_IDENTITY_WIDTH = 512


def counters_of(session: Session, counters: SessionCounters | None) -> SessionCounters | None:
    """The counters when they are this session's: a store can still hold those of an earlier session of
    the identity (Redis keeps them until the analytics retention; an import may replace the session
    they counted), which began at another time."""
    if counters is None or round(counters.joined_at * 1000) != round(session.joined_at * 1000):
        return None
    return counters


def session_document(
    session: Session, turns: list[Turn] | None, counters: SessionCounters | None = None
) -> dict[str, Any]:
    """``show -o json``: the session's stable dict and its event counters (``events``, null when the
    store kept none), plus ``turns`` (oldest first) when they were asked for."""
    document = session.to_dict()
    document["events"] = None if counters is None else {
        "connections": counters.connections, "returns": counters.returns, "turns": counters.turns}
    if turns is not None:
        document["turns"] = [turn.to_dict() for turn in turns]
    return document


def print_session(
    session: Session, turns: list[Turn] | None, now: float, counters: SessionCounters | None = None
) -> None:
    """``show`` for people: the fields as a two-column table, then the turns when asked for."""
    console = stdout_console()
    print_table(console, _fields_table(session, now, counters))
    typer.echo("")
    print_table(console, _connections_table(session, now))
    if session.devices:
        typer.echo("")
        print_table(console, _devices_table(session, now))
    if turns is not None:
        typer.echo("")
        print_table(console, _turns_table(turns))


def _fields_table(session: Session, now: float, counters: SessionCounters | None) -> Table:
    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    expires = "- (while connected)" if session.connected and not session.is_expired(now) else (
        f"{iso_utc(session.deadline)} ({relative(session.deadline, now)})"
    )
    rows = (
        ("identity", identity_cell(session.identity, SHOW_IDENTITY_WIDTH)),
        ("status", status_of(session, now)),
        ("joined", f"{iso_utc(session.joined_at)} ({relative(session.joined_at, now)})"),
        ("last seen", f"{iso_utc(session.last_seen)} ({relative(session.last_seen, now)})"),
        ("reconnects", str(session.reconnect_count)),
        ("visit", f"{session.visit} (greeted)" if session.greeted_visit >= session.visit else str(session.visit)),
        ("turns", "-" if session.turn_count is None else f"{session.turn_count} stored"),
        ("events", _events(counters)),
        ("language", safe_text(session.language or "-", 64)),
        ("expires", expires),
        ("ttl", format_duration(session.ttl)),
        ("metadata", _compact_json(session.metadata)),
        ("context", _compact_json(session.context)),
    )
    for name, value in rows:
        table.add_row(Text(name), Text(value))
    return table


def _connections_table(session: Session, now: float) -> Table:
    """The agents / jobs serving the participant now, one row each (their store connection ids)."""
    table = Table(box=None, pad_edge=False, header_style="bold")
    table.add_column("CONNECTION", overflow="fold")
    table.add_column("SINCE (UTC)", no_wrap=True)
    table.add_column("LAST BEAT", no_wrap=True)
    for connection in session.connections:
        table.add_row(
            Text(safe_text(connection.id, 200)),
            Text(f"{iso_utc(connection.since)} ({relative(connection.since, now)})"),
            Text(relative(connection.last_beat, now)),
        )
    if not session.connections:
        table.caption = "no live connection"
    return table


def _devices_table(session: Session, now: float) -> Table:
    """The devices the participant came from, most recently seen first."""
    table = Table(box=None, pad_edge=False, header_style="bold")
    table.add_column("DEVICE", overflow="fold")
    table.add_column("LABEL", overflow="fold")
    table.add_column("FIRST SEEN (UTC)", no_wrap=True)
    table.add_column("LAST SEEN", no_wrap=True)
    for device in sorted(session.devices, key=lambda d: d.last_seen, reverse=True):
        table.add_row(
            Text(safe_text(device.device_id, 128)),
            Text(safe_text(device.label or "-", 128)),
            Text(iso_utc(device.first_seen)),
            Text(relative(device.last_seen, now)),
        )
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


def _events(counters: SessionCounters | None) -> str:
    """The session's counters since it began (turns recorded, not stored: compaction drops old ones)."""
    if counters is None:
        return "- (not counted)"
    counts = ((counters.connections, "connection"), (counters.returns, "return"), (counters.turns, "turn"))
    return ", ".join(f"{n} {noun}{'' if n == 1 else 's'}" for n, noun in counts) + " recorded"


def _compact_json(value: dict[str, Any]) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True) if value else "{}"
