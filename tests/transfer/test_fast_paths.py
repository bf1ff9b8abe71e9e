"""The fast paths of export and import against the ordinary ones they stand in for.

Each writes or reads what the ordinary path does: the same text where the ordinary path is the same
function, else a text that the standard library reads to the same values; and whatever the fast path
cannot vouch for goes to the ordinary path, which names it as it always did.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from lkpersist.crypto.codec import PLAIN
from lkpersist.model.jsonform import acyclic_json, compact_json
from lkpersist.model.session import Device, Session, Turn
from lkpersist.model.transfer import ImportOutcome, SessionRecord, detached
from lkpersist.stores import bulk, open_store
from lkpersist.stores.bulk import json_text
from lkpersist.stores.sqlite.rows import INSERT_SESSION, ops_params, personal_params
from lkpersist.transfer import format as fmt
from lkpersist.transfer.format import parse_record, record_line, session_json
from tests.conftest import T0

ODD_VALUES: dict[str, Any] = {
    "nothing odd": {"plan": "pro", "n": 3, "f": 2.5, "none": None},
    "the text null": {"a": "null", "b": "nullnull"},
    "nan": {"v": math.nan},
    "infinity deep down": {"v": [1, {"w": (2, -math.inf)}], "s": "null"},
    "big integer": {"v": 2**70},
    "negative big integer": {"v": -(2**64)},
    "lone surrogate": {"v": "\ud800 x"},
    "big float": {"v": 1e300, "w": 1e-7, "z": -0.0},
    "non-text key": {1: "one"},
    "unicode": {"é": "ü 👋 \u2028", "ctl": "\x00\x1f\x7f"},
}


class _Text(str):
    pass


class _Colour(Enum):
    RED = "red"


CYCLE: list[Any] = []
CYCLE.append(CYCLE)


def _session(metadata: dict[Any, Any], identity: str = "ada", **fields: Any) -> Session:
    return Session(identity=identity, joined_at=T0 - 100, last_seen=T0 - 10, metadata=metadata, context={"c": 1},
                   expires_at=T0 + 590, ttl=600.0, **fields)


@pytest.mark.parametrize("name", ODD_VALUES)
def test_the_session_json_reads_as_the_stdlib_text_reads(name: str) -> None:
    session = _session(ODD_VALUES[name], devices=(Device("d1", "phone", T0 - 50, T0 - 20),)).to_dict()
    fast, ordinary = session_json(session), acyclic_json(session)
    assert _same(json.loads(fast), json.loads(ordinary)), (fast, ordinary)


@pytest.mark.parametrize("name", ["nan", "infinity deep down", "big integer", "lone surrogate", "non-text key"])
def test_what_orjson_would_write_differently_is_written_by_the_stdlib(name: str) -> None:
    session = _session(ODD_VALUES[name]).to_dict()
    assert session_json(session) == acyclic_json(session)


@pytest.mark.parametrize("value", [
    (1, 2), [(1, "a")], {"when": datetime(2030, 1, 1, tzinfo=UTC)}, {"id": UUID(int=7)}, {"d": Device("d", "l", 1, 2)},
    {"cycle": CYCLE}, {"b": b"bytes"}, {"sub": _Text("x")}, 2**64, "\ud800",
], ids=["tuple", "nested tuple", "datetime", "uuid", "dataclass", "cycle", "bytes", "str subclass", "big", "surrogate"])
@pytest.mark.parametrize("ordinary", [acyclic_json, compact_json], ids=["acyclic", "compact"])
def test_what_is_not_plain_json_is_left_to_the_stdlib(value: Any, ordinary: Callable[[Any], str]) -> None:
    if ordinary is acyclic_json and isinstance(value, dict) and "cycle" in value:
        return  # acyclic_json is only ever given values read from JSON (a cycle would recurse)
    try:
        expected: str | type[Exception] = ordinary(value)
    except (TypeError, ValueError) as exc:
        expected = type(exc)
    try:
        assert json_text(value, ordinary) == expected
    except (TypeError, ValueError) as exc:
        assert type(exc) is expected


def test_a_plain_session_takes_the_orjson_path() -> None:
    session = _session({"f": 1e-7}).to_dict()
    assert "1e-7" in session_json(session) and "1e-07" in acyclic_json(session)  # the two spellings
    assert json.loads(session_json(session)) == json.loads(acyclic_json(session))


def test_without_orjson_the_session_is_the_stdlib_text(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bulk, "_orjson", None)
    monkeypatch.setattr(fmt, "_orjson", None)
    session = _session({"f": 1e-7}).to_dict()
    assert session_json(session) == acyclic_json(session)
    assert json_text({"f": 1e-7}, compact_json) == compact_json({"f": 1e-7})


def _assert_written_as_the_stdlib_writes_it(session: dict[str, Any]) -> None:
    """``session_json`` gives the standard library's text, or fails as it fails."""
    try:
        expected: str | type[Exception] = acyclic_json(session)
    except (TypeError, ValueError) as exc:
        expected = type(exc)
    try:
        assert session_json(session) == expected
    except (TypeError, ValueError) as exc:
        assert type(exc) is expected


@pytest.mark.parametrize("value", [
    {"when": datetime(2030, 1, 1, tzinfo=UTC)}, {"id": UUID(int=7)}, {"d": Device("d", "l", 1, 2)},
    {"e": _Colour.RED}, {"b": b"bytes"}, {"sub": _Text("x")}, {"t": (1, 2)},
], ids=["datetime", "uuid", "dataclass", "enum", "bytes", "str subclass", "tuple"])
@pytest.mark.parametrize("where", ["metadata", "context"])
def test_a_session_holding_what_is_not_plain_json_is_left_to_the_stdlib(value: Any, where: str) -> None:
    session = _session({}).to_dict()
    session[where] = value
    _assert_written_as_the_stdlib_writes_it(session)


