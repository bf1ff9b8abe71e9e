"""The SQLite store's analytics: its tables, the statements append_turn and a merge run in their
transaction, and the roll-up of the visits arrivals recorded as events.

An arrival that opens a visit writes no analytics row: its ``created`` or ``returned`` event row (marked
``by_arrival``, in the same transaction) is the record. Every few hundred event ids, and before any
event could be pruned, :func:`roll_up` counts the events written since the last roll-up into their days
(counters and keyed identity hashes) and moves a watermark (``lkpersist_meta``) past them, in the
transaction that wrote the last event; reads (:func:`daily`) add the events past the watermark, so the
stats are exact at any time. An arrival thus writes the pages of its session and its event only, not a
day's counter row and a random leaf of the identity index (about a third of its commit before).

Exact distinct counts (one row per day and keyed identity hash). The hash key, unless configured, is a
random secret kept in ``lkpersist_meta`` (written by the first connect), so every process sharing the
file hashes alike. A session's counters are columns of its row (:data:`SESSION_COLUMNS`), so they go
with the row when the session is purged or deleted. Day rows past retention are deleted by ``purge``,
and session counters past it cleared. Functions take the worker thread's
connection first, as :mod:`~lkpersist.stores.sqlite.operations` does.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable

from lkpersist.clock import from_ms
from lkpersist.model.analytics import (
    COUNTERS,
    Analytics,
    DailyStats,
    OfflineTally,
    SessionCounters,
    day_from_counts,
    day_of,
)
from lkpersist.stores.sqlite.transactions import immediate, snapshot

TABLES = (
    """CREATE TABLE IF NOT EXISTS lkpersist_analytics_days (
        day TEXT PRIMARY KEY,
        connections INTEGER NOT NULL DEFAULT 0,
        returns INTEGER NOT NULL DEFAULT 0,
        new_sessions INTEGER NOT NULL DEFAULT 0,
        turns INTEGER NOT NULL DEFAULT 0
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS lkpersist_analytics_identities (
        day TEXT NOT NULL,
        identity_hash TEXT NOT NULL,
        PRIMARY KEY (day, identity_hash)
    ) WITHOUT ROWID""",
)
SESSION_COLUMNS = (
    "counted_connections INTEGER NOT NULL DEFAULT 0",
    "counted_returns INTEGER NOT NULL DEFAULT 0",
    "counted_turns INTEGER NOT NULL DEFAULT 0",
    "counted_day TEXT",
)
"""A session's counters, columns of its row in ``lkpersist_sessions`` (``counted_day``: the day of their last
change, NULL once purged or before any): the statement that writes the session writes them
(``rows.INSERT_ARRIVAL``, ``rows.UPDATE_VISIT``), so they cost an arrival no statement, table or index."""
_SECRET = "analytics_key"
COUNT_IDENTITY = "INSERT OR IGNORE INTO lkpersist_analytics_identities VALUES (?, ?)"
ADD_TO_DAY = (
    f"INSERT INTO lkpersist_analytics_days (day, {', '.join(COUNTERS)}) VALUES (?1, ?2, ?3, ?4, ?5) "
    "ON CONFLICT (day) DO UPDATE SET connections = connections + ?2, returns = returns + ?3, "
    "new_sessions = new_sessions + ?4, turns = turns + ?5"
)
"""Add to a day's counters (``COUNTERS`` order after the day): every count of a day goes through it."""
_COUNT_SESSION_TURN = (
    "UPDATE lkpersist_sessions SET counted_turns = counted_turns + 1, counted_day = ? "
    "WHERE id = ? AND counted_day IS NOT NULL"
)


def keep_secret(conn: sqlite3.Connection, analytics: Analytics) -> None:
    """Before an arrival's first counted event (inside its transaction): the file keeps the hash secret
    the roll-up and every reader of the pending events hash with (nothing to do once this store knows it)."""
    if not analytics.ready:
        conn.execute("INSERT OR IGNORE INTO lkpersist_meta VALUES (?, ?)", (_SECRET, analytics.proposed_secret))
        analytics.use_secret(kept_secret(conn) or analytics.proposed_secret)


_ROLLED_UP = "analytics_rolled_up"
"""The ``lkpersist_meta`` key of the newest event id the day rows include (absent: none yet)."""
_PENDING = (
    "SELECT time, kind, identity FROM lkpersist_events "
    "WHERE id > ? AND by_arrival = 1 AND kind IN ('created', 'returned') ORDER BY id"
)
Pending = tuple[dict[str, list[int]], set[tuple[str, str]]]
"""The visits past the watermark: counters by day (``COUNTERS`` order, turns 0) and (day, identity hash)."""


