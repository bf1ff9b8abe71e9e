"""``SQLiteStore.apply_offline``: merge an outage's journal into one identity in one IMMEDIATE transaction.

The record is read whether live or expired (the merge rule decides what an expired record means), the
rule in :mod:`lkpersist.model.reconcile` runs, and the row and its turns are rewritten before the
transaction commits, so other processes see the identity before or after the merge, never halfway.
"""

from __future__ import annotations

import sqlite3

from lkpersist.clock import from_ms
from lkpersist.crypto.codec import ValueCodec
from lkpersist.model.reconcile import OfflineDelta, reconcile
from lkpersist.model.session import Session, Turn
from lkpersist.stores.settings import StoreSettings
from lkpersist.stores.sqlite.events import record_events
from lkpersist.stores.sqlite.rows import (
    ALL_COLUMNS,
    INSERT_SESSION,
    encode_turn,
    ops_params,
    personal_params,
    session_from_row,
    turn_from_payload,
)
from lkpersist.stores.sqlite.transactions import immediate


def apply_offline(
    conn: sqlite3.Connection, settings: StoreSettings, delta: OfflineDelta, now_ms: int
) -> Session | None:
    """Run on the store's worker thread (``Database.run``)."""
    identity = delta.identity
    with immediate(conn):
        row = conn.execute(f"SELECT {ALL_COLUMNS} FROM lkpersist_sessions WHERE identity = ?", (identity,)).fetchone()
        stored = None if row is None else session_from_row(row, settings.codec)
        turns = [] if row is None else _turns(conn, identity, int(row[0]), settings.codec)
        result = reconcile(stored, turns, delta, from_ms(now_ms), settings.ttl_policy, settings.max_turns)
        record_events(conn, result.events)
        if row is not None:
            conn.execute("DELETE FROM lkpersist_turns WHERE session_id = ?", (row[0],))
        if result.session is None:
            conn.execute("DELETE FROM lkpersist_sessions WHERE identity = ?", (identity,))
            return None
        params = {**ops_params(result.session), **personal_params(result.session, settings.codec)}
        (session_id,) = conn.execute(INSERT_SESSION, params).fetchone()
        conn.executemany(
            "INSERT INTO lkpersist_turns (session_id, seq, item_id, payload) VALUES (?, ?, ?, ?)",
            [(session_id, seq, t.item_id, encode_turn(t, settings.codec)) for seq, t in enumerate(result.turns, 1)],
        )
        return result.session


def _turns(conn: sqlite3.Connection, identity: str, session_id: int, codec: ValueCodec) -> list[Turn]:
    rows = conn.execute(
        "SELECT CAST(payload AS BLOB) FROM lkpersist_turns WHERE session_id = ? ORDER BY seq", (session_id,)
    ).fetchall()
    return [turn_from_payload(identity, payload, codec) for (payload,) in rows]


__all__ = ["apply_offline"]