@pytest.mark.parametrize("field,value", [
    ("joined_at", math.nan), ("ttl", math.inf), ("joined_at", datetime(2030, 1, 1, tzinfo=UTC)),
    ("identity", _Text("ada")), ("devices", [{"device_id": "d", "label": "l", "first_seen": -math.inf}]),
])
def test_a_session_field_orjson_would_write_differently_is_left_to_the_stdlib(field: str, value: Any) -> None:
    session = _session({"m": 1}).to_dict()
    session[field] = value
    _assert_written_as_the_stdlib_writes_it(session)


@pytest.mark.parametrize("name", [name for name in ODD_VALUES if name != "non-text key"])
def test_an_export_line_reads_back_as_its_record(name: str) -> None:
    record = SessionRecord(_session(ODD_VALUES[name]), (Turn("user", "hi", T0 - 9, "i1"),))
    again = parse_record(record_line(record), 2)
    read, written = again.session.to_dict(), record.session.to_dict()
    assert read.pop("turn_count") == 1 and written.pop("turn_count") is None  # the line carries the count
    assert _same(read, json.loads(acyclic_json(written))) and again.turns == record.turns  # tuples read as lists


def _same(a: Any, b: Any) -> bool:
    """Equal, NaN equal to NaN, and of the same types (1 and 1.0 differ)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


async def test_sqlite_writes_a_batch_of_new_sessions_turn_by_turn_as_one_would(tmp_path: Path) -> None:
    """The bulk insert of a batch's turns: each session's turns numbered from 1, with their item ids and
    the payload ``Turn.to_json`` gives, whatever the mix of turn counts in the batch."""
    turn_counts = [3, 0, 1, 5, 0, 2]
    records = [
        SessionRecord(_session({"i": i}, identity=f"u{i}"),
                      tuple(Turn(("user", "assistant")[t % 2], f"t{i}.{t} ü", T0 - 50 + t, None if t == 1 else f"i{i}-{t}")
                            for t in range(count)))
        for i, count in enumerate(turn_counts)
    ]
    store = open_store(f"sqlite:///{tmp_path / 'bulk.db'}")
    try:
        assert await store.import_records(records) == [ImportOutcome.CREATED] * len(records)
        assert [await _stored_turns(tmp_path / "bulk.db", r.session.identity) for r in records] == [
            [(seq, turn.item_id, turn.to_json()) for seq, turn in enumerate(r.turns, 1)] for r in records
        ]
        async for page in store.iter_records("all"):
            assert sorted(page, key=lambda r: r.session.identity) == records  # type: ignore[union-attr]
    finally:
        await store.close()


async def _stored_turns(path: Path, identity: str) -> list[tuple[int, str | None, str]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(
            "SELECT seq, item_id, payload FROM lkpersist_turns JOIN lkpersist_sessions ON session_id = "
            "lkpersist_sessions.id WHERE identity = ? ORDER BY seq", (identity,)).fetchall()
    finally:
        conn.close()


async def test_sqlite_writes_a_batch_of_new_sessions_as_the_ordinary_upsert_does(tmp_path: Path) -> None:
    """The plain INSERT of a batch's new sessions leaves every column as ``INSERT_SESSION`` would."""
    sessions = [
        _session({"i": i, **ODD_VALUES[name]}, identity=f"u{i}", language=("fr", None)[i % 2], greeted_visit=i,
                 reconnect_count=i, devices=((Device("d1", "phone", T0 - 50, T0 - 20),), ())[i % 2])
        for i, name in enumerate(name for name in ODD_VALUES if name not in ("non-text key", "lone surrogate"))
    ]
    connected = Session(identity="live", joined_at=T0 - 100, last_seen=T0 - 10, connected=True, ttl=300.0)
    bulk, ordinary = tmp_path / "bulk.db", tmp_path / "ordinary.db"
    for path in (bulk, ordinary):
        store = open_store(f"sqlite:///{path}")
        try:
            if path == bulk:
                await store.import_records([SessionRecord(s) for s in [*sessions, connected]])
            else:
                await store.import_records([])  # the schema only
        finally:
            await store.close()
    conn = sqlite3.connect(ordinary)
    try:
        for session in [*sessions, detached(connected)]:
            conn.execute(INSERT_SESSION, {**ops_params(session), **personal_params(session, PLAIN)}).fetchall()
        conn.commit()
    finally:
        conn.close()
    written, expected = _session_rows(bulk), _session_rows(ordinary)
    assert len(written) == len(sessions) + 1
    for row, want in zip(written, expected, strict=True):
        assert _same(row, want), (row, want)


def _session_rows(path: Path) -> list[dict[str, Any]]:
    """Every session row but its id, metadata and context as the stdlib reads them (the same values)."""
    conn = sqlite3.connect(path)
    try:
        cursor = conn.execute("SELECT * FROM lkpersist_sessions ORDER BY identity")
        names = [column[0] for column in cursor.description]
        rows = [dict(zip(names, row, strict=True)) for row in cursor]
    finally:
        conn.close()
    for row in rows:
        del row["id"]
        row["metadata"], row["context"] = json.loads(row["metadata"]), json.loads(row["context"])
    return rows
