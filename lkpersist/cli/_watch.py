"""Rendering and the loop of ``lkpersist sessions watch`` (the command itself is in ``cli/sessions.py``).

Events come from :meth:`SessionStore.events` (rule and delivery in :mod:`lkpersist.model.events`), produced by
any process using the store: agents, other CLI commands, cron purges. Once subscribed, the command says
so on stderr ("watching session events ..."), so a script can wait for that line before acting.
Lines for people: ``2027-01-15T08:00:00Z  returned      'alice'  reconnects=2``; ``-o ndjson``: one
JSON object per event (kind, identity, time in epoch seconds, reconnect_count), flushed at once.
"""

from __future__ import annotations

import asyncio
import json
from enum import Enum

import typer

from lkpersist.cli._output import iso_utc, quoted
from lkpersist.cli._runner import err_console
from lkpersist.model.events import SessionEvent
from lkpersist.stores.base import SessionStore


class WatchFormat(str, Enum):
    """Output of ``sessions watch``."""

    table = "table"
    ndjson = "ndjson"


def event_line(event: SessionEvent) -> str:
    """One event for people: ISO time, kind, the escaped identity, the visit count when known."""
    count = "" if event.reconnect_count is None else f"  reconnects={event.reconnect_count}"
    return f"{iso_utc(event.time)}  {event.kind:<12}  {quoted(event.identity)}{count}"


async def tail_events(
    store: SessionStore, identity: str | None, output: WatchFormat, count: int | None, timeout: float | None
) -> int:
    """Subscribe, say so on stderr, print events until ``count`` of them or ``timeout``; return how many."""
    async with store.events(identity) as stream:
        whose = "" if identity is None else f" of {quoted(identity)}"
        err_console.print(f"watching session events{whose} (Ctrl-C to stop)", markup=False)
        seen = 0
        try:
            async with asyncio.timeout(timeout):
                async for event in stream:
                    _print(event, output)
                    seen += 1
                    if count is not None and seen >= count:
                        break
        except TimeoutError:
            pass
        return seen


def _print(event: SessionEvent, output: WatchFormat) -> None:
    if output is WatchFormat.ndjson:
        typer.echo(json.dumps(event.to_dict(), ensure_ascii=False))
    else:
        typer.echo(event_line(event))
