"""SQLite export carrying a plaintext store's stored turns into its lines (``SessionRecord.rendered``) and
writing its sessions with orjson unchecked.

Each line written that way reads, with the standard library and with the importer, as the line the
ordinary path writes for the same record (where the ordinary path writes with orjson, the very same
text); whatever the stored text does not vouch for takes the ordinary path, and a damaged stored turn is
still reported, never written into the file.
"""

from __future__ import annotations

import io
import json
import math
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from lkpersist.crypto.codec import PLAIN
from lkpersist.model.results import CorruptRecord
from lkpersist.model.session import Session, Turn
from lkpersist.model.transfer import SessionRecord
from lkpersist.stores import bulk, open_store
from lkpersist.stores.sqlite import transfer as sqlite_transfer
from lkpersist.transfer.export import export_sessions
from lkpersist.transfer.format import parse_record, record_line
from lkpersist.transfer.import_ import import_sessions
from tests.conftest import T0
from tests.transfer.test_fast_paths import _same

STORED_OBJECTS: dict[str, str] = {
    "plain": '{"plan":"pro","n":3,"f":2.5}',
    "empty": "{}",
    "unicode": '{"é":"ü 👋 \u2028","ctl":"\\u0000\\u001f\\u007f","esc":"a\\"b\\\\c\\/d\\n\\t"}',
    "escaped non-ASCII": '{"k\\u00e9":"\\u00fc\\ud83d\\udc4b"}',
    "nested": '{"a":{"b":[1,{"c":[]},{}],"d":null},"e":[[],[[{}]]]}',
    "nulls and the text null": '{"n":null,"t":"null","l":[null,"nullnull"]}',
    "floats": '{"big":1e16,"neg zero":-0.0,"small":1e-07,"exp":1.5E-300,"e":2.5e+18,"tiny":5e-324,"int":-42}',
    "64-bit integers": '{"max":9223372036854775807,"min":-9223372036854775808,"u":18446744073709551615}',
    "big integer": '{"v":123456789012345678901234567890}',
    "negative big integer": '{"v":-18446744073709551617}',
    "whole float beyond 2**63": '{"v":1e19}',
    "nan": '{"v":NaN}',
    "infinity": '{"v":[1,-Infinity]}',
    "lone surrogate": '{"v":"\\ud800 x"}',
    "duplicate keys": '{"a":1,"b":2,"a":3}',
    "spaces": '{ "a" : [ 1 , 2 ] }',
    "a line break between tokens": '{"a":\n1,\r"b":2}',
    "nested deeper than orjson writes": '{"a":' + "[" * 300 + "]" * 300 + "}",
}
SPLICED = {"plain", "empty", "unicode", "escaped non-ASCII", "nested", "nulls and the text null", "floats",
           "64-bit integers", "duplicate keys", "spaces", "a line break between tokens",
           "nested deeper than orjson writes"}


def _record(identity: str, turns: int = 3) -> SessionRecord:
    session = Session(identity=identity, joined_at=T0 - 100, last_seen=T0 - 10, language="fr", metadata={"m": 1},
                      context={"c": 2}, expires_at=T0 + 590, ttl=600.0, reconnect_count=2, greeted_visit=3)
    return SessionRecord(session, tuple(Turn(("user", "assistant")[t % 2], f"t{t} ü \"q\"", T0 - 50 + t,
                                             None if t == 1 else f"i{t}") for t in range(turns)))


async def _stored(path: Path, records: list[SessionRecord]) -> None:
    store = open_store(f"sqlite:///{path}")
    try:
        await store.import_records(records)
    finally:
        await store.close()


def _execute(path: Path, sql: str, *params: Any) -> None:
    conn = sqlite3.connect(path)
    try:
        conn.execute(sql, params)
        conn.commit()
    finally:
        conn.close()


def _read(path: Path) -> list[SessionRecord | CorruptRecord]:
    conn = sqlite3.connect(path)
    try:
        page, _ = sqlite_transfer.scan_page(conn, PLAIN, "all", int(T0 * 1000), 0, 100)
    finally:
        conn.close()
    return page


def _ordinary_line(record: SessionRecord) -> str:
    """What the export wrote for ``record`` before it carried stored text: the same record without it."""
    return record_line(SessionRecord.of_turn_dicts(record.session, record.turn_dicts))


@pytest.mark.parametrize("name", STORED_OBJECTS)
@pytest.mark.parametrize("column", ["metadata", "context"])
async def test_a_line_reads_as_the_ordinary_line_whatever_the_stored_object(
    tmp_path: Path, name: str, column: str
) -> None:
    path = tmp_path / "store.db"
    await _stored(path, [_record("ada")])
    _execute(path, f"UPDATE lkpersist_sessions SET {column} = ?", STORED_OBJECTS[name])
    [record] = _read(path)
    assert isinstance(record, SessionRecord)
    assert (record.rendered is not None) == (name in SPLICED)
    line, ordinary = record_line(record), _ordinary_line(record)
    assert "\n" not in line and "\r" not in line
    assert _same(json.loads(line), json.loads(ordinary)), (line, ordinary)
    assert parse_record(line, 2) == parse_record(ordinary, 2)
    assert _same(getattr(parse_record(line, 2).session, column), json.loads(STORED_OBJECTS[name]))


