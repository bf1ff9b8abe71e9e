"""The lifecycle writes of ``SQLiteStore``, run on the store's worker thread (``Database.run``).

Each is one ``BEGIN IMMEDIATE`` transaction that reads the row, applies the pure rule from
:mod:`lkpersist.model.lifecycle` and writes the result (and its session events), so processes racing
on one identity queue on the write lock and never lose an update. They take the thread's connection
first and the store's :class:`~lkpersist.stores.settings.StoreSettings`, never the store.
"""

from __future__ import annotations

import sqlite3

from lkpersist.clock import from_ms
from lkpersist.exceptions import SessionNotFoundError
from lkpersist.model.events import arrival_events
from lkpersist.model.lifecycle import merge_update
from lkpersist.model.presence import (
    ArrivalRequest,
    arrive_transition,
    beat_transition,
    claim_transition,
    leave_outcome,
)
from lkpersist.model.results import Arrival
from lkpersist.model.session import SUMMARY_KEY, CoveredTurns, Session, SessionChanges
from lkpersist.stores.settings import StoreSettings
from lkpersist.stores.sqlite import analytics, queries
from lkpersist.stores.sqlite.events import record_events
from lkpersist.stores.sqlite.rows import (
    INSERT_ARRIVAL,
    UPDATE_OPS,
    UPDATE_PERSONAL,
    UPDATE_VISIT,
    ops_values,
    personal_params,
    personal_values,
    turns_from_payloads,
)
from lkpersist.stores.sqlite.transactions import immediate


def arrive(
    conn: sqlite3.Connection, settings: StoreSettings, identity: str, now_ms: int, request: ArrivalRequest
) -> Arrival:
    """The whole arrival in one transaction: the row, the rule, the write, the turns a greeting restores."""
    now = from_ms(now_ms)
    with immediate(conn):
        row = queries.stored(conn, identity, now_ms, settings.codec)
        current = None if row is None else row[2]
        session, visit = arrive_transition(current, identity, request, now, settings.presence)
        replaced = None
        # analytics count visits (returns, new sessions), not joined connections: the session's counters
        # are written with its row (UPDATE_VISIT, INSERT_ARRIVAL), its day's are its event, which carries
        # the identity's hash for the roll-up to count (analytics.py)
        day = settings.analytics.day(now) if visit.new_visit else None
        if row is not None and current is not None:  # a visit reopened here is a return (visit 2 or later)
            if day:
                conn.execute(UPDATE_VISIT, (*ops_values(session), day, row[0]))
            else:
                conn.execute(UPDATE_OPS, (*ops_values(session), row[0]))
        else:  # a new session replaces an absent or expired one (in its row), and that one's turns go
            conn.execute(
                INSERT_ARRIVAL, (identity, *ops_values(session), *personal_values(session, settings.codec), day)
            )
            if row is not None:
                replaced = row[1]
                conn.execute("DELETE FROM lkpersist_turns WHERE session_id = ?", (row[0],))
        turns = []
        if visit.wants_turns(request):
            payloads = queries.recent_payloads(conn, identity, now_ms, request.restore_turns)
            turns = turns_from_payloads(identity, payloads[::-1], settings.codec)
        arrival = visit.arrival(session, turns)
        hashed = analytics.identity_hash(conn, settings.analytics, identity) if day else None
        record_events(conn, arrival_events(arrival, now, replaced), hashed)
        return arrival


def leave(
    conn: sqlite3.Connection, settings: StoreSettings, identity: str, now_ms: int, connection: str, reason: str | None
) -> Session | None:
    with immediate(conn):
        found = queries.live(conn, identity, now_ms, settings.codec)
        if found is None:
            return None
        updated, events = leave_outcome(found[1], connection, from_ms(now_ms), settings.presence, reason)
        if updated != found[1]:
            conn.execute(UPDATE_OPS, (*ops_values(updated), found[0]))
        record_events(conn, events)
        return updated


def beat(conn: sqlite3.Connection, settings: StoreSettings, identity: str, now_ms: int, connection: str) -> bool:
    with immediate(conn):
        found = queries.live(conn, identity, now_ms, settings.codec, personal=False)
        beaten = None if found is None else beat_transition(found[1], connection, from_ms(now_ms), settings.presence)
        if found is None or beaten is None:
            return False
        conn.execute(UPDATE_OPS, (*ops_values(beaten), found[0]))
        return True


