"""``sessions watch``: one line per session event for people, one JSON object per event for scripts.

Lines for people: ``2027-01-15T08:00:00Z  returned      'alice'  reconnects=2``; ``-o ndjson``: one
JSON object per event (kind, identity, time in epoch seconds, reconnect_count), flushed at once.
"""

from __future__ import annotations

import json

import typer

from lkpersist.cli._output.formats import WatchFormat
from lkpersist.cli._output.text import iso_utc, quoted
from lkpersist.model.events import SessionEvent


def event_line(event: SessionEvent) -> str:
    """One event for people: ISO time, kind, the escaped identity, the visit count when known."""
    count = "" if event.reconnect_count is None else f"  reconnects={event.reconnect_count}"
    return f"{iso_utc(event.time)}  {event.kind:<12}  {quoted(event.identity)}{count}"


def print_event(event: SessionEvent, output: WatchFormat) -> None:
    if output is WatchFormat.ndjson:
        typer.echo(json.dumps(event.to_dict(), ensure_ascii=False))
    else:
        typer.echo(event_line(event))
