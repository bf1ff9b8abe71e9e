"""The SQL of ``SQLiteStore``'s reads, deletes and purges, run on the store's worker thread (``Database.run``).

Each function takes the thread's connection first; those that write open their own ``BEGIN IMMEDIATE``.
Liveness is ``deadline > now`` on the indexed column, so an expired row is never decoded.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from lkpersist.crypto.codec import ValueCodec
from lkpersist.model.session import Session, Status
from lkpersist.stores.sqlite.events import write_event_rows
from lkpersist.stores.sqlite.rows import ALL_COLUMNS, OPS_COLUMNS, READ_COLUMNS, Row, session_from_row
from lkpersist.stores.sqlite.transactions import immediate, snapshot

LIVE = "identity = ? AND deadline > ?"
"""WHERE clause of one identity's live row: parameters (identity, now ms)."""
STATUS_FILTER = {"active": "deadline > :now", "expired": "deadline <= :now", "all": "1"}
StoredRow = tuple[int, int, "Session | None"]
"""What :func:`stored` finds: (row id, reconnect_count, the session if live)."""


_LIVE = {
    personal: f"SELECT {ALL_COLUMNS if personal else OPS_COLUMNS} FROM lkpersist_sessions WHERE {LIVE}"
    for personal in (True, False)
}


def live(
    conn: sqlite3.Connection, identity: str, now_ms: int, codec: ValueCodec, *, personal: bool = True
) -> tuple[int, Session] | None:
    """The live session's row id and session; None when absent or expired (an expired row is never decoded).

    With ``personal=False`` only the operational fields are read: heartbeats never decode personal data.
    """
    row = conn.execute(_LIVE[personal], (identity, now_ms)).fetchone()
    return None if row is None else (int(row[0]), session_from_row(row, codec, personal=personal))


def live_session(conn: sqlite3.Connection, identity: str, now_ms: int, codec: ValueCodec) -> Session | None:
    """What ``get`` returns: the live session with its turn count, or None."""
    row = conn.execute(f"SELECT {READ_COLUMNS} FROM lkpersist_sessions WHERE {LIVE}", (identity, now_ms)).fetchone()
    return None if row is None else session_from_row(row, codec)


def delete(conn: sqlite3.Connection, identity: str, now_ms: int) -> bool:
    with immediate(conn):
        row = conn.execute(
            "DELETE FROM lkpersist_sessions WHERE identity = ? RETURNING id, reconnect_count", (identity,)
        ).fetchone()
        if row is None:
            return False
        conn.execute("DELETE FROM lkpersist_turns WHERE session_id = ?", (row[0],))
        write_event_rows(conn, [(now_ms, "deleted", identity, row[1])])
        return True


_STORED = f"SELECT deadline > ?, {ALL_COLUMNS} FROM lkpersist_sessions WHERE identity = ?"


def stored(conn: sqlite3.Connection, identity: str, now_ms: int, codec: ValueCodec) -> StoredRow | None:
    """The identity's row id, its reconnect_count, and its session when live (an expired row is never
    decoded), in one statement; None when there is no row."""
    row = conn.execute(_STORED, (now_ms, identity)).fetchone()
    if row is None:
        return None
    columns = row[1:]
    return int(columns[0]), int(columns[4]), session_from_row(columns, codec) if row[0] else None


def recent_payloads(conn: sqlite3.Connection, identity: str, now_ms: int, limit: int) -> list[Any]:
    """Newest first; one statement, so the liveness check and the turns come from one snapshot."""
    rows = conn.execute(
        "SELECT CAST(t.payload AS BLOB) FROM lkpersist_turns AS t JOIN lkpersist_sessions AS s "
        "ON t.session_id = s.id WHERE s.identity = ? AND s.deadline > ? ORDER BY t.seq DESC LIMIT ?",
        (identity, now_ms, limit),
    ).fetchall()
    return [row[0] for row in rows]


