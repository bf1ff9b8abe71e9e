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
from collections.abc import Iterable, Iterator, Sequence
from functools import lru_cache
from itertools import chain, islice, repeat
from operator import itemgetter
from typing import Any

from lkpersist.clock import from_ms
from lkpersist.crypto.codec import PlainCodec, PlainGuardCodec, ValueCodec
from lkpersist.exceptions import CorruptRecordError, DecryptionError
from lkpersist.model.events import SessionEvent
from lkpersist.model.jsonform import compact_json, parse_json, plain_object
from lkpersist.model.results import CorruptRecord
from lkpersist.model.session import Session, Status
from lkpersist.model.transfer import (
    ConflictRule,
    ImportOutcome,
    SessionRecord,
    creation_events,
    decide_import,
)
from lkpersist.stores.bulk import TurnDicts, json_text, spliced_page, turn_dicts, turn_payloads
from lkpersist.stores.settings import StoreSettings
from lkpersist.stores.sqlite.events import record_events
from lkpersist.stores.sqlite.queries import STATUS_FILTER
from lkpersist.stores.sqlite.reconcile import read_whole, write_whole
from lkpersist.stores.sqlite.rows import (
    ALL_COLUMNS,
    OPS_FIELDS,
    PERSONAL_FIELDS,
    Row,
    ops_values,
    session_from_row,
    turns_from_payloads,
)
from lkpersist.stores.sqlite.transactions import immediate, snapshot

Loaded = SessionRecord | CorruptRecord
SCAN_ROWS = 100
"""The most sessions :func:`scan_page` reads at once: an export decodes a page on this thread while it
writes the previous one on its own, and a page of 500 (about 1.5 MB of records) no longer stays in the
CPU's caches between the two (100 measured about 10 % faster per session; a page costs ~100 µs more)."""


def scan_page(
    conn: sqlite3.Connection, codec: ValueCodec, status: Status, now_ms: int, after_id: int, limit: int
) -> tuple[list[Loaded], int | None]:
    """The next matching records after row id ``after_id`` (at most ``limit``, and at most ``SCAN_ROWS``),
    and the id to continue after (None: done)."""
    limit = min(limit, SCAN_ROWS)
    with snapshot(conn):
        rows = conn.execute(
            f"SELECT {ALL_COLUMNS} FROM lkpersist_sessions WHERE id > :after AND {STATUS_FILTER[status]} "
            "ORDER BY id LIMIT :limit",
            {"after": after_id, "now": now_ms, "limit": limit},
        ).fetchall()
        if not rows:
            return [], None
        payloads = _payloads(conn, "session_id BETWEEN ? AND ?", (rows[0][0], rows[-1][0]))
    return _records(rows, payloads, codec), int(rows[-1][0])


def load(conn: sqlite3.Connection, codec: ValueCodec, identities: Sequence[str]) -> list[Loaded | None]:
    """The records of ``identities`` (live or expired), None where absent, in the order asked."""
    marks = ", ".join("?" * len(identities))
    with snapshot(conn):
        rows = conn.execute(f"SELECT {ALL_COLUMNS} FROM lkpersist_sessions WHERE identity IN ({marks})",
                            tuple(identities)).fetchall()
        ids = tuple(int(row[0]) for row in rows)
        payloads = _payloads(conn, f"session_id IN ({', '.join('?' * len(ids))})", ids) if ids else {}
    by_identity = {row[1]: record for row, record in zip(rows, _records(rows, payloads, codec), strict=True)}
    return [by_identity.get(identity) for identity in identities]


