"""Reading and appending turns: what the fast paths must keep (every backend), then SQLite's own.

The contract part runs on every backend: an expired session has no turns although they are still stored,
turns decode exactly whatever their text, the cap holds whichever process appends. Then SQLite: the
append's statements are index probes; the worker thread hands each caller its own outcome, and a call
cancelled while queued never runs; writes queued together share one COMMIT, yet each fails alone and
keeps its place. The Redis side (the turn scripts take only the three keys a turn
touches, damaged frames are named, a session hash carrying only the liveness fields is read) is in
test_redis_turns.py.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from lkpersist.clock import VirtualClock
from lkpersist.exceptions import SessionNotFoundError, StoreError
from lkpersist.model.session import Turn
from lkpersist.stores import open_store
from lkpersist.stores.base import SessionStore
from lkpersist.stores.sqlite import SQLiteStore
from lkpersist.stores.sqlite.db import Database
from lkpersist.stores.sqlite.url import SQLiteTarget

TEXTS = ['plain', 'quotes " \\ and {"json": [1, 2]}', "Zoë 🎧 日本語\nnewline", "", " spaced "]


async def test_an_expired_session_has_no_turns_though_they_are_still_stored(
    store: SessionStore, clock: VirtualClock
) -> None:
    await store.connect("ann")
    for index in range(3):
        await store.append_turn("ann", Turn("user", f"t{index}", clock.now(), f"i{index}"))
    await store.disconnect("ann")
    clock.advance(299)
    assert [t.text for t in await store.recent_turns("ann", limit=2)] == ["t1", "t2"]
    clock.advance(1)
    assert await store.recent_turns("ann") == [] and await store.recent_turns("ann", limit=2) == []
    with pytest.raises(SessionNotFoundError):
        await store.append_turn("ann", Turn("user", "late", clock.now(), "late"))


async def test_a_connected_session_keeps_its_turns_while_refreshed(store: SessionStore, clock: VirtualClock) -> None:
    await store.connect("bo")
    await store.append_turn("bo", Turn("user", "hello", clock.now(), "h"))
    for _ in range(40):
        clock.advance(30)
        assert await store.heartbeat("bo") is True
    assert [t.text for t in await store.recent_turns("bo")] == ["hello"]


@pytest.mark.parametrize("limit", [None, 1, 3, 100])
async def test_turns_decode_exactly_in_order(store: SessionStore, clock: VirtualClock, limit: int | None) -> None:
    await store.connect("cy")
    written = [Turn("user" if i % 2 else "assistant", text, 1_800_000_000.125 + i, None if i % 3 == 0 else f"id-{i}")
               for i, text in enumerate(TEXTS * 2)]
    for turn in written:
        await store.append_turn("cy", turn)
    assert await store.recent_turns("cy", limit) == written[-(limit or len(written)):]


async def test_concurrent_reads_each_get_their_own_turns(store: SessionStore, clock: VirtualClock) -> None:
    """Reads made at once (Redis sends them as one pipeline, across cluster slots too) answer each caller."""
    names = [f"p{index:02d}" for index in range(24)]
    for index, name in enumerate(names[:16]):  # the last eight have no session: no turns
        await store.connect(name)
        for turn in range(index % 4):
            await store.append_turn(name, Turn("user", f"{name}-{turn}", clock.now(), f"{name}-{turn}"))
    results = await asyncio.gather(*(store.recent_turns(name, limit=2) for name in names))
    for index, (name, turns) in enumerate(zip(names, results, strict=True)):
        count = index % 4 if index < 16 else 0
        assert [t.text for t in turns] == [f"{name}-{turn}" for turn in range(count)][-2:]


async def test_the_cap_holds_whichever_store_appends(shared_url: str, clock: VirtualClock) -> None:
    roomy = open_store(shared_url, clock=clock, max_turns=10)
    tight = open_store(shared_url, clock=clock, max_turns=3)
    try:
        await roomy.connect("dee")
        for index in range(10):
            await roomy.append_turn("dee", Turn("user", f"t{index}", clock.now(), f"i{index}"))
        await tight.append_turn("dee", Turn("user", "t10", clock.now(), "i10"))
        assert [t.text for t in await roomy.recent_turns("dee")] == ["t8", "t9", "t10"]
        await roomy.append_turn("dee", Turn("user", "t11", clock.now(), "i11"))
        assert [t.text for t in await roomy.recent_turns("dee")] == ["t8", "t9", "t10", "t11"]
        assert await roomy.append_turn("dee", Turn("user", "t0 again", clock.now(), "i0")) is True  # trimmed: id free
        assert await roomy.append_turn("dee", Turn("user", "t11 again", clock.now(), "i11")) is False
    finally:
        await tight.close()
        await roomy.close()


# --- SQLite -------------------------------------------------------------------------------------------


@pytest.fixture
async def sstore(tmp_path: Path, clock: VirtualClock) -> AsyncIterator[SQLiteStore]:
    store = open_store(f"sqlite:///{tmp_path / 'turns.db'}", clock=clock)
    assert isinstance(store, SQLiteStore)
    yield store
    await store.close()


async def test_sqlite_appends_and_reads_probe_indexes(sstore: SQLiteStore, clock: VirtualClock) -> None:
    await sstore.connect("ida")
    statements: list[str] = []
    await sstore._db.run(lambda conn: conn.set_trace_callback(statements.append))
    for index in range(sstore.max_turns + 2):  # past the cap: the trim runs too
        await sstore.append_turn("ida", Turn("user", f"t{index}", clock.now(), f"i{index}"))
    await sstore.append_turn("ida", Turn("user", "again", clock.now(), "i5"))  # a duplicate id
    await sstore.recent_turns("ida", limit=10)
    await sstore._db.run(lambda conn: conn.set_trace_callback(None))
    plans = {statement: await sstore._db.run(lambda conn, s=statement: conn.execute("EXPLAIN QUERY PLAN " + s).fetchall())
             for statement in set(statements) if statement.lstrip().upper().startswith(("SELECT", "INSERT", "DELETE"))}
    assert any(s.startswith("DELETE FROM lkpersist_turns") for s in plans) and len(plans) >= 4
    for statement, rows in plans.items():
        steps = [str(row[3]) for row in rows]
        assert not any(step.startswith("SCAN") for step in steps), (statement, steps)
        assert not any("TEMP B-TREE" in step for step in steps), (statement, steps)


async def test_sqlite_worker_hands_each_caller_its_own_outcome(tmp_path: Path) -> None:
    db = Database(SQLiteTarget(tmp_path / "w.db", 5.0, "normal"))

    def echo(conn: sqlite3.Connection, value: int) -> int:
        if value % 7 == 0:
            conn.execute("SELECT * FROM no_such_table")
        return value

    try:
        outcomes = await asyncio.gather(*(db.run(echo, value) for value in range(1, 200)), return_exceptions=True)
    finally:
        await db.close()
    for value, outcome in zip(range(1, 200), outcomes, strict=True):
        if value % 7 == 0:
            assert isinstance(outcome, StoreError) and "no_such_table" in str(outcome)
        else:
            assert outcome == value
    with pytest.raises(StoreError, match="closed"):
        await db.run(echo, 1)


async def test_a_sqlite_call_cancelled_while_queued_never_runs(tmp_path: Path) -> None:
    db = Database(SQLiteTarget(tmp_path / "c.db", 5.0, "normal"))
    started, release, ran = threading.Event(), threading.Event(), []

    def hold(conn: sqlite3.Connection) -> None:
        started.set()
        release.wait(10)

    try:
        holder = asyncio.create_task(db.run(hold))
        assert await asyncio.to_thread(started.wait, 10)
        queued = asyncio.create_task(db.run(lambda conn: ran.append("queued")))
        await asyncio.sleep(0)  # it is in the worker's queue now
        queued.cancel()
        release.set()
        await holder
        await db.run(lambda conn: ran.append("after"))  # everything queued before it was handled
        assert ran == ["after"] and queued.cancelled()
    finally:
        await db.close()


def test_a_sqlite_store_serves_one_event_loop_after_another(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'loops.db'}", clock=VirtualClock(1_800_000_000.0))

    async def visit(text: str) -> list[str]:
        if text == "first":
            await store.connect("jo")
        await store.append_turn("jo", Turn("user", text, 1.0, text))
        return [t.text for t in await store.recent_turns("jo")]

    assert asyncio.run(visit("first")) == ["first"]
    assert asyncio.run(visit("second")) == ["first", "second"]
    asyncio.run(store.close())


# --- SQLite group commit: writes queued together share one transaction --------------------------------


class _Held:
    """Keeps the worker thread busy until released, so that what is submitted meanwhile queues up."""

    def __init__(self) -> None:
        self.started, self.release = threading.Event(), threading.Event()

    def __call__(self, conn: sqlite3.Connection) -> None:
        self.started.set()
        self.release.wait(10)


async def _queued_behind(db: Database, *calls: Any) -> list[Any]:
    """Run ``calls`` (coroutines for ``db``) all queued behind one held job, in the order given."""
    held = _Held()
    holder = asyncio.create_task(db.run(held))
    assert await asyncio.to_thread(held.started.wait, 10)
    tasks = [asyncio.create_task(call) for call in calls]
    await asyncio.sleep(0)
    held.release.set()
    await holder
    return await asyncio.gather(*tasks, return_exceptions=True)


def _insert(conn: sqlite3.Connection, value: int) -> int:
    conn.execute("INSERT INTO t (v) VALUES (?)", (value,))
    if value % 5 == 0:
        raise ValueError(f"refused {value}")  # after writing: the savepoint must undo it
    return value


async def test_queued_sqlite_writes_share_one_commit_and_fail_alone(tmp_path: Path) -> None:
    db = Database(SQLiteTarget(tmp_path / "g.db", 5.0, "normal"))
    statements: list[str] = []
    try:
        await db.run(lambda conn: conn.execute("CREATE TABLE t (v INTEGER)"))
        await db.run(lambda conn: conn.set_trace_callback(statements.append))
        outcomes = await _queued_behind(db, *(db.write(_insert, value) for value in range(1, 21)))
        rows = await db.run(lambda conn: [v for (v,) in conn.execute("SELECT v FROM t ORDER BY v")])
    finally:
        await db.close()
    for value, outcome in zip(range(1, 21), outcomes, strict=True):
        assert (str(outcome) == f"refused {value}") if value % 5 == 0 else outcome == value
    assert rows == [value for value in range(1, 21) if value % 5]
    assert statements.count("COMMIT") == 1


async def test_sqlite_writes_keep_their_place_among_other_calls(tmp_path: Path) -> None:
    db = Database(SQLiteTarget(tmp_path / "o.db", 5.0, "normal"))
    order: list[str] = []

    def note(conn: sqlite3.Connection, name: str) -> str:
        order.append(name)
        return name

    try:
        await _queued_behind(db, db.write(note, "w1"), db.write(note, "w2"), db.run(note, "r3"), db.write(note, "w4"))
    finally:
        await db.close()
    assert order == ["w1", "w2", "r3", "w4"]


async def test_a_shared_transaction_that_cannot_start_fails_every_write_in_it(tmp_path: Path) -> None:
    path = tmp_path / "busy.db"
    db = Database(SQLiteTarget(path, 0.2, "normal"))
    other = sqlite3.connect(path, isolation_level=None)
    try:
        await db.run(lambda conn: conn.execute("CREATE TABLE t (v INTEGER)"))
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock past the busy timeout
        outcomes = await _queued_behind(db, *(db.write(_insert, value) for value in (1, 2, 3)))
        assert all(isinstance(outcome, StoreError) and "locked" in str(outcome) for outcome in outcomes)
        other.execute("ROLLBACK")
        assert await db.write(_insert, 4) == 4
        assert await db.run(lambda conn: conn.execute("SELECT v FROM t").fetchall()) == [(4,)]
    finally:
        other.close()
        await db.close()


async def test_appends_queued_together_each_get_their_own_answer(sstore: SQLiteStore, clock: VirtualClock) -> None:
    for name in ("kay", "lou"):
        await sstore.connect(name)
    appends = [sstore.append_turn(name, Turn("user", text, clock.now(), item))
               for name, text, item in [("kay", "a", "1"), ("lou", "b", "1"), ("kay", "a again", "1"),
                                        ("nobody", "c", "1"), ("kay", "d", "2"), ("lou", "e", None)]]
    outcomes = await asyncio.gather(*appends, return_exceptions=True)
    assert outcomes[:3] == [True, True, False] and isinstance(outcomes[3], SessionNotFoundError)
    assert outcomes[4:] == [True, True]
    assert [t.text for t in await sstore.recent_turns("kay")] == ["a", "d"]
    assert [t.text for t in await sstore.recent_turns("lou")] == ["b", "e"]