def claim_greeting(conn: sqlite3.Connection, settings: StoreSettings, identity: str, now_ms: int) -> bool:
    with immediate(conn):
        found = queries.live(conn, identity, now_ms, settings.codec, personal=False)
        claimed = None if found is None else claim_transition(found[1], from_ms(now_ms), settings.presence)
        if found is None or claimed is None:
            return False
        conn.execute(UPDATE_OPS, (*ops_values(claimed), found[0]))
        return True


def update(
    conn: sqlite3.Connection, settings: StoreSettings, identity: str, now_ms: int, changes: SessionChanges
) -> Session:
    with immediate(conn):
        found = queries.live(conn, identity, now_ms, settings.codec)
        if found is None:
            raise SessionNotFoundError(identity)
        updated = merge_update(found[1], changes)
        conn.execute(UPDATE_PERSONAL, {**personal_params(updated, settings.codec), "id": found[0]})
        return updated


_APPEND_TURN = (
    "INSERT OR IGNORE INTO lkpersist_turns (session_id, seq, item_id, payload) "
    "SELECT id, COALESCE((SELECT MAX(seq) FROM lkpersist_turns WHERE session_id = s.id), 0) + 1, ?3, ?4 "
    "FROM lkpersist_sessions AS s WHERE identity = ?1 AND deadline > ?2 RETURNING session_id, seq"
)
"""Parameters (identity, now ms, item id, payload); returns the new turn's session id and seq, or nothing
when the session is not live or the item id is already recorded (``INSERT OR IGNORE``)."""


def append_turn(
    conn: sqlite3.Connection, settings: StoreSettings, identity: str, now_ms: int, payload: str, item_id: str | None
) -> bool:
    """Insert the encoded turn unless its item id is recorded, then trim to the newest ``max_turns``.

    Runs inside the transaction ``Database.write`` opens (appends queued together share one COMMIT).
    One statement finds the live session and inserts; a second runs only when something is trimmed.
    Turns of a session are numbered 1, 2, 3 ... with no gaps (trimming takes the oldest, a new session
    or a reconciliation rewrites them all from 1), so the newest ``max_turns`` are those numbered above
    ``seq - max_turns``: an index probe, not a walk over the kept turns.
    """
    row = conn.execute(_APPEND_TURN, (identity, now_ms, item_id, payload)).fetchone()
    if row is None:
        if conn.execute(f"SELECT 1 FROM lkpersist_sessions WHERE {queries.LIVE}", (identity, now_ms)).fetchone():
            return False  # a duplicate item id
        raise SessionNotFoundError(identity)
    session_id, seq = row
    if seq > settings.max_turns:
        conn.execute(
            "DELETE FROM lkpersist_turns WHERE session_id = ? AND seq <= ?", (session_id, seq - settings.max_turns)
        )
    analytics.recorded_turn(conn, settings.analytics, session_id, now_ms)
    return True


def compact_turns(
    conn: sqlite3.Connection,
    settings: StoreSettings,
    identity: str,
    now_ms: int,
    summary: str,
    covered: CoveredTurns,
) -> bool:
    """Drop the covered turns and set the summary in one transaction, if they are still the oldest."""
    with immediate(conn):
        found = queries.live(conn, identity, now_ms, settings.codec)
        if found is None:
            raise SessionNotFoundError(identity)
        oldest = conn.execute(
            "SELECT seq, item_id FROM lkpersist_turns WHERE session_id = ? ORDER BY seq LIMIT ?",
            (found[0], covered.count),
        ).fetchall()
        if len(oldest) != covered.count or (oldest[0][1], oldest[-1][1]) != (covered.first, covered.last):
            return False
        last_seq = oldest[-1][0]
        conn.execute("DELETE FROM lkpersist_turns WHERE session_id = ? AND seq <= ?", (found[0], last_seq))
        updated = merge_update(found[1], SessionChanges(context={SUMMARY_KEY: summary}))
        conn.execute(UPDATE_PERSONAL, {**personal_params(updated, settings.codec), "id": found[0]})
        return True


__all__ = ["append_turn", "arrive", "beat", "claim_greeting", "compact_turns", "leave", "update"]
