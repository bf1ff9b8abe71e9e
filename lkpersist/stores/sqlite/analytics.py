"""The SQLite store's analytics: its tables, the statements append_turn and a merge run in their
transaction, and the roll-up of the visits arrivals recorded as events.

An arrival that opens a visit writes no analytics row: its ``created`` or ``returned`` event row carries
the keyed hash of the identity (``visit_hash``, in the same transaction), and that is the record. Before
the events are pruned (every ``events.PRUNE_EVERY`` ids, in the transaction that crosses the boundary)
and at ``purge``, :func:`roll_up` counts the events written since the last roll-up into their days
(counters and identity hashes) and moves a watermark (``lkpersist_meta``) past them; reads
(:func:`daily`) add the events past the watermark, in SQL, so the stats are exact at any time and any
reader (one without the hash key too) sees them. An arrival thus writes the pages of its session and of
its event only, not the day's counter row and a random leaf of the identity index as well.

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
    DAY,
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


def identity_hash(conn: sqlite3.Connection, analytics: Analytics, identity: str) -> str:
    """The keyed hash ``identity`` is counted under (an arrival's visit event carries it), keeping the
    file's secret on this store object's first write (inside the caller's transaction)."""
    if not analytics.ready:
        conn.execute("INSERT OR IGNORE INTO lkpersist_meta VALUES (?, ?)", (_SECRET, analytics.proposed_secret))
        analytics.use_secret(kept_secret(conn) or analytics.proposed_secret)
    return analytics.identity_hash(identity)


_ROLLED_UP = "analytics_rolled_up"
"""The ``lkpersist_meta`` key of the newest event id the day rows include (absent: none yet)."""
_PENDING_VISITS = (
    "SELECT strftime('%Y-%m-%d', time / 1000, 'unixepoch') AS day, kind, visit_hash FROM lkpersist_events "
    "WHERE id > :mark AND visit_hash IS NOT NULL"
)
"""The visits past the watermark ``:mark``: their UTC day (as ``model.analytics.day_of``), kind and hash."""
_PENDING_VISIT_TIMES = "SELECT time, kind, visit_hash FROM lkpersist_events WHERE id > :mark AND visit_hash IS NOT NULL"
""":data:`_PENDING_VISITS` with the time in ms instead of the day, for :func:`_visits_by_day` (``strftime``
on every row cost the roll-up as much as its inserts)."""
_EVERY_DAY = ("", "~")
_DAY_MS = round(DAY * 1000)
DayVisits = dict[str, tuple[int, int, list[str]]]
"""Visits by UTC day: (returns, new sessions, the identity hash of each visit)."""


def roll_up(conn: sqlite3.Connection) -> None:
    """Count the visits recorded past the watermark into their days and move it to the newest event,
    inside the caller's write transaction (see the module docstring). Grouped here, not by SQL: they are
    at most a couple of thousand rows (``events.PRUNE_EVERY``), and a purge's statements never sort. The identity rows go in in key order, so
    the inserts walk the index's leaves once instead of jumping between them."""
    newest, mark = _newest_and_mark(conn)
    visits = _visits_by_day(conn.execute(_PENDING_VISIT_TIMES, {"mark": mark}).fetchall())
    conn.executemany(ADD_TO_DAY, _day_counts(visits, _EVERY_DAY))
    conn.executemany(COUNT_IDENTITY, [(day, hashed) for day in sorted(visits) for hashed in sorted(set(visits[day][2]))])
    conn.execute(
        "INSERT INTO lkpersist_meta VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = ?2", (_ROLLED_UP, str(newest))
    )


def _visits_by_day(visits: list[tuple[int, str, str]]) -> DayVisits:
    """:data:`_PENDING_VISIT_TIMES` rows by UTC day (each day's name found once)."""
    days: dict[int, tuple[str, list[int], list[str]]] = {}
    for time_ms, kind, hashed in visits:
        number = time_ms // _DAY_MS
        found = days.get(number)
        if found is None:
            found = days[number] = (day_of(number * DAY), [0, 0], [])
        found[1][kind != "returned"] += 1
        found[2].append(hashed)
    return {day: (counts[0], counts[1], hashes) for day, counts, hashes in days.values()}


def _day_counts(visits: DayVisits, span: tuple[str, str]) -> list[tuple[str, int, int, int, int]]:
    """The counters (``ADD_TO_DAY``'s parameters) of the days in ``span`` of the pending ``visits``: each is
    a connection, and a return or a new session (an arrival's visit is one or the other)."""
    return [
        (day, returns + new, returns, new, 0)
        for day, (returns, new, _) in visits.items()
        if span[0] <= day <= span[1]
    ]


def _newest_and_mark(conn: sqlite3.Connection) -> tuple[int, int]:
    """The newest event id and the watermark; a watermark past the newest id means the table was emptied
    by hand and its ids started over (every row was written since): nothing of it is counted yet."""
    (newest,) = conn.execute("SELECT COALESCE(MAX(id), 0) FROM lkpersist_events").fetchone()
    row = conn.execute("SELECT value FROM lkpersist_meta WHERE key = ?", (_ROLLED_UP,)).fetchone()
    mark = 0 if row is None else int(row[0])
    return int(newest), mark if mark <= newest else 0


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
        conn.execute(COUNT_IDENTITY, (tally.day, identity_hash(conn, analytics, identity)))
    changed = analytics.day(from_ms(now_ms))
    conn.execute(_COUNT_OFFLINE_SESSION, (tally.connections, tally.returns, tally.turns, changed, identity))


def kept_secret(conn: sqlite3.Connection) -> str | None:
    """The file's analytics secret; None before the first connect wrote one."""
    row = conn.execute("SELECT value FROM lkpersist_meta WHERE key = ?", (_SECRET,)).fetchone()
    return None if row is None else str(row[0])


def daily(conn: sqlite3.Connection, dates: list[str]) -> DailyStats:
    """The stats of ``dates`` (oldest first), in one snapshot: the day rows plus the visits not rolled up
    yet (:func:`roll_up`); zeros on a file older than these tables."""
    span = (dates[0], dates[-1])
    try:
        with snapshot(conn):
            params = {"mark": _newest_and_mark(conn)[1], "first": span[0], "last": span[1]}
            rows = conn.execute(
                f"SELECT day, {', '.join(COUNTERS)} FROM lkpersist_analytics_days WHERE day BETWEEN ? AND ?", span
            ).fetchall()
            pending = _day_counts(_visits_by_day(conn.execute(_PENDING_VISIT_TIMES, params).fetchall()), span)
            active = dict(conn.execute(
                "SELECT day, COUNT(*) FROM lkpersist_analytics_identities WHERE day BETWEEN ? AND ? GROUP BY day", span
            ).fetchall())
            newly_active = conn.execute(_NEWLY_ACTIVE, params).fetchall()
            (distinct,) = conn.execute(_DISTINCT, params).fetchone()
    except sqlite3.OperationalError as exc:
        if "no such table" not in str(exc):
            raise
        rows, pending, active, newly_active, distinct = [], [], {}, [], 0
    counts = {row[0]: dict(zip(COUNTERS, row[1:], strict=True)) for row in rows}
    for day, *day_counts in pending:
        stored = counts.setdefault(day, {})
        for name, value in zip(COUNTERS, day_counts, strict=True):
            stored[name] = stored.get(name, 0) + value
    for day, more in newly_active:
        active[day] = active.get(day, 0) + more
    return DailyStats([day_from_counts(d, active.get(d, 0), counts.get(d, {})) for d in dates], distinct)


_NEWLY_ACTIVE = (
    f"SELECT day, COUNT(DISTINCT visit_hash) FROM ({_PENDING_VISITS}) AS p WHERE day BETWEEN :first AND :last "
    "AND NOT EXISTS (SELECT 1 FROM lkpersist_analytics_identities AS i WHERE i.day = p.day AND i.identity_hash = p.visit_hash) "
    "GROUP BY day"
)
"""The identities active by day in the visits past the watermark and not in the day's identity rows yet."""
_DISTINCT = (
    "SELECT COUNT(*) FROM (SELECT identity_hash FROM lkpersist_analytics_identities WHERE day BETWEEN :first AND :last "
    f"UNION SELECT visit_hash FROM ({_PENDING_VISITS}) WHERE day BETWEEN :first AND :last)"
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
        roll_up(conn)  # so what is past retention is in the day rows, and goes with them
        conn.execute("DELETE FROM lkpersist_analytics_days WHERE day < ?", (oldest,))
        conn.execute("DELETE FROM lkpersist_analytics_identities WHERE day < ?", (oldest,))
        conn.execute(
            "UPDATE lkpersist_sessions SET counted_connections = 0, counted_returns = 0, counted_turns = 0, "
            "counted_day = NULL WHERE counted_day < ?",
            (oldest,),
        )


__all__ = [
    "SESSION_COLUMNS", "TABLES", "counters", "daily", "identity_hash", "kept_secret", "purge", "recorded_turn",
    "roll_up",
]
