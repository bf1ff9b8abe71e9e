"""Every table of a SQLite store file, and the in-place upgrade of older files.

The layout's version is recorded in ``lkpersist_meta``. An older file is upgraded in place, in one
transaction, by creating the tables it lacks (2 added events and locks, 3 analytics) and reshaping the sessions
table (4 replaced the disconnect/greeting counters by per-connection presence and moved the session's
analytics counters into its row, :func:`_to_presence`,
and dropped the events table's AUTOINCREMENT, :func:`_events_without_autoincrement`; 5 gave the events
the identity hash of the visit an arrival opened, which the day analytics now roll up from,
:func:`_events_with_visit_hash`);
a newer one is refused (upgrade lkpersist).
"""

from __future__ import annotations

import sqlite3

from lkpersist.stores.sqlite import analytics
from lkpersist.stores.sqlite.transactions import immediate

STORAGE_VERSION = 5  # the layout below, in lkpersist_meta (2: events, locks; 3: analytics; 4: presence;
# 5: events carry visit_hash)

# Times are integer milliseconds. ``deadline`` is Session.deadline (connected: last_seen + ttl;
# disconnected: expires_at), rewritten on every write so count/list/purge filter on an index and never
# look at the JSON. Personal columns (language, metadata, context, payload) hold codec output.
# ``connections`` (the live ones, ``[[id, since ms, last beat ms], ...]``) and ``devices`` (``[[id, label,
# first seen ms, last seen ms], ...]``) are compact JSON read only by the presence rule. ``counted_*``
# are the session's analytics counters (analytics.py), ``counted_day`` NULL when it has none.
SCHEMA = (
    """CREATE TABLE IF NOT EXISTS lkpersist_meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    )""",
    f"""CREATE TABLE IF NOT EXISTS lkpersist_sessions (
        id INTEGER PRIMARY KEY,
        identity TEXT NOT NULL UNIQUE,
        joined_at INTEGER NOT NULL,
        last_seen INTEGER NOT NULL,
        reconnect_count INTEGER NOT NULL,
        connected INTEGER NOT NULL,
        expires_at INTEGER,
        ttl INTEGER NOT NULL,
        deadline INTEGER NOT NULL,
        greeted_visit INTEGER NOT NULL DEFAULT 0,
        connections TEXT NOT NULL DEFAULT '[]',
        devices TEXT NOT NULL DEFAULT '[]',
        switch_until INTEGER,
        {", ".join(analytics.SESSION_COLUMNS)},
        schema_version INTEGER NOT NULL,
        language TEXT,
        metadata TEXT NOT NULL,
        context TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS lkpersist_sessions_by_deadline ON lkpersist_sessions (deadline)",
    # The listing order, covering the status filter so paging never reads the table for skipped rows.
    """CREATE INDEX IF NOT EXISTS lkpersist_sessions_by_last_seen
        ON lkpersist_sessions (last_seen DESC, identity, deadline)""",
    """CREATE TABLE IF NOT EXISTS lkpersist_turns (
        id INTEGER PRIMARY KEY,
        session_id INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        item_id TEXT,
        payload TEXT NOT NULL,
        UNIQUE (session_id, seq),
        UNIQUE (session_id, item_id)
    )""",
    # session events (events.py): written in the operation's transaction, polled by subscribers. Ids are
    # never reused although there is no AUTOINCREMENT (whose sqlite_sequence row costs every write a page):
    # pruning never removes the newest row, so the next id is always past every id handed out.
    # ``visit_hash``: on the event of an arrival that opened a visit, the keyed identity hash the day
    # analytics count it under (analytics.roll_up); NULL on every other event.
    """CREATE TABLE IF NOT EXISTS lkpersist_events (
        id INTEGER PRIMARY KEY,
        time INTEGER NOT NULL,
        kind TEXT NOT NULL,
        identity TEXT NOT NULL,
        reconnect_count INTEGER,
        visit_hash TEXT
    )""",
    # named locks (locks.py)
    """CREATE TABLE IF NOT EXISTS lkpersist_locks (
        name TEXT PRIMARY KEY,
        token TEXT NOT NULL,
        expires_at INTEGER NOT NULL
    )""",
    *analytics.TABLES,  # analytics.py: written by connect and append_turn in their transactions
)


def prepare_schema(conn: sqlite3.Connection) -> None:
    """Create what the file lacks (a new file, or an older layout) and refuse a newer layout."""
    if _stored_version(conn) != STORAGE_VERSION:
        with immediate(conn):
            _to_presence(conn)
            _events_without_autoincrement(conn)
            _events_with_visit_hash(conn)
            conn.execute("DROP TABLE IF EXISTS lkpersist_analytics_sessions")  # layout 3's, now in the sessions
            for statement in SCHEMA:
                conn.execute(statement)
            conn.execute(  # older layouts are upgraded in place (see the module docstring)
                "INSERT INTO lkpersist_meta (key, value) VALUES ('schema_version', ?1) ON CONFLICT (key) "
                "DO UPDATE SET value = ?1 WHERE CAST(value AS INTEGER) < CAST(?1 AS INTEGER)",
                (str(STORAGE_VERSION),),
            )
            _check_version(_stored_version(conn))


_PRESENCE_COLUMNS = (
    "greeted_visit INTEGER NOT NULL DEFAULT 0",
    "connections TEXT NOT NULL DEFAULT '[]'",
    "devices TEXT NOT NULL DEFAULT '[]'",
    "switch_until INTEGER",
    *analytics.SESSION_COLUMNS,
)
_FROM_COUNTERS = (
    # the SQL form of lkpersist.model.session.legacy_greeted_visit
    "UPDATE lkpersist_sessions SET greeted_visit = "
    "MAX(0, reconnect_count + 1 - MAX(0, disconnect_count - 1 + connected - greeted_epoch)), "
    "connections = CASE connected WHEN 1 THEN json_array(json_array('-', last_seen, last_seen)) ELSE '[]' END"
)


def _to_presence(conn: sqlite3.Connection) -> None:
    """Layout 3 → 4 inside the caller's transaction: a connected session gets one live connection ``-``
    beating at its last_seen, and greeted_visit says whether its greeting was still owed."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(lkpersist_sessions)")}
    if "greeted_epoch" not in columns:
        return
    for column in _PRESENCE_COLUMNS:
        conn.execute(f"ALTER TABLE lkpersist_sessions ADD COLUMN {column}")
    conn.execute(_FROM_COUNTERS)
    for column in ("disconnect_count", "greeted_epoch"):
        conn.execute(f"ALTER TABLE lkpersist_sessions DROP COLUMN {column}")


