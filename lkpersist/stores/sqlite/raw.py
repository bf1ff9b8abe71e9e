"""Encryption migration, SQLite side: personal columns read raw and rewritten by compare-and-set.

Pages follow the rowid (stable while agents write: a reconnect after expiry reuses its row), each page
read in one snapshot. A batch of rewrites is one ``BEGIN IMMEDIATE`` transaction of
``UPDATE ... WHERE id = ? AND <column> = <old>`` statements, so it interleaves safely with the agents'
own transactions and never touches an operational column. ``secure_delete`` is on while rewriting, so
the pages that held the plaintext are zeroed instead of left in the file's free space; the WAL is
checkpointed at the end of a run for the same reason.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Sequence
from typing import Any

from lkpersist.stores.raw import Batch, StoredRecord, StoredValue, text_or_none
from lkpersist.stores.sqlite.db import Database
from lkpersist.stores.sqlite.transactions import immediate, snapshot

_COLUMNS = ("language", "metadata", "context")
_SESSIONS = (
    "SELECT id, identity, CAST(language AS BLOB), CAST(metadata AS BLOB), CAST(context AS BLOB) "
    "FROM lkpersist_sessions"
)
_TURNS = "SELECT id, session_id, CAST(payload AS BLOB) FROM lkpersist_turns"
_SET_COLUMN = {name: f"UPDATE lkpersist_sessions SET {name} = ? WHERE id = ? AND {name} = ?" for name in _COLUMNS}
_SET_TURN = "UPDATE lkpersist_turns SET payload = ? WHERE id = ? AND payload = ?"


class SQLiteStoredValues:
    """:class:`~lkpersist.stores.raw.StoredValues` over one SQLite store's file."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def pages(self, page_size: int) -> AsyncIterator[list[StoredRecord]]:
        after = 0
        while True:
            after, records = await self._db.run(_page, after, page_size)
            if not records:
                await self._db.run(_checkpoint)
                return
            yield records

    async def reread(self, identities: Sequence[str]) -> list[StoredRecord]:
        return await self._db.run(_by_identity, list(identities))

    async def rewrite(self, batch: Batch) -> list[int]:
        return await self._db.run(_rewrite, batch)


def _page(conn: sqlite3.Connection, after: int, limit: int) -> tuple[int, list[StoredRecord]]:
    with snapshot(conn):
        sessions = conn.execute(f"{_SESSIONS} WHERE id > ? ORDER BY id LIMIT ?", (after, limit)).fetchall()
        if not sessions:
            return after, []
        turns = conn.execute(
            f"{_TURNS} WHERE session_id BETWEEN ? AND ? ORDER BY session_id, seq", (sessions[0][0], sessions[-1][0])
        ).fetchall()
    return int(sessions[-1][0]), _records(sessions, turns)


def _by_identity(conn: sqlite3.Connection, identities: list[str]) -> list[StoredRecord]:
    marks = ",".join("?" * len(identities))
    with snapshot(conn):
        sessions = conn.execute(f"{_SESSIONS} WHERE identity IN ({marks}) ORDER BY id", identities).fetchall()
        ids = [row[0] for row in sessions]
        turns = conn.execute(
            f"{_TURNS} WHERE session_id IN ({','.join('?' * len(ids))}) ORDER BY session_id, seq", ids
        ).fetchall()
    return _records(sessions, turns)


def _records(sessions: list[Any], turns: list[Any]) -> list[StoredRecord]:
    by_session: dict[int, list[StoredValue]] = {row[0]: [] for row in sessions}
    for turn_id, session_id, payload in turns:
        if session_id in by_session:
            by_session[session_id].append(StoredValue(("t", turn_id), text_or_none(payload)))
    records = []
    for session_id, identity, *personal in sessions:
        columns = [
            StoredValue(("s", session_id, name), text_or_none(raw))
            for name, raw in zip(_COLUMNS, personal, strict=True)
            if raw is not None
        ]
        records.append(StoredRecord(identity, (*columns, *by_session[session_id])))
    return records


def _rewrite(conn: sqlite3.Connection, batch: Batch) -> list[int]:
    previous = conn.execute("PRAGMA secure_delete").fetchone()[0]
    conn.execute("PRAGMA secure_delete = ON")
    try:
        with immediate(conn):
            return [sum(_apply(conn, rewrite.ref, rewrite.old, rewrite.new) for rewrite in rewrites)
                    for _identity, rewrites in batch]
    finally:
        conn.execute(f"PRAGMA secure_delete = {int(previous)}")


def _apply(conn: sqlite3.Connection, ref: Any, old: str, new: str) -> int:
    if ref[0] == "t":
        return conn.execute(_SET_TURN, (new, ref[1], old)).rowcount
    return conn.execute(_SET_COLUMN[ref[2]], (new, ref[1], old)).rowcount


def _checkpoint(conn: sqlite3.Connection) -> None:
    """Copy the WAL into the file and truncate it, so old page images do not linger in the WAL."""
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
