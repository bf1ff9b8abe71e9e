"""Every table of a SQLite store file, and the in-place upgrade of older files.

The layout's version is recorded in ``lkpersist_meta``; every version so far only added tables, so an
older file is upgraded by creating what it lacks, and a newer one is refused (upgrade lkpersist).
"""

from __future__ import annotations

import sqlite3

from lkpersist.stores.sqlite import analytics
from lkpersist.stores.sqlite.transactions import immediate

STORAGE_VERSION = 3  # version of the table layout below, recorded in lkpersist_meta (2: events, locks; 3: analytics)

# Times are integer milliseconds. ``deadline`` is Session.deadline (connected: last_seen + ttl;
# disconnected: expires_at), rewritten on every write so count/list/purge filter on an index and never
# look at the JSON. Personal columns (language, metadata, context, payload) hold codec output.
SCHEMA = (
    """CREATE TABLE IF NOT EXISTS lkpersist_meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS lkpersist_sessions (
        id INTEGER PRIMARY KEY,
        identity TEXT NOT NULL UNIQUE,
        joined_at INTEGER NOT NULL,
        last_seen INTEGER NOT NULL,
        reconnect_count INTEGER NOT NULL,
        connected INTEGER NOT NULL,
        expires_at INTEGER,
        ttl INTEGER NOT NULL,
        deadline INTEGER NOT NULL,
        disconnect_count INTEGER NOT NULL,
        greeted_epoch INTEGER NOT NULL,
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
    # session events (events.py): written in the operation's transaction, polled by subscribers
    """CREATE TABLE IF NOT EXISTS lkpersist_events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        time INTEGER NOT NULL,
        kind TEXT NOT NULL,
        identity TEXT NOT NULL,
        reconnect_count INTEGER
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
            for statement in SCHEMA:
                conn.execute(statement)
            conn.execute(  # older layouts are upgraded in place: every version so far only added tables
                "INSERT INTO lkpersist_meta (key, value) VALUES ('schema_version', ?1) ON CONFLICT (key) "
                "DO UPDATE SET value = ?1 WHERE CAST(value AS INTEGER) < CAST(?1 AS INTEGER)",
                (str(STORAGE_VERSION),),
            )
            _check_version(_stored_version(conn))


def check_schema(conn: sqlite3.Connection) -> None:
    """For a read-only connection: the file must hold lkpersist's tables, in a layout this version reads.

    An older layout is read as it is (it lacks only tables added later: events, locks, analytics).
    """
    version = _stored_version(conn)
    if version is None:
        raise sqlite3.DatabaseError("it holds no lkpersist tables (and is read-only here, so none can be created)")
    _check_version(version)


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