def roll_up(conn: sqlite3.Connection, analytics: Analytics) -> None:
    """Count the visits recorded past the watermark into their days and move it to the newest event,
    inside the caller's write transaction (see the module docstring)."""
    newest, mark = _newest_and_mark(conn)
    keep_secret(conn, analytics)
    counts, active = _pending(conn, analytics.identity_hash, mark)
    conn.executemany(ADD_TO_DAY, [(day, *day_counts) for day, day_counts in counts.items()])
    conn.executemany(COUNT_IDENTITY, sorted(active))
    conn.execute(
        "INSERT INTO lkpersist_meta VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = ?2", (_ROLLED_UP, str(newest))
    )


def rolled_up_to(conn: sqlite3.Connection) -> int:
    """The newest event id the day rows include: an event pruned must be at or below it, or not counted."""
    row = conn.execute("SELECT value FROM lkpersist_meta WHERE key = ?", (_ROLLED_UP,)).fetchone()
    return 0 if row is None else int(row[0])


def _newest_and_mark(conn: sqlite3.Connection) -> tuple[int, int]:
    """The newest event id and the watermark; a watermark past the newest id means the table was emptied
    by hand and its ids started over (every row was written since): nothing of it is counted yet."""
    (newest,) = conn.execute("SELECT COALESCE(MAX(id), 0) FROM lkpersist_events").fetchone()
    mark = rolled_up_to(conn)
    return int(newest), mark if mark <= newest else 0


def _pending(conn: sqlite3.Connection, hashed: Callable[[str], str], mark: int) -> Pending:
    counts: dict[str, list[int]] = {}
    active: set[tuple[str, str]] = set()
    for time_ms, kind, identity in conn.execute(_PENDING, (mark,)).fetchall():
        day = day_of(from_ms(time_ms))
        returning = kind == "returned"
        day_counts = counts.setdefault(day, [0, 0, 0, 0])
        day_counts[0] += 1
        day_counts[1 if returning else 2] += 1
        active.add((day, hashed(identity)))
    return counts, active


def recorded_turn(conn: sqlite3.Connection, analytics: Analytics, session_id: int, now_ms: int) -> None:
    """Count a stored turn of the session in row ``session_id``, inside append_turn's transaction."""
    day = analytics.day(from_ms(now_ms))
    conn.execute(ADD_TO_DAY, (day, 0, 0, 0, 1))
    conn.execute(_COUNT_SESSION_TURN, (day, session_id))


_COUNT_OFFLINE_SESSION = (
    "UPDATE lkpersist_sessions SET counted_connections = counted_connections + ?, counted_returns = counted_returns + ?, "
    "counted_turns = counted_turns + ?, counted_day = ? WHERE identity = ?"
)


def offline(conn: sqlite3.Connection, analytics: Analytics, identity: str, tally: OfflineTally, now_ms: int) -> None:
    """Count an outage merged back, inside the merge's transaction, after its row was written (a row the
    merge created or replaced starts its counters at zero: ``rows.INSERT_SESSION``)."""
    conn.execute(ADD_TO_DAY, (tally.day, tally.connections, tally.returns, tally.new_sessions, tally.turns))
    if tally.connections:
        hashed = _hash(conn, analytics, identity)
        conn.execute(COUNT_IDENTITY, (tally.day, hashed))
    changed = analytics.day(from_ms(now_ms))
    conn.execute(_COUNT_OFFLINE_SESSION, (tally.connections, tally.returns, tally.turns, changed, identity))


def _hash(conn: sqlite3.Connection, analytics: Analytics, identity: str) -> str:
    keep_secret(conn, analytics)  # first write of this store object: keep (or read back) the file's secret
    return analytics.identity_hash(identity)


def kept_secret(conn: sqlite3.Connection) -> str | None:
    """The file's analytics secret; None before the first connect wrote one."""
    row = conn.execute("SELECT value FROM lkpersist_meta WHERE key = ?", (_SECRET,)).fetchone()
    return None if row is None else str(row[0])


