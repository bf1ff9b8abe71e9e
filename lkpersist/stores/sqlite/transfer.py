"""Export and import for ``SQLiteStore``: whole records (a session row and its turns) read a page at a
time in row-id order, and imported records written by :func:`~lkpersist.stores.sqlite.reconcile.write_whole`.

Reads run in one snapshot per page, so a record's session and turns agree. An import batch is one
``BEGIN IMMEDIATE`` transaction (one hop to the worker thread and one commit for hundreds of sessions);
within it each record is read, decided by :func:`lkpersist.model.transfer.decide_import` and rewritten
whole, so no session is ever half-written, and a stored record that does not decode is left alone.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from lkpersist.clock import from_ms
from lkpersist.crypto.codec import ValueCodec
from lkpersist.exceptions import CorruptRecordError, DecryptionError
from lkpersist.model.events import SessionEvent
from lkpersist.model.results import CorruptRecord
from lkpersist.model.session import Status
from lkpersist.model.transfer import ConflictRule, ImportOutcome, SessionRecord, decide_import
from lkpersist.stores.settings import StoreSettings
from lkpersist.stores.sqlite.events import record_events
from lkpersist.stores.sqlite.queries import STATUS_FILTER
from lkpersist.stores.sqlite.reconcile import read_whole, write_whole
from lkpersist.stores.sqlite.rows import ALL_COLUMNS, Row, session_from_row, turns_from_payloads
from lkpersist.stores.sqlite.transactions import immediate, snapshot

Loaded = SessionRecord | CorruptRecord


def scan_page(
    conn: sqlite3.Connection, codec: ValueCodec, status: Status, now_ms: int, after_id: int, limit: int
) -> tuple[list[Loaded], int | None]:
    """The next ``limit`` matching records after row id ``after_id``, and the id to continue after (None: done)."""
    with snapshot(conn):
        rows = conn.execute(
            f"SELECT {ALL_COLUMNS} FROM lkpersist_sessions WHERE id > :after AND {STATUS_FILTER[status]} "
            "ORDER BY id LIMIT :limit",
            {"after": after_id, "now": now_ms, "limit": limit},
        ).fetchall()
        if not rows:
            return [], None
        payloads = _payloads(conn, "session_id BETWEEN ? AND ?", (rows[0][0], rows[-1][0]))
    return [_record(row, payloads.get(int(row[0]), []), codec) for row in rows], int(rows[-1][0])


def load(conn: sqlite3.Connection, codec: ValueCodec, identities: Sequence[str]) -> list[Loaded | None]:
    """The records of ``identities`` (live or expired), None where absent, in the order asked."""
    marks = ", ".join("?" * len(identities))
    with snapshot(conn):
        rows = conn.execute(f"SELECT {ALL_COLUMNS} FROM lkpersist_sessions WHERE identity IN ({marks})",
                            tuple(identities)).fetchall()
        ids = tuple(int(row[0]) for row in rows)
        payloads = _payloads(conn, f"session_id IN ({', '.join('?' * len(ids))})", ids) if ids else {}
    by_identity = {row[1]: _record(row, payloads.get(int(row[0]), []), codec) for row in rows}
    return [by_identity.get(identity) for identity in identities]


def import_batch(
    conn: sqlite3.Connection, settings: StoreSettings, records: Sequence[SessionRecord], rule: ConflictRule,
    now_ms: int,
) -> list[ImportOutcome]:
    """Run on the store's worker thread: every record of the batch in one transaction, each whole."""
    outcomes = []
    events: list[SessionEvent] = []
    now = from_ms(now_ms)
    with immediate(conn):
        for record in records:
            identity = record.session.identity
            try:
                row_id, stored, turns = read_whole(conn, identity, settings.codec)
            except (CorruptRecordError, DecryptionError):
                outcomes.append(ImportOutcome.FAILED)
                continue
            decision = decide_import(stored, turns, record, rule, now, settings.max_turns)
            if decision.write is not None:
                write_whole(conn, settings, identity, row_id, decision.write)
                events += decision.write.events
            outcomes.append(decision.outcome)
        record_events(conn, events)
    return outcomes


def _payloads(conn: sqlite3.Connection, where: str, params: tuple[Any, ...]) -> dict[int, list[bytes]]:
    found: dict[int, list[bytes]] = defaultdict(list)
    for session_id, payload in conn.execute(
        f"SELECT session_id, CAST(payload AS BLOB) FROM lkpersist_turns WHERE {where} ORDER BY session_id, seq",
        params,
    ):
        found[session_id].append(payload)
    return found


def _record(row: Row, payloads: list[bytes], codec: ValueCodec) -> Loaded:
    identity = row[1]
    try:
        session = session_from_row(row, codec)
        return SessionRecord(session, tuple(turns_from_payloads(identity, payloads, codec)))
    except CorruptRecordError as exc:  # undecryptable (a wrong key) stays an error for the whole read, as in ls
        return CorruptRecord(identity=identity, reason=exc.reason)


__all__ = ["import_batch", "load", "scan_page"]
