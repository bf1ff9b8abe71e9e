"""Named locks for ``sqlite://``: an ``lkpersist_locks`` table in the store file (semantics in
:mod:`lkpersist.stores.locks`). Each operation is one statement, so atomic across processes on the write lock;
expiry is judged by the caller's store clock (milliseconds), never by SQLite's own time functions.
"""

from __future__ import annotations

import sqlite3


def acquire(conn: sqlite3.Connection, name: str, token: str, now_ms: int, ttl_ms: int) -> bool:
    """Insert the lock, or take over an expired one; False when a live holder has it."""
    taken = conn.execute(
        "INSERT INTO lkpersist_locks (name, token, expires_at) VALUES (:name, :token, :expires) "
        "ON CONFLICT (name) DO UPDATE SET token = excluded.token, expires_at = excluded.expires_at "
        "WHERE lkpersist_locks.expires_at <= :now",
        {"name": name, "token": token, "expires": now_ms + ttl_ms, "now": now_ms},
    ).rowcount
    return taken == 1


def release(conn: sqlite3.Connection, name: str, token: str, now_ms: int) -> bool:
    """Compare-and-delete: only this token's row goes; True when it had not expired yet."""
    row = conn.execute(
        "DELETE FROM lkpersist_locks WHERE name = ? AND token = ? RETURNING expires_at", (name, token)
    ).fetchone()
    return row is not None and int(row[0]) > now_ms


def extend(conn: sqlite3.Connection, name: str, token: str, now_ms: int, ttl_ms: int) -> bool:
    """Move this token's unexpired lock to now + ttl; False when it expired or is someone else's."""
    return conn.execute(
        "UPDATE lkpersist_locks SET expires_at = ? WHERE name = ? AND token = ? AND expires_at > ?",
        (now_ms + ttl_ms, name, token, now_ms),
    ).rowcount == 1
