"""The SQLite store's analytics: its tables, and the statements connect and append_turn run in their transaction.

Exact distinct counts (one row per day and keyed identity hash). The hash key, unless configured, is a
random secret kept in ``lkpersist_meta`` (written by the first connect), so every process sharing the
file hashes alike. Rows past retention are deleted by ``purge``. Functions take the worker thread's
connection first, as :mod:`~lkpersist.stores.sqlite.operations` does.
"""

from __future__ import annotations

import sqlite3

from lkpersist.clock import from_ms, to_ms
from lkpersist.model.analytics import (
    COUNTERS,
    Analytics,
    DailyStats,
    SessionCounters,
    day_from_counts,
)
from lkpersist.model.results import ConnectResult
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
    """CREATE TABLE IF NOT EXISTS lkpersist_analytics_sessions (
        identity_hash TEXT PRIMARY KEY,
        joined_at INTEGER NOT NULL,
        connections INTEGER NOT NULL,
        returns INTEGER NOT NULL,
        turns INTEGER NOT NULL,
        changed_day TEXT NOT NULL
    ) WITHOUT ROWID""",
    # purge drops counters by the day of their last change; a day's later writes leave that index alone
    "CREATE INDEX IF NOT EXISTS lkpersist_analytics_sessions_by_day ON lkpersist_analytics_sessions (changed_day)",
)
_SECRET = "analytics_key"
_COUNT_DAY = (
    "INSERT INTO lkpersist_analytics_days (day, connections, returns, new_sessions) VALUES (?1, 1, ?2, 1 - ?2) "
    "ON CONFLICT (day) DO UPDATE SET connections = connections + 1, returns = returns + ?2, "
    "new_sessions = new_sessions + 1 - ?2"
)
# A return adds to the session's counters; a new session (or a return whose counters were purged) starts
# them. The common case, a return on a day the counters already changed, is _COUNT_RETURN: it does not set
# changed_day, so SQLite leaves the index alone; the upsert runs when it matched no row.
_COUNT_RETURN = (
    "UPDATE lkpersist_analytics_sessions SET connections = connections + 1, returns = returns + 1 "
    "WHERE identity_hash = ? AND changed_day = ?"
)
_COUNT_SESSION = (
    "INSERT INTO lkpersist_analytics_sessions VALUES (:hash, :joined, 1, :returning, 0, :day) "
    "ON CONFLICT (identity_hash) DO UPDATE SET connections = CASE WHEN :returning THEN connections + 1 ELSE 1 END, "
    "returns = CASE WHEN :returning THEN returns + 1 ELSE 0 END, turns = CASE WHEN :returning THEN turns ELSE 0 END, "
    "joined_at = CASE WHEN :returning THEN joined_at ELSE :joined END, changed_day = :day"
)
_TURN_TODAY = "UPDATE lkpersist_analytics_sessions SET turns = turns + 1 WHERE identity_hash = ? AND changed_day = ?"
_TURN_NEW_DAY = "UPDATE lkpersist_analytics_sessions SET turns = turns + 1, changed_day = ? WHERE identity_hash = ?"
_COUNT_TURN = (
    "INSERT INTO lkpersist_analytics_days (day, turns) VALUES (?1, 1) "
    "ON CONFLICT (day) DO UPDATE SET turns = turns + 1"
)


def connected(conn: sqlite3.Connection, analytics: Analytics, result: ConnectResult, now_ms: int) -> None:
    """Count a connect, inside connect's transaction (see :mod:`lkpersist.model.analytics`)."""
    hashed = _hash(conn, analytics, result.session.identity)
    day, returning = analytics.day(from_ms(now_ms)), int(result.returning)
    conn.execute(_COUNT_DAY, (day, returning))
    if not analytics.counted_today(result.session.identity):  # marked in the transaction: it rarely fails past here
        conn.execute("INSERT OR IGNORE INTO lkpersist_analytics_identities VALUES (?, ?)", (day, hashed))
        analytics.mark_counted(result.session.identity)
    if returning and conn.execute(_COUNT_RETURN, (hashed, day)).rowcount:
        return
    params = {"hash": hashed, "joined": to_ms(result.session.joined_at), "returning": returning, "day": day}
    conn.execute(_COUNT_SESSION, params)


def recorded_turn(conn: sqlite3.Connection, analytics: Analytics, identity: str, now_ms: int) -> None:
    """Count a stored turn, inside append_turn's transaction."""
    day, hashed = analytics.day(from_ms(now_ms)), _hash(conn, analytics, identity)
    conn.execute(_COUNT_TURN, (day,))
    if not conn.execute(_TURN_TODAY, (hashed, day)).rowcount:
        conn.execute(_TURN_NEW_DAY, (day, hashed))


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


def counters(conn: sqlite3.Connection, identity_hash: str) -> SessionCounters | None:
    try:
        row = conn.execute(
            "SELECT joined_at, connections, returns, turns FROM lkpersist_analytics_sessions WHERE identity_hash = ?",
            (identity_hash,),
        ).fetchone()
    except sqlite3.OperationalError as exc:
        if "no such table" not in str(exc):
            raise
        return None
    return None if row is None else SessionCounters(from_ms(row[0]), *row[1:])


def purge(conn: sqlite3.Connection, analytics: Analytics, now_ms: int) -> None:
    """Delete the days and session counters past retention, in one transaction."""
    now = from_ms(now_ms)
    oldest = analytics.oldest_kept_day(now)
    with immediate(conn):
        conn.execute("DELETE FROM lkpersist_analytics_days WHERE day < ?", (oldest,))
        conn.execute("DELETE FROM lkpersist_analytics_identities WHERE day < ?", (oldest,))
        conn.execute("DELETE FROM lkpersist_analytics_sessions WHERE changed_day < ?", (oldest,))


__all__ = ["TABLES", "connected", "counters", "daily", "kept_secret", "purge", "recorded_turn"]