def daily(conn: sqlite3.Connection, analytics: Analytics, dates: list[str]) -> DailyStats:
    """The stats of ``dates`` (oldest first), in one snapshot: the day rows plus the visits not rolled up
    yet (:func:`roll_up`); zeros on a file older than these tables."""
    span = (dates[0], dates[-1])
    try:
        with snapshot(conn):
            rows = conn.execute(
                f"SELECT day, {', '.join(COUNTERS)} FROM lkpersist_analytics_days WHERE day BETWEEN ? AND ?", span
            ).fetchall()
            pending, pending_active = _pending_in(conn, analytics, span)
            active, distinct = _active(conn, span, pending_active)
    except sqlite3.OperationalError as exc:
        if "no such table" not in str(exc):
            raise
        rows, pending, active, distinct = [], {}, {}, 0
    counts = {row[0]: dict(zip(COUNTERS, row[1:], strict=True)) for row in rows}
    for day, day_counts in pending.items():
        stored = counts.setdefault(day, {})
        for name, value in zip(COUNTERS, day_counts, strict=True):
            stored[name] = stored.get(name, 0) + value
    return DailyStats([day_from_counts(d, active.get(d, 0), counts.get(d, {})) for d in dates], distinct)


def _active(conn: sqlite3.Connection, span: tuple[str, str], pending: set[tuple[str, str]]) -> tuple[dict[str, int], int]:
    """Active identities by day and distinct over ``span``: the stored hashes, and the pending ones that
    are not stored yet (a point lookup each: a few hundred at most, as often as the events are pruned)."""
    active = dict(conn.execute(
        "SELECT day, COUNT(*) FROM lkpersist_analytics_identities WHERE day BETWEEN ? AND ? GROUP BY day", span
    ).fetchall())
    for day, hashed in pending:
        if conn.execute(_IS_COUNTED, (day, hashed)).fetchone() is None:
            active[day] = active.get(day, 0) + 1
    (distinct,) = conn.execute(_DISTINCT, (*span, json.dumps(sorted({hashed for _, hashed in pending})))).fetchone()
    return active, int(distinct)


_IS_COUNTED = "SELECT 1 FROM lkpersist_analytics_identities WHERE day = ? AND identity_hash = ?"
_DISTINCT = (
    "SELECT COUNT(*) FROM (SELECT identity_hash FROM lkpersist_analytics_identities WHERE day BETWEEN ?1 AND ?2 "
    "UNION SELECT value FROM json_each(?3))"
)
"""The distinct identity hashes of the span, stored or pending (?3: a JSON array of the pending ones)."""


def _pending_in(conn: sqlite3.Connection, analytics: Analytics, span: tuple[str, str]) -> Pending:
    """The visits past the watermark whose day is in ``span``, hashed as the roll-up will hash them."""
    _, mark = _newest_and_mark(conn)
    if not analytics.ready and (secret := kept_secret(conn)) is not None:
        analytics.use_secret(secret)  # a reader that never wrote: the file's secret, as every writer's
    counts, active = _pending(conn, analytics.identity_hash, mark)
    return (
        {day: day_counts for day, day_counts in counts.items() if span[0] <= day <= span[1]},
        {pair for pair in active if span[0] <= pair[0] <= span[1]},
    )


def counters(conn: sqlite3.Connection, identity: str) -> SessionCounters | None:
    """The counters kept in the identity's session row; None without a row or once purged."""
    row = conn.execute(
        "SELECT joined_at, counted_connections, counted_returns, counted_turns FROM lkpersist_sessions "
        "WHERE identity = ? AND counted_day IS NOT NULL",
        (identity,),
    ).fetchone()
    return None if row is None else SessionCounters(from_ms(row[0]), *row[1:])


def purge(conn: sqlite3.Connection, analytics: Analytics, now_ms: int) -> None:
    """Delete the days and clear the session counters past retention, in one transaction.

    The counters have no index (it would cost every arrival a write): this walks the sessions table,
    which purge, a maintenance job, can afford."""
    now = from_ms(now_ms)
    oldest = analytics.oldest_kept_day(now)
    with immediate(conn):
        roll_up(conn, analytics)  # so what is past retention is in the day rows, and goes with them
        conn.execute("DELETE FROM lkpersist_analytics_days WHERE day < ?", (oldest,))
        conn.execute("DELETE FROM lkpersist_analytics_identities WHERE day < ?", (oldest,))
        conn.execute(
            "UPDATE lkpersist_sessions SET counted_connections = 0, counted_returns = 0, counted_turns = 0, "
            "counted_day = NULL WHERE counted_day < ?",
            (oldest,),
        )


__all__ = [
    "SESSION_COLUMNS", "TABLES", "counters", "daily", "keep_secret", "kept_secret", "purge", "recorded_turn",
    "roll_up", "rolled_up_to",
]