def import_batch(
    conn: sqlite3.Connection, settings: StoreSettings, records: Sequence[SessionRecord], rule: ConflictRule,
    now_ms: int,
) -> list[ImportOutcome]:
    """Run on the store's worker thread: every record of the batch in one transaction, each whole.

    Identities without a row are written together (one statement per table for all of them); the
    others are decided and rewritten one by one, their stored records read ``SCAN_ROWS`` at a time (two
    statements, not two per record). A record whose identity is waiting to be written earlier in the
    batch first has those written, and one whose identity was written earlier in the batch is read
    again, so each sees the earlier lines as the file's order says."""
    outcomes: list[ImportOutcome] = []
    events: list[list[SessionEvent]] = []
    now = from_ms(now_ms)
    with immediate(conn):
        stored = _stored_identities(conn, [record.session.identity for record in records])
        fresh: dict[str, SessionRecord] = {}  # to be written together, by identity
        written: set[str] = set()  # rewritten in this batch: what was read before is stale
        for start in range(0, len(records), SCAN_ROWS):
            part = records[start:start + SCAN_ROWS]
            read = _stored_wholes(conn, [r.session.identity for r in part if r.session.identity in stored])
            for record in part:
                identity = record.session.identity
                if identity not in stored and identity not in fresh:
                    fresh[identity] = record
                    outcomes.append(ImportOutcome.CREATED)
                    events.append(creation_events(None, record.session, now))
                    continue
                if identity in fresh:
                    _insert_new(conn, settings, list(fresh.values()))
                    stored.update(fresh)
                    fresh = {}
                outcome, changes = _import_one(
                    conn, settings, record, rule, now, None if identity in written else read.get(identity))
                written.add(identity)
                outcomes.append(outcome)
                events.append(changes)
        _insert_new(conn, settings, list(fresh.values()))
        record_events(conn, [event for batch in events for event in batch])
    return outcomes


StoredRaw = tuple[Row, list[bytes]]
"""A stored session row (``ALL_COLUMNS``) and its turn payloads in order, as read, not yet decoded."""


def _stored_wholes(conn: sqlite3.Connection, identities: list[str]) -> dict[str, StoredRaw]:
    """The rows and turn payloads of ``identities`` (all of which have a row), by identity: two statements."""
    if not identities:
        return {}
    marks = ", ".join("?" * len(identities))
    rows = conn.execute(f"SELECT {ALL_COLUMNS} FROM lkpersist_sessions WHERE identity IN ({marks})", identities).fetchall()
    ids = tuple(int(row[0]) for row in rows)
    payloads = _payloads(conn, f"session_id IN ({', '.join('?' * len(ids))})", ids) if ids else {}
    return {row[1]: (row, payloads.get(int(row[0]), [])) for row in rows}


def _import_one(
    conn: sqlite3.Connection, settings: StoreSettings, record: SessionRecord, rule: ConflictRule, now: float,
    read: StoredRaw | None,
) -> tuple[ImportOutcome, list[SessionEvent]]:
    """One record over a stored row (``read`` already, or read here): decided by the rule, rewritten
    whole (or left alone)."""
    identity = record.session.identity
    try:
        if read is None:
            row_id, stored, turns = read_whole(conn, identity, settings.codec)
        else:  # decoded as read_whole decodes (metadata and context the faster way that reads the same)
            row_id, stored = int(read[0][0]), _session(read[0], settings.codec)
            turns = turns_from_payloads(identity, read[1], settings.codec)
    except (CorruptRecordError, DecryptionError):
        return ImportOutcome.FAILED, []
    decision = decide_import(stored, turns, record, rule, now, settings.max_turns)
    if decision.write is None:
        return decision.outcome, []
    write_whole(conn, settings, identity, row_id, decision.write)
    return decision.outcome, decision.write.events


def _stored_identities(conn: sqlite3.Connection, identities: list[str]) -> set[str]:
    """Which of ``identities`` have a session row (live or expired)."""
    marks = ", ".join("?" * len(identities))
    rows = conn.execute(f"SELECT identity FROM lkpersist_sessions WHERE identity IN ({marks})", identities)
    return {identity for (identity,) in rows}