def page_rows(
    conn: sqlite3.Connection, status: Status, now_ms: int, limit: int, after: tuple[int, str] | None
) -> list[Row]:
    """Keyset pagination along the listing index: starts at the cursor, reads ``limit`` rows, no sort."""
    where = [STATUS_FILTER[status]]
    if after is not None:
        where.append("last_seen <= :after_ms AND (last_seen < :after_ms OR identity > :after_id)")
    params = {"now": now_ms, "limit": limit, "after_ms": after and after[0], "after_id": after and after[1]}
    return conn.execute(
        f"SELECT {READ_COLUMNS} FROM lkpersist_sessions INDEXED BY lkpersist_sessions_by_last_seen "
        f"WHERE {' AND '.join(where)} ORDER BY last_seen DESC, identity LIMIT :limit",
        params,
    ).fetchall()


def count(conn: sqlite3.Connection, status: Status, now_ms: int) -> int:
    sql = f"SELECT COUNT(*) FROM lkpersist_sessions WHERE {STATUS_FILTER[status]}"
    return int(conn.execute(sql, {"now": now_ms}).fetchone()[0])


def census_counts(conn: sqlite3.Connection, now_ms: int, stale_ms: int, fresh_ms: int) -> tuple[int, ...]:
    """(active, expired, stale, connected, turns) in one snapshot, each from an index.

    ``stale_ms``: expired before this; ``fresh_ms``: connected sessions refreshed after this are present
    (a range of the listing index, so only recently seen rows are looked at).
    """
    params = {"now": now_ms, "stale": stale_ms, "fresh": fresh_ms}
    with snapshot(conn):
        counts = [
            conn.execute(f"SELECT COUNT(*) FROM lkpersist_sessions WHERE {where}", params).fetchone()[0]
            for where in ("deadline > :now", "deadline <= :now", "deadline <= :stale")
        ]
        connected = conn.execute(
            "SELECT COUNT(*) FROM lkpersist_sessions INDEXED BY lkpersist_sessions_by_last_seen "
            "WHERE last_seen > :fresh AND deadline > :now AND connected = 1",
            params,
        ).fetchone()[0]
        turns = conn.execute("SELECT COUNT(*) FROM lkpersist_turns").fetchone()[0]
    return (*(int(n) for n in counts), int(connected), int(turns))


def layout_version(conn: sqlite3.Connection) -> int | None:
    row = conn.execute("SELECT value FROM lkpersist_meta WHERE key = 'schema_version'").fetchone()
    return None if row is None else int(row[0])


def count_purgeable(conn: sqlite3.Connection, params: dict[str, Any]) -> int:
    """What a purge would delete: expired, plus live ones last seen before the cutoff (each index once)."""
    expired = conn.execute("SELECT COUNT(*) FROM lkpersist_sessions WHERE deadline <= :now", params).fetchone()[0]
    if params["cutoff"] is None:
        return int(expired)
    old = conn.execute(
        "SELECT COUNT(*) FROM lkpersist_sessions INDEXED BY lkpersist_sessions_by_last_seen "
        "WHERE last_seen < :cutoff AND deadline > :now",
        params,
    ).fetchone()[0]
    return int(expired) + int(old)


def purge_chunk(conn: sqlite3.Connection, condition: str, params: dict[str, Any]) -> int:
    """Delete one chunk and write each removed session's event: expired, or purged when it was still live."""
    with immediate(conn):
        rows = conn.execute(
            "DELETE FROM lkpersist_sessions WHERE id IN "
            f"(SELECT id FROM lkpersist_sessions WHERE {condition} LIMIT :batch) "
            "RETURNING id, identity, reconnect_count, deadline",
            params,
        ).fetchall()
        conn.executemany("DELETE FROM lkpersist_turns WHERE session_id = ?", [(row[0],) for row in rows])
        now = params["now"]
        write_event_rows(conn, [(now, "expired" if d <= now else "purged", i, r) for _, i, r, d in rows])
        return len(rows)


__all__ = [
    "LIVE",
    "STATUS_FILTER",
    "census_counts",
    "count",
    "count_purgeable",
    "delete",
    "layout_version",
    "live",
    "live_session",
    "page_rows",
    "purge_chunk",
    "recent_payloads",
    "stored",
]
