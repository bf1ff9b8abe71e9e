"""Session events for ``sqlite://``: an ``lkpersist_events`` table, written in the operation's transaction.

Every operation that publishes (see :mod:`lkpersist.model.events`) inserts its events in the same ``BEGIN
IMMEDIATE`` transaction as its change, so an event exists exactly when its change was committed, whichever
process made it. Subscribers in any process poll the table from the highest id they have seen, every
``POLL_INTERVAL`` seconds. Ids are never reused by lkpersist: pruning never removes the newest row (the
age cutoff is taken from the newest row itself), so the next id (SQLite's largest id + 1) is past every
id handed out. (No AUTOINCREMENT: its
``sqlite_sequence`` row cost every write one more page.) Only a table emptied by hand starts over at 1;
a subscriber that then finds the newest id below its position starts over with it.

The table never grows without bound: whenever the id crosses a multiple of ``PRUNE_EVERY``, events
beyond the newest ``KEEP_EVENTS``, and those older than ``KEEP_SECONDS`` (store clock) up to the first
younger one, are deleted (:data:`_PRUNE`). A subscriber that falls further behind than that misses the
pruned events.

The ``created``/``returned`` row of an arrival that opened a visit carries the identity's keyed hash
(``visit_hash``): the day analytics are rolled up from those rows
(:func:`~lkpersist.stores.sqlite.analytics.roll_up`), at that same id boundary right before the prune, so
no visit is pruned before it was counted.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from typing import TYPE_CHECKING, cast

from lkpersist.clock import from_ms, to_ms
from lkpersist.model.events import EVENT_KINDS, EventKind, SessionEvent
from lkpersist.stores.sqlite import analytics as day_analytics

if TYPE_CHECKING:
    from lkpersist.stores.sqlite.db import Database

POLL_INTERVAL = 0.1
POLL_BATCH = 1000
KEEP_EVENTS = 10_000
KEEP_SECONDS = 3600.0
PRUNE_EVERY = 2048

EventRow = tuple[int, str, str, int | None]
"""(time ms, kind, identity, reconnect_count): one event as written."""


def record_events(conn: sqlite3.Connection, events: list[SessionEvent], visit_hash: str | None = None) -> None:
    """Insert ``events`` (inside the caller's transaction) and prune when an id boundary was crossed.
    ``visit_hash``: the keyed hash of the identity whose visit the last event opened (an arrival's)."""
    if events:
        rows = [(to_ms(e.time), e.kind, e.identity, e.reconnect_count) for e in events]
        write_event_rows(conn, rows, visit_hash)


def write_event_rows(conn: sqlite3.Connection, rows: Sequence[EventRow], visit_hash: str | None = None) -> None:
    """:func:`record_events` for rows already in table form (purge writes thousands at once)."""
    if not rows:
        return
    if len(rows) <= _FEW:  # the id the last insert got says where the sequence was: no lookup first
        for row in rows[:-1]:
            conn.execute(_INSERT, row)
        # the highest id (the cursor's lastrowid: a RETURNING clause cost the insert a sixth more)
        after = conn.execute(_INSERT_VISIT, (*rows[-1], visit_hash)).lastrowid
        assert after is not None  # an INSERT into a rowid table always sets it
        before = after - len(rows)
    else:
        before = _max_id(conn)
        conn.executemany(_INSERT, rows[:-1])
        conn.execute(_INSERT_VISIT, (*rows[-1], visit_hash))
        after = before + len(rows)
    if after // PRUNE_EVERY != before // PRUNE_EVERY:
        day_analytics.roll_up(conn)  # the visits first: every row at or below ``after`` is counted then
        conn.execute(_PRUNE, (after - KEEP_EVENTS + 1, rows[-1][0] - to_ms(KEEP_SECONDS)))


_INSERT = "INSERT INTO lkpersist_events (time, kind, identity, reconnect_count) VALUES (?, ?, ?, ?)"
_INSERT_VISIT = (
    "INSERT INTO lkpersist_events (time, kind, identity, reconnect_count, visit_hash) VALUES (?, ?, ?, ?, ?)"
)
_PRUNE = (
    "DELETE FROM lkpersist_events WHERE id < MAX(?1, COALESCE("
    "(SELECT id FROM lkpersist_events WHERE time >= ?2 ORDER BY id LIMIT 1), ?1))"
)
"""Parameters (the lowest id kept by count, the cutoff time ms): the rows below both, as one range of ids.
The age bound is the oldest id of the first row young enough, found by walking up from the oldest row, so
a prune reads what it deletes and nothing more (``id <= ? OR time < ?`` read the whole table every time,
~10,000 rows every ``PRUNE_EVERY`` writes). Times follow ids but for writers racing within milliseconds,
so an old row written just after a younger one waits for the next prune."""
_FEW = 4


def _max_id(conn: sqlite3.Connection) -> int:
    """The last id handed out (the newest row is never pruned: see the module docstring)."""
    return int(conn.execute("SELECT COALESCE(MAX(id), 0) FROM lkpersist_events").fetchone()[0])


def _events_after(conn: sqlite3.Connection, after: int) -> list[tuple[int, int, str, str, int | None]]:
    return conn.execute(
        "SELECT id, time, kind, identity, reconnect_count FROM lkpersist_events WHERE id > ? ORDER BY id LIMIT ?",
        (after, POLL_BATCH),
    ).fetchall()


class SQLiteEventSource:
    """Polls one store file's events table; starts after the newest event present at ``open``."""

    def __init__(self, db: Database, interval: float = POLL_INTERVAL) -> None:
        self._db = db
        self._interval = interval
        self._after = 0

    async def open(self) -> None:
        self._after = await self._db.run(_max_id)

    async def next_batch(self) -> list[SessionEvent]:
        rows = await self._db.run(_events_after, self._after)
        if not rows:
            if await self._db.run(_max_id) < self._after:  # emptied by hand: its ids started over
                self._after = 0
            await asyncio.sleep(self._interval)
            return []
        self._after = rows[-1][0]
        return [_event(row) for row in rows if row[2] in EVENT_KINDS]  # a newer writer's kinds are skipped

    async def close(self) -> None:
        """Nothing to release: the store's connection is shared."""


def _event(row: tuple[int, int, str, str, int | None]) -> SessionEvent:
    _, time_ms, kind, identity, count = row
    return SessionEvent(cast(EventKind, kind), identity, from_ms(time_ms), count)