def _insert_new(conn: sqlite3.Connection, settings: StoreSettings, records: list[SessionRecord]) -> None:
    """Write records whose identities have no row: all sessions in one statement, then all turns in one."""
    if not records:
        return
    codec = settings.codec
    rows = [(r.session.identity, *ops_values(r.session), *_personal(r.session, codec)) for r in records]
    insert_rows(conn, _INSERT_NEW_SESSION, rows)
    identities = [record.session.identity for record in records]
    marks = ", ".join("?" * len(identities))
    ids = dict(conn.execute(f"SELECT identity, id FROM lkpersist_sessions WHERE identity IN ({marks})", identities))
    insert_rows(conn, _INSERT_TURN, _turn_rows([ids[identity] for identity in identities], records, codec))


_INSERT_NEW_SESSION = f"INSERT INTO lkpersist_sessions (identity, {', '.join(OPS_FIELDS + PERSONAL_FIELDS)})"
"""``INSERT_SESSION`` for a batch's new identities, which have no row (checked in this transaction): a plain
INSERT, without the upsert and RETURNING, which would only cost (about half the statement's time).
Rows (see :func:`insert_rows`): the identity, :func:`ops_values`, :func:`_personal`."""


def _personal(session: Session, codec: ValueCodec) -> tuple[str | None, str, str]:
    """``personal_values(session, codec)``, metadata and context written by :func:`json_text` (the
    stdlib's values; an import writes one of each per session)."""
    return (
        None if session.language is None else codec.encode(session.language),
        codec.encode(json_text(session.metadata, compact_json) if session.metadata else "{}"),
        codec.encode(json_text(session.context, compact_json) if session.context else "{}"),
    )


_INSERT_TURN = "INSERT INTO lkpersist_turns (session_id, seq, item_id, payload)"
_item_id = itemgetter("item_id")


def _turn_rows(session_ids: list[int], records: list[SessionRecord], codec: ValueCodec) -> Iterator[tuple[Any, ...]]:
    """The turn rows of ``records`` (whose rows have ``session_ids``): every turn of the batch encoded in
    one pass, the columns zipped together at C speed (a batch holds thousands of turns)."""
    dicts = [record.turn_dicts for record in records]
    counts = list(map(len, dicts))
    turns = list(chain.from_iterable(dicts))
    return zip(
        chain.from_iterable(map(repeat, session_ids, counts)),
        chain.from_iterable(map(range, repeat(1), [count + 1 for count in counts])),
        map(_item_id, turns),
        turn_payloads(turns, codec),
    )