async def test_a_store_written_by_lkpersist_exports_the_very_same_text(tmp_path: Path) -> None:
    records = [_record(f"u{i}", turns=i) for i in range(5)]
    await _stored(tmp_path / "store.db", records)
    read = _read(tmp_path / "store.db")
    assert all(isinstance(r, SessionRecord) and r.rendered is not None for r in read)
    assert [record_line(r) for r in read] == [_ordinary_line(r) for r in read]  # type: ignore[arg-type]
    assert sorted(read, key=lambda r: r.session.identity) == records  # type: ignore[union-attr]


@pytest.mark.parametrize("payload,spliced", [
    ('{"role":"user","text":"hi","timestamp":1800000000.5,"item_id":"i0"}', True),
    ('{"role":"user","text":"h\\u00ef \\ud83d\\udc4b \\"\\\\","timestamp":-0.0,"item_id":null}', True),
    ('{"role":"user","text":"hi","timestamp":1e16,"item_id":"i0"}', True),
    ('{ "role" : "user", "text" : "hi", "timestamp" : 1.5, "item_id" : "i0" }', True),
    ('{"role":"user",\n"text":"hi","timestamp":1.5,"item_id":"i0"}', False),  # a line break: the ordinary path
    ('{"role":"user","text":"hi","timestamp":123456789012345678901234,"item_id":"i0"}', False),  # an int to the stdlib
    ('{"role":"user","text":"hi","timestamp":1800000000,"item_id":"i0"}', False),  # an integer: Turn objects
    ('{"text":"hi","role":"user","timestamp":1.5,"item_id":"i0"}', False),  # keys out of order
])
async def test_stored_turns_are_carried_only_when_they_read_back_the_same(
    tmp_path: Path, payload: str, spliced: bool
) -> None:
    path = tmp_path / "store.db"
    await _stored(path, [_record("ada")])
    _execute(path, "UPDATE lkpersist_turns SET payload = ? WHERE seq = 2", payload)
    [record] = _read(path)
    assert isinstance(record, SessionRecord)
    assert (record.rendered is not None) is spliced
    line = record_line(record)
    assert "\n" not in line
    assert _same(json.loads(line), json.loads(_ordinary_line(record)))
    assert parse_record(line, 2) == record


@pytest.mark.parametrize("payload", [
    '{"role":"user","text":"hi","timestamp":1.5,"item_id":"i0"',  # truncated
    '{"role":"user","text":"hi","timestamp":1.5,"item_id":"i0"},{"role":"user","text":"x","timestamp":2.5}',
    '[]', 'NaN', '"text"', '{"role":"user","text":"hi"}', '',
])
async def test_a_damaged_stored_turn_is_still_reported_and_not_written(tmp_path: Path, payload: str) -> None:
    path = tmp_path / "store.db"
    await _stored(path, [_record("ada"), _record("bob")])
    _execute(path, "UPDATE lkpersist_turns SET payload = ? WHERE seq = 2 AND session_id = "
             "(SELECT id FROM lkpersist_sessions WHERE identity = 'ada')", payload)
    store = open_store(f"sqlite:///{path}")
    out = io.StringIO()
    try:
        result = await export_sessions(store, out, status="all")
    finally:
        await store.close()
    assert [c.identity for c in result.corrupt] == ["ada"] and result.sessions == 1
    lines = out.getvalue().splitlines()[1:]
    assert [json.loads(line)["session"]["identity"] for line in lines] == ["bob"]
    assert parse_record(lines[0], 2) == _record("bob")


async def test_an_exported_file_imports_back_as_its_records(tmp_path: Path) -> None:
    records = [_record(f"u{i}", turns=i % 4) for i in range(30)]
    await _stored(tmp_path / "one.db", records)
    _execute(tmp_path / "one.db", "UPDATE lkpersist_sessions SET metadata = ? WHERE identity = 'u1'",
             STORED_OBJECTS["floats"])
    source, target = open_store(f"sqlite:///{tmp_path / 'one.db'}"), open_store(f"sqlite:///{tmp_path / 'two.db'}")
    out = io.StringIO()
    try:
        await export_sessions(source, out, status="all", page_size=7)
        result = await import_sessions(target, io.StringIO(out.getvalue()))
        assert result.bad_lines == 0 and not result.failed
        exported = [r async for page in source.iter_records("all") for r in page]
        imported = [r async for page in target.iter_records("all") for r in page]
    finally:
        await source.close()
        await target.close()
    assert sorted(imported, key=_identity) == sorted(exported, key=_identity)
    assert math.copysign(1.0, imported[1].session.metadata["neg zero"]) == -1.0  # type: ignore[union-attr]


def _identity(record: SessionRecord | CorruptRecord) -> str:
    return record.session.identity if isinstance(record, SessionRecord) else record.identity


async def test_without_orjson_nothing_is_carried(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    await _stored(tmp_path / "store.db", [_record("ada")])
    monkeypatch.setattr(bulk, "_orjson", None)
    from lkpersist.model import jsonform

    monkeypatch.setattr(jsonform, "_orjson", None)
    [record] = _read(tmp_path / "store.db")
    assert isinstance(record, SessionRecord) and record.rendered is None and record == _record("ada")


async def test_a_sqlite_scan_reads_at_most_scan_rows_at_once_and_every_record(tmp_path: Path) -> None:
    count = sqlite_transfer.SCAN_ROWS * 2 + 7
    await _stored(tmp_path / "store.db", [_record(f"u{i:03d}", turns=1) for i in range(count)])
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        pages = [page async for page in store.iter_records("all", page_size=500)]
    finally:
        await store.close()
    assert [len(page) for page in pages] == [sqlite_transfer.SCAN_ROWS] * 2 + [7]
    assert [_identity(r) for page in pages for r in page] == [f"u{i:03d}" for i in range(count)]
