"""Whole-record rewrites of one identity in one IMMEDIATE transaction: an outage merged back
(``SQLiteStore.apply_offline``) and an imported record (:mod:`~lkpersist.stores.sqlite.transfer`).

The record is read whether live or expired (the rule decides what an expired record means), a pure rule
from :mod:`lkpersist.model` runs, and the row and its turns are rewritten before the transaction
commits, so other processes see the identity before or after, never halfway.
"""

from __future__ import annotations

import sqlite3

from lkpersist.clock import from_ms
from lkpersist.crypto.codec import ValueCodec
from lkpersist.model.analytics import offline_tally
from lkpersist.model.reconcile import OfflineDelta, Reconciled, reconcile
from lkpersist.model.session import Session, Turn
from lkpersist.stores.settings import StoreSettings
from lkpersist.stores.sqlite import analytics
from lkpersist.stores.sqlite.events import record_events
from lkpersist.stores.sqlite.rows import (
    ALL_COLUMNS,
    INSERT_SESSION,
    encode_turn,
    ops_params,
    personal_params,
    session_from_row,
    turns_from_payloads,
)
from lkpersist.stores.sqlite.transactions import immediate

StoredWhole = tuple[int | None, Session | None, list[Turn]]
"""(row id, session, turns) of one identity as stored, live or expired; (None, None, []) when absent."""


def apply_offline(
    conn: sqlite3.Connection, settings: StoreSettings, delta: OfflineDelta, now_ms: int
) -> Session | None:
    """Run on the store's worker thread (``Database.run``)."""
    with immediate(conn):
        row_id, stored, turns = read_whole(conn, delta.identity, settings.codec)
        result = reconcile(stored, turns, delta, from_ms(now_ms), settings.ttl_policy, settings.max_turns)
        write_whole(conn, settings, delta.identity, row_id, result)
        tally = offline_tally(settings.analytics, delta, stored, result.session)
        if tally is not None:
            analytics.offline(conn, settings.analytics, delta.identity, tally, now_ms)
        record_events(conn, result.events)
        return result.session


def read_whole(conn: sqlite3.Connection, identity: str, codec: ValueCodec) -> StoredWhole:
    """The identity's row and turns, decoded (CorruptRecordError/DecryptionError when they do not decode)."""
    row = conn.execute(f"SELECT {ALL_COLUMNS} FROM lkpersist_sessions WHERE identity = ?", (identity,)).fetchone()
    if row is None:
        return None, None, []
    return int(row[0]), session_from_row(row, codec), _turns(conn, identity, int(row[0]), codec)


def write_whole(
    conn: sqlite3.Connection, settings: StoreSettings, identity: str, row_id: int | None, result: Reconciled
) -> None:
    """Replace the identity's row and turns with ``result`` (inside the caller's transaction, which also
    records ``result.events``: an import writes a whole batch's events at once)."""
    if row_id is not None:
        conn.execute("DELETE FROM lkpersist_turns WHERE session_id = ?", (row_id,))
    if result.session is None:
        conn.execute("DELETE FROM lkpersist_sessions WHERE identity = ?", (identity,))
        return
    params = {**ops_params(result.session), **personal_params(result.session, settings.codec)}
    (session_id,) = conn.execute(INSERT_SESSION, params).fetchone()
    conn.executemany(
        "INSERT INTO lkpersist_turns (session_id, seq, item_id, payload) VALUES (?, ?, ?, ?)",
        [(session_id, seq, t.item_id, encode_turn(t, settings.codec)) for seq, t in enumerate(result.turns, 1)],
    )


def _turns(conn: sqlite3.Connection, identity: str, session_id: int, codec: ValueCodec) -> list[Turn]:
    rows = conn.execute(
        "SELECT CAST(payload AS BLOB) FROM lkpersist_turns WHERE session_id = ? ORDER BY seq", (session_id,)
    ).fetchall()
    return turns_from_payloads(identity, [payload for (payload,) in rows], codec)


__all__ = ["StoredWhole", "apply_offline", "read_whole", "write_whole"]
