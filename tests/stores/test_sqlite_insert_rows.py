"""SQLite's many-rows-per-statement insert (``insert_rows``), which an import's new sessions and turns go through.

Rows are cut into statements of a fixed size and binary-sized rests, so every count must come out whole
and in order, also where the SQLite build allows few variables per statement; and a batch of new
sessions whose turns fill several statements must read back exactly as imported.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from lkpersist.clock import VirtualClock
from lkpersist.model.session import Session, Turn
from lkpersist.model.transfer import ImportOutcome, SessionRecord
from lkpersist.stores import open_store
from lkpersist.stores.sqlite import transfer
from tests.conftest import T0

INSERT = "INSERT INTO t (a, b, c)"


@pytest.fixture
def conn() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, a INTEGER NOT NULL, b TEXT, c BLOB)")
    return conn


def _rows(count: int) -> list[tuple[object, ...]]:
    return [(n, None if n % 3 else f"text {n}", b"\x00" * (n % 4)) for n in range(count)]


@pytest.mark.parametrize("count", [0, 1, 2, 7, 255, 256, 257, 600, 1000])
def test_every_row_is_inserted_once_in_order(conn: sqlite3.Connection, count: int) -> None:
    transfer.insert_rows(conn, INSERT, _rows(count))
    assert conn.execute("SELECT a, b, c FROM t ORDER BY id").fetchall() == _rows(count)


@pytest.mark.parametrize("count", [0, 1, 300, 513])
def test_rows_may_come_from_an_iterator(conn: sqlite3.Connection, count: int) -> None:
    transfer.insert_rows(conn, INSERT, iter(_rows(count)))
    assert conn.execute("SELECT a, b, c FROM t ORDER BY id").fetchall() == _rows(count)


def test_a_build_with_few_variables_gets_smaller_statements(conn: sqlite3.Connection) -> None:
    conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 10)  # three rows of three per statement at most
    transfer.insert_rows(conn, INSERT, _rows(20))
    assert conn.execute("SELECT a, b, c FROM t ORDER BY id").fetchall() == _rows(20)


def test_a_failing_row_fails_the_call(conn: sqlite3.Connection) -> None:
    with pytest.raises(sqlite3.IntegrityError):
        transfer.insert_rows(conn, INSERT, [*_rows(5), (None, "x", b"")])


async def test_an_import_batch_of_many_turns_reads_back_whole(tmp_path: Path, clock: VirtualClock) -> None:
    records = [
        SessionRecord(
            Session(identity=f"user-{n}", joined_at=T0 - 60, last_seen=T0 - 1, language="en",
                    metadata={"n": n}, expires_at=T0 + 600, ttl=600.0),
            tuple(Turn("user" if t % 2 else "assistant", f"turn {n}.{t}", T0 - 50 + t, None if t % 5 else f"i-{n}-{t}")
                  for t in range(n % 40)),
        )
        for n in range(300)  # 5,850 turns: many full statements and a rest in several pieces
    ]
    store = open_store(f"sqlite:///{tmp_path / 'many.db'}", clock=clock)
    try:
        assert await store.import_records(records) == [ImportOutcome.CREATED] * len(records)
        loaded = {item.session.identity: item async for page in store.iter_records("all") for item in page
                  if isinstance(item, SessionRecord)}
    finally:
        await store.close()
    assert loaded == {record.session.identity: record for record in records}
