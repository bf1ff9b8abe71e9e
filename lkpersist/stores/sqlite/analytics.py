"""The SQLite store's analytics: its tables, and the statements connect and append_turn run in their transaction.

Exact distinct counts (one row per day and keyed identity hash). The hash key, unless configured, is a
random secret kept in ``lkpersist_meta`` (written by the first connect), so every process sharing the
file hashes alike. A session's counters are columns of its row (:data:`SESSION_COLUMNS`), so they go
with the row when the session is purged or deleted. Day rows past retention are deleted by ``purge``,
and session counters past it cleared. Functions take the worker thread's
connection first, as :mod:`~lkpersist.stores.sqlite.operations` does.
"""

from __future__ import annotations

import sqlite3

from lkpersist.clock import from_ms
from lkpersist.model.analytics import (
    COUNTERS,
    Analytics,
    DailyStats,
    OfflineTally,
    SessionCounters,
    day_from_counts,
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


def connected(conn: sqlite3.Connection, analytics: Analytics, identity: str, day: str, returning: bool) -> None:
    """Count a visit in its day, inside the arrival's transaction (see :mod:`lkpersist.model.analytics`).

    The session's own counters were written with its row; the day's active identity is written once
    per identity, day and process (``INSERT OR IGNORE``: the cache only skips a write that would do nothing).
    """
    conn.execute(ADD_TO_DAY, (day, 1, int(returning), int(not returning), 0))
    if not analytics.counted_today(identity):  # marked in the transaction: it rarely fails past here
        hashed = _hash(conn, analytics, identity)
        conn.execute(COUNT_IDENTITY, (day, hashed))
        analytics.mark_counted(identity)


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
    if not analytics.ready:  # first write of this store object: keep (or read back) the file's secret
        conn.execute("INSERT OR IGNORE INTO lkpersist_meta VALUES (?, ?)", (_SECRET, analytics.proposed_secret))
        analytics.use_secret(kept_secret(conn) or analytics.proposed_secret)
    return analytics.identity_hash(identity)


def kept_secret(conn: sqlite3.Connection) -> str | None:
    """The file's analytics secret; None before the first connect wrote one."""
    row = conn.execute("SELECT value FROM lkpersist_meta WHERE key = ?", (_SECRET,)).fetchone()
    return None if row is None else str(row[0])


def daily(conn: sqlite3.Connection, dates: list[str]) -> DailyStats:
    """The stats of ``dates`` (oldest first), in one snapshot; zeros on a file older than these tables."""
    span = (dates[0], dates[-1])
    try:
        with snapshot(conn):
            rows = conn.execute(
                f"SELECT day, {', '.join(COUNTERS)} FROM lkpersist_analytics_days WHERE day BETWEEN ? AND ?", span
            ).fetchall()
            active = dict(conn.execute(
                "SELECT day, COUNT(*) FROM lkpersist_analytics_identities WHERE day BETWEEN ? AND ? GROUP BY day", span
            ).fetchall())
            (distinct,) = conn.execute(
                "SELECT COUNT(DISTINCT identity_hash) FROM lkpersist_analytics_identities WHERE day BETWEEN ? AND ?",
                span,
            ).fetchone()
    except sqlite3.OperationalError as exc:
        if "no such table" not in str(exc):
            raise
        rows, active, distinct = [], {}, 0
    counts = {row[0]: dict(zip(COUNTERS, row[1:], strict=True)) for row in rows}
    return DailyStats([day_from_counts(d, active.get(d, 0), counts.get(d, {})) for d in dates], distinct)


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
        conn.execute("DELETE FROM lkpersist_analytics_days WHERE day < ?", (oldest,))
        conn.execute("DELETE FROM lkpersist_analytics_identities WHERE day < ?", (oldest,))
        conn.execute(
            "UPDATE lkpersist_sessions SET counted_connections = 0, counted_returns = 0, counted_turns = 0, "
            "counted_day = NULL WHERE counted_day < ?",
            (oldest,),
        )


__all__ = ["SESSION_COLUMNS", "TABLES", "connected", "counters", "daily", "kept_secret", "purge", "recorded_turn"]