def insert_rows(conn: sqlite3.Connection, insert: str, rows: Iterable[tuple[Any, ...]]) -> None:
    """``insert`` (an ``INSERT INTO table (columns)`` without its VALUES) of every row of ``rows`` (all of
    one width), many rows per statement, taken from ``rows`` a statement's worth at a time.

    ``executemany`` binds, steps and resets the statement once per row, releasing and retaking the GIL at
    every step (which, while the event loop parses the next batch, means waiting for it): an import batch
    holds thousands of turns. Here rows go in statements of ``_ROWS_PER_STATEMENT`` rows and the rest in
    binary-sized pieces (at most nine shapes of statement, all kept in the connection's statement cache),
    each one ``execute``: one step for hundreds of rows (the import transaction alone: about a quarter
    more sessions per CPU second)."""
    source = iter(rows)
    first = next(source, None)
    if first is None:
        return
    width, source = len(first), chain((first,), source)
    most = max(1, min(_ROWS_PER_STATEMENT, conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // width))
    while chunk := list(islice(source, most)):
        while chunk:
            size = most if len(chunk) == most else 1 << (len(chunk).bit_length() - 1)
            conn.execute(_values_statement(insert, width, size), list(chain.from_iterable(chunk[:size])))
            chunk = chunk[size:]


_ROWS_PER_STATEMENT = 256
"""Rows per statement of :func:`insert_rows` at most (fewer where the SQLite build allows fewer variables)."""


@lru_cache(maxsize=64)
def _values_statement(insert: str, width: int, count: int) -> str:
    row = f"({', '.join('?' * width)})"
    return f"{insert} VALUES {', '.join([row] * count)}"


def _payloads(conn: sqlite3.Connection, where: str, params: tuple[Any, ...]) -> dict[int, list[bytes]]:
    found: dict[int, list[bytes]] = defaultdict(list)
    for session_id, payload in conn.execute(
        f"SELECT session_id, CAST(payload AS BLOB) FROM lkpersist_turns WHERE {where} ORDER BY session_id, seq",
        params,
    ):
        found[session_id].append(payload)
    return found


def _records(rows: list[Row], payloads: dict[int, list[bytes]], codec: ValueCodec) -> list[Loaded]:
    """The records of ``rows`` and their turns' ``payloads`` (by row id), the turns of all checked at once
    for the splice (:func:`spliced_page`)."""
    stored = [payloads.get(int(row[0]), []) for row in rows]
    return list(map(_record, rows, stored, spliced_page(stored, codec), repeat(codec)))


def _record(row: Row, payloads: list[bytes], spliceable: TurnDicts | None, codec: ValueCodec) -> Loaded:
    """One record; ``spliceable`` its turns as :func:`~lkpersist.stores.bulk.spliced_turns` reads them."""
    identity = row[1]
    try:
        spliced = _spliced(row, payloads, spliceable, codec)
        if spliced is not None:
            return spliced
        session = _session(row, codec)
        dicts = turn_dicts(payloads, codec)
        if dicts is not None:
            return SessionRecord.of_turn_dicts(session, dicts)
        return SessionRecord(session, tuple(turns_from_payloads(identity, payloads, codec)))
    except CorruptRecordError as exc:  # undecryptable (a wrong key) stays an error for the whole read, as in ls
        return CorruptRecord(identity=identity, reason=exc.reason)


def _spliced(row: Row, payloads: list[bytes], dicts: TurnDicts | None, codec: ValueCodec) -> SessionRecord | None:
    """A plaintext store's record with its stored turn payloads beside it (:attr:`SessionRecord.rendered`),
    its metadata and context read by :func:`plain_object` (values orjson writes as the stdlib does). None
    (the ordinary path, which reads or names whatever is odd) unless both and the turns (``dicts``, from
    :func:`~lkpersist.stores.bulk.spliced_turns`) qualify."""
    if dicts is None or not isinstance(codec, PlainCodec | PlainGuardCodec):
        return None
    if type(row[14]) is not bytes or type(row[15]) is not bytes:
        return None
    metadata, context = plain_object(row[14]), plain_object(row[15])
    if metadata is None or context is None:
        return None
    session = session_from_row(row, codec, personal=False)
    try:
        session.language = None if row[13] is None else codec.decode(row[13].decode("utf-8"))
    except (AttributeError, UnicodeDecodeError, DecryptionError):
        return None
    session.metadata, session.context = metadata, context
    return SessionRecord.of_turn_dicts(session, dicts, payloads)


def _session(row: Row, codec: ValueCodec) -> Session:
    """``session_from_row(row, codec)``, its metadata and context read by :func:`parse_json` (the stdlib's
    values, several times faster: an export reads every one). Anything that is not a plain JSON object
    there goes to ``session_from_row`` whole, which names what is wrong."""
    session = session_from_row(row, codec, personal=False)
    try:
        language, metadata, context = (None if row[13] is None else codec.decode(row[13].decode("utf-8")),
                                       parse_json(codec.decode(row[14].decode("utf-8"))),
                                       parse_json(codec.decode(row[15].decode("utf-8"))))
    except (AttributeError, ValueError, TypeError, UnicodeDecodeError, DecryptionError):
        return session_from_row(row, codec)
    if type(metadata) is not dict or type(context) is not dict:
        return session_from_row(row, codec)
    session.language, session.metadata, session.context = language, metadata, context
    return session


__all__ = ["import_batch", "load", "scan_page"]