def _events_without_autoincrement(conn: sqlite3.Connection) -> None:
    """Layout 3 → 4, in the caller's transaction: the events table rebuilt without AUTOINCREMENT, ids kept."""
    row = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'lkpersist_events'").fetchone()
    if row is None or "AUTOINCREMENT" not in row[0].upper():
        return
    conn.execute("ALTER TABLE lkpersist_events RENAME TO lkpersist_events_v2")
    conn.execute(next(statement for statement in SCHEMA if "lkpersist_events (" in statement))
    conn.execute(
        "INSERT INTO lkpersist_events (id, time, kind, identity, reconnect_count) "
        "SELECT id, time, kind, identity, reconnect_count FROM lkpersist_events_v2"
    )
    conn.execute("DROP TABLE lkpersist_events_v2")
    conn.execute("DELETE FROM sqlite_sequence WHERE name IN ('lkpersist_events', 'lkpersist_events_v2')")


def _events_with_visit_hash(conn: sqlite3.Connection) -> None:
    """Layout 4 → 5, in the caller's transaction: the events get their ``visit_hash`` column. The rows
    already there have none (NULL): their visits were counted in the day rows when they were written, as
    a process of layout 4 still running goes on doing, so nothing is counted twice."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(lkpersist_events)")}
    if columns and "visit_hash" not in columns:
        conn.execute("ALTER TABLE lkpersist_events ADD COLUMN visit_hash TEXT")


def check_schema(conn: sqlite3.Connection) -> None:
    """For a read-only connection: the file must hold lkpersist's tables, in this version's layout.

    An older layout cannot be upgraded through a read-only connection: it is refused with the remedy.
    """
    version = _stored_version(conn)
    if version is None:
        raise sqlite3.DatabaseError("it holds no lkpersist tables (and is read-only here, so none can be created)")
    _check_version(version)
    if version < STORAGE_VERSION:
        raise sqlite3.DatabaseError(
            f"its schema version {version} is older than this lkpersist's ({STORAGE_VERSION}) and it is read-only "
            "here: open it once with write access (any lkpersist command as its owner) to upgrade it in place"
        )


def _stored_version(conn: sqlite3.Connection) -> int | None:
    try:
        row = conn.execute("SELECT value FROM lkpersist_meta WHERE key = 'schema_version'").fetchone()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return None
        raise
    return None if row is None else int(row[0])


def _check_version(version: int | None) -> None:
    if version is not None and version > STORAGE_VERSION:
        raise sqlite3.DatabaseError(
            f"its schema version {version} is newer than this lkpersist supports ({STORAGE_VERSION}); upgrade"
        )
