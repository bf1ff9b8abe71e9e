"""SQLite-only behaviour: file rules, pragmas, schema, corrupt rows, several processes on one file.

The shared behaviour is in test_contract.py; everything here runs against real SQLite files in tmp_path.
Raw ``sqlite3`` connections stand in for "someone else" (another process, a damaged disk, an old tool).
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from lkpersist.clock import VirtualClock
from lkpersist.exceptions import CorruptRecordError, InvalidStoreURLError, StoreError, StoreUnavailableError
from lkpersist.model.results import CorruptRecord
from lkpersist.model.session import Session, Turn
from lkpersist.stores import open_store
from lkpersist.stores.sqlite import SQLiteStore
from tests.conftest import T0


def _url(path: Path, query: str = "") -> str:
    return f"sqlite:///{path}{query}"


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "sessions.db"


@pytest.fixture
async def store(db_path: Path, clock: VirtualClock) -> AsyncIterator[SQLiteStore]:
    opened = open_store(_url(db_path), clock=clock)
    assert isinstance(opened, SQLiteStore)
    try:
        yield opened
    finally:
        await opened.close()


def _raw(path: Path, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    """Run one statement on the file with a plain sqlite3 connection (another process, as far as we care)."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


# --- file location and URLs ------------------------------------------------------------------------


async def test_relative_url_is_resolved_from_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clock: VirtualClock
) -> None:
    monkeypatch.chdir(tmp_path)
    store = open_store("sqlite:///state/nested/rel.db", clock=clock)
    monkeypatch.chdir("/")  # resolved when opened: a later chdir does not move the file
    try:
        assert isinstance(store, SQLiteStore) and store.path == tmp_path / "state" / "nested" / "rel.db"
        await store.connect("alice")
    finally:
        await store.close()
    assert (tmp_path / "state" / "nested" / "rel.db").is_file()


async def test_absolute_url_has_four_slashes(tmp_path: Path, clock: VirtualClock) -> None:
    url = f"sqlite:///{tmp_path}/deeper/abs.db"
    assert url.startswith("sqlite:////")
    store = open_store(url, clock=clock)
    try:
        await store.connect("alice")
    finally:
        await store.close()
    assert _raw(tmp_path / "deeper" / "abs.db", "SELECT identity FROM lkpersist_sessions") == [("alice",)]


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("sqlite://", "no database file"),
        ("sqlite:///", "no database file"),
        ("sqlite://somehost/x.db", "no host"),
        ("sqlite:///some/dir/", "no database file"),
        ("sqlite:///x.db?bogus=1", "unknown option 'bogus'"),
        ("sqlite:///x.db?timeout=soon", "not a number"),
        ("sqlite:///x.db?timeout=0", "positive"),
        ("sqlite:///x.db?synchronous=off", "synchronous must be one of"),
    ],
)
def test_bad_urls_are_refused_before_any_file_is_touched(
    url: str, complaint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InvalidStoreURLError, match=complaint) as caught:
        open_store(url)
    assert caught.value.exit_code == 3
    assert list(tmp_path.iterdir()) == []


def test_a_directory_is_not_a_database_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidStoreURLError, match="is a directory"):
        open_store(f"sqlite:///{tmp_path}")


async def test_url_options_are_applied(db_path: Path) -> None:
    store = open_store(_url(db_path, "?timeout=2.5&synchronous=full"))
    assert isinstance(store, SQLiteStore)
    try:
        busy, synchronous = await _pragmas(store, "busy_timeout", "synchronous")
    finally:
        await store.close()
    assert (busy, synchronous) == (2500, 2)  # 2 = FULL


# --- pragmas and schema ----------------------------------------------------------------------------


async def _pragmas(store: SQLiteStore, *names: str) -> list[object]:
    """Read pragmas on the store's own connection (they are per connection, except journal_mode)."""
    return await store._db.run(lambda conn: [conn.execute(f"PRAGMA {name}").fetchone()[0] for name in names])


async def test_wal_normal_sync_and_busy_timeout_are_on(store: SQLiteStore, db_path: Path) -> None:
    await store.connect("alice")
    assert await _pragmas(store, "journal_mode", "synchronous", "busy_timeout") == ["wal", 1, 30_000]
    assert _raw(db_path, "PRAGMA journal_mode") == [("wal",)]  # persistent in the file


async def test_schema_version_is_recorded(store: SQLiteStore, db_path: Path) -> None:
    await store.count("all")
    assert _raw(db_path, "SELECT value FROM lkpersist_meta WHERE key = 'schema_version'") == [("5",)]  # 3: analytics; 4: presence; 5: events carry visit_hash


async def test_a_file_from_a_newer_lkpersist_is_refused(store: SQLiteStore, db_path: Path, clock: VirtualClock) -> None:
    await store.count("all")
    _raw(db_path, "UPDATE lkpersist_meta SET value = '99' WHERE key = 'schema_version'")
    newer = open_store(_url(db_path), clock=clock)
    try:
        with pytest.raises(StoreError, match="schema version 99 is newer"):
            await newer.count("all")
    finally:
        await newer.close()


async def test_writers_wait_for_the_lock_instead_of_failing(store: SQLiteStore, db_path: Path) -> None:
    await store.connect("alice")
    await store.disconnect("alice")
    holder = sqlite3.connect(db_path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    waiting = asyncio.ensure_future(store.connect("alice"))
    await asyncio.sleep(0.3)
    assert not waiting.done()
    holder.execute("COMMIT")
    holder.close()
    assert (await asyncio.wait_for(waiting, 10)).session.reconnect_count == 1


async def test_a_lock_held_past_the_timeout_is_a_clear_error(db_path: Path, clock: VirtualClock) -> None:
    store = open_store(_url(db_path, "?timeout=0.2"), clock=clock)
    await store.connect("alice")
    await store.disconnect("alice")
    holder = sqlite3.connect(db_path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreUnavailableError, match="busy timeout") as caught:
            await store.connect("alice")
        assert str(db_path) in str(caught.value) and "\n" not in str(caught.value)
        assert await store.count("all") == 1  # readers are not blocked by a writer in WAL mode
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        await store.close()


async def test_a_file_that_is_not_a_database_is_one_clear_error(db_path: Path, clock: VirtualClock) -> None:
    db_path.write_bytes(b"definitely not sqlite\n" * 200)
    store = open_store(_url(db_path), clock=clock)
    try:
        with pytest.raises(StoreError) as caught:
            await store.get("alice")
    finally:
        await store.close()
    message = str(caught.value)
    assert "not a database" in message and str(db_path) in message and "\n" not in message
    assert caught.value.exit_code == 3


async def test_an_unwritable_location_is_store_unavailable(tmp_path: Path, clock: VirtualClock) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    store = open_store(f"sqlite:///{blocker}/sub/sessions.db", clock=clock)
    try:
        with pytest.raises(StoreUnavailableError, match="sub"):
            await store.connect("alice")
    finally:
        await store.close()


async def test_a_closed_store_refuses_work(store: SQLiteStore) -> None:
    await store.connect("alice")
    await store.close()
    await store.close()
    with pytest.raises(StoreError, match="closed"):
        await store.get("alice")


# --- corrupt rows ----------------------------------------------------------------------------------

GARBAGE = {
    "binary blob": "X'FF00FE'",
    "invalid UTF-8 text": "CAST(X'C328FF' AS TEXT)",
    "JSON that is not an object": "'[1, 2]'",
    "a number": "5",
}


@pytest.mark.parametrize("garbage", list(GARBAGE.values()), ids=list(GARBAGE))
async def test_corrupt_record_is_named_and_does_not_stop_the_others(
    store: SQLiteStore, db_path: Path, clock: VirtualClock, garbage: str
) -> None:
    for name in ("a", "bad one", "c"):
        await store.connect(name)
        clock.advance(1)
    _raw(db_path, f"UPDATE lkpersist_sessions SET metadata = {garbage} WHERE identity = 'bad one'")

    with pytest.raises(CorruptRecordError) as caught:
        await store.get("bad one")
    assert caught.value.identity == "bad one" and "bad one" in str(caught.value)
    with pytest.raises(CorruptRecordError):
        await store.connect("bad one")

    items = [item async for item in store.iter_sessions("all", page_size=1)]
    assert [type(item).__name__ for item in items] == ["Session", "CorruptRecord", "Session"]
    assert [item.identity for item in items] == ["c", "bad one", "a"]

    await store.disconnect("a")
    await store.disconnect("c")
    for _ in range(4):
        clock.advance(50)
        assert await store.heartbeat("bad one") is True  # presence never needs the personal fields
    clock.advance(100)
    assert await store.count("expired") == 2
    assert (await store.purge()).purged == 2
    assert [item.identity async for item in store.iter_sessions("all")] == ["bad one"]
    clock.advance(301)
    assert (await store.purge()).purged == 1  # purge never decodes: a corrupt expired row goes too


async def test_an_expired_corrupt_record_is_simply_absent(
    store: SQLiteStore, db_path: Path, clock: VirtualClock
) -> None:
    await store.connect("old")
    _raw(db_path, "UPDATE lkpersist_sessions SET context = X'00' WHERE identity = 'old'")
    clock.advance(301)
    assert await store.get("old") is None
    assert (await store.connect("old")).returning is False
    assert (await store.require("old")).context == {}


async def test_corrupt_turn_is_named(store: SQLiteStore, db_path: Path, clock: VirtualClock) -> None:
    await store.connect("talker")
    await store.append_turn("talker", Turn("user", "hi", clock.now(), "t1"))
    _raw(db_path, "UPDATE lkpersist_turns SET payload = X'FFFF'")
    with pytest.raises(CorruptRecordError, match="talker"):
        await store.recent_turns("talker")


async def test_personal_values_go_through_the_codec(db_path: Path, clock: VirtualClock) -> None:
    class Rot13:
        def encode(self, plaintext: str) -> str:
            return "rot13:" + plaintext.translate(_ROT13)

        def decode(self, stored: str) -> str:
            assert stored.startswith("rot13:")
            return stored[6:].translate(_ROT13)

    store = open_store(_url(db_path), clock=clock, codec=Rot13())
    try:
        await store.connect("ann")
        await store.update("ann", language="english", metadata={"secret": "plan"}, context={"summary": "hello"})
        await store.append_turn("ann", Turn("user", "my password", clock.now(), "t1"))
        session = await store.require("ann")
        assert (session.language, session.metadata, session.context) == (
            "english", {"secret": "plan"}, {"summary": "hello"})
        assert [t.text for t in await store.recent_turns("ann")] == ["my password"]
    finally:
        await store.close()
    dump = "\n".join(sqlite3.connect(db_path).iterdump())
    for plain in ("english", "plan", "hello", "password"):
        assert plain not in dump
    assert "rot13:" in dump


_ROT13 = str.maketrans(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", "nopqrstuvwxyzabcdefghijklmNOPQRSTUVWXYZABCDEFGHIJKLM"
)


# --- listing never loads everything ----------------------------------------------------------------


async def test_listing_counting_and_purging_walk_indexes_without_sorting(
    store: SQLiteStore, db_path: Path, clock: VirtualClock
) -> None:
    for index in range(5):
        await store.connect(f"u{index}")
    statements: list[str] = []
    await store._db.run(lambda conn: conn.set_trace_callback(statements.append))
    page = await store.list_page("active", limit=2)
    await store.list_page("expired", limit=2, cursor=page.next_cursor)
    await store.count("active")
    await store.purge(older_than=60)
    await store._db.run(lambda conn: conn.set_trace_callback(None))
    checked = [s for s in statements if s.lstrip().upper().startswith(("SELECT", "DELETE"))]
    assert len(checked) >= 5
    for statement in checked:
        steps = [str(row[3]) for row in _raw(db_path, "EXPLAIN QUERY PLAN " + statement)]
        assert not any("TEMP B-TREE" in step for step in steps), (statement, steps)
        assert all(step.startswith("SEARCH") or " INDEX " in step for step in steps if " lkpersist_" in step), (
            statement, steps)  # an index walk that LIMIT stops early, never a table scan or a sort
        if "last_seen <=" in statement:  # a later page starts at its cursor instead of skipping rows
            assert any(step.startswith("SEARCH") and "by_last_seen (last_seen<?)" in step for step in steps)


# --- several processes on one file -----------------------------------------------------------------

_PROCESS = """
import asyncio, os, sys
from lkpersist.clock import VirtualClock
from lkpersist.stores import open_store

url, now, action, args = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4:]

async def main() -> None:
    store = open_store(url, clock=VirtualClock(now))
    try:
        if action == "connect":
            for identity in args:
                await store.connect(identity)
        elif action == "purge":  # args: a ready flag to create, a go flag to wait for
            await store.count("all")
            open(args[0], "w").close()
            while not os.path.exists(args[1]):
                await asyncio.sleep(0.002)
            print((await store.purge()).purged)
    finally:
        await store.close()

asyncio.run(main())
"""


def _spawn(url: str, now: float, action: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", _PROCESS, url, repr(now), action, *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def _finish(process: subprocess.Popen[str]) -> str:
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    return out


async def test_a_session_written_by_another_process_is_seen(store: SQLiteStore, db_path: Path) -> None:
    _finish(_spawn(_url(db_path), T0, "connect", "from elsewhere"))
    session = await store.require("from elsewhere")
    assert session.connected and session.reconnect_count == 0


def test_processes_creating_a_fresh_file_at_once_all_succeed(db_path: Path) -> None:
    processes = [_spawn(_url(db_path), T0, "connect", f"p{index}") for index in range(4)]
    for process in processes:
        _finish(process)
    assert _raw(db_path, "SELECT COUNT(*) FROM lkpersist_sessions") == [(4,)]
    assert _raw(db_path, "SELECT COUNT(*) FROM lkpersist_meta WHERE key = 'schema_version'") == [(1,)]
    assert _raw(db_path, "SELECT COUNT(DISTINCT value) FROM lkpersist_meta WHERE key = 'analytics_key'") == [(1,)]


async def test_two_purges_at_once_delete_each_expired_session_once(
    store: SQLiteStore, db_path: Path, clock: VirtualClock
) -> None:
    expired, live = 20_500, 700  # 21 chunks, so the two purges interleave
    await store.count("all")
    _bulk_sessions(db_path, expired=expired, live=live, now_ms=int(T0 * 1000))
    await store.connect("came back")  # live, last seen now
    go, ready = db_path.parent / "go", [db_path.parent / f"ready{index}" for index in range(2)]
    purgers = [_spawn(_url(db_path), T0 + 1, "purge", str(flag), str(go)) for flag in ready]
    while not all(flag.exists() for flag in ready):
        assert all(process.poll() is None for process in purgers), _finish(purgers[0]) + _finish(purgers[1])
        await asyncio.sleep(0.01)
    go.touch()
    counts = [int(_finish(process)) for process in purgers]
    assert sum(counts) == expired
    assert await store.count("all") == live + 1
    assert await store.get("came back") is not None


def _bulk_sessions(path: Path, *, expired: int, live: int, now_ms: int) -> None:
    """Rows in the real schema, written directly (as the benchmark does) to have thousands quickly."""
    rows = [
        (f"s{index}", now_ms - 10_000, now_ms - 10_000, 0, 0, now_ms - 5_000, 300_000,
         now_ms - 5_000 if index < expired else now_ms + 600_000, 1, 1, None, "{}", "{}")
        for index in range(expired + live)
    ]
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO lkpersist_sessions (identity, joined_at, last_seen, reconnect_count, connected, "
            "expires_at, ttl, deadline, greeted_visit, schema_version, language, metadata, "
            "context) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        conn.execute("COMMIT")
    finally:
        conn.close()


async def test_sessions_survive_reopening_the_file(db_path: Path, clock: VirtualClock) -> None:
    first = open_store(_url(db_path), clock=clock)
    await first.connect("persistent")
    await first.update("persistent", metadata={"k": "v"})
    await first.close()
    second = open_store(_url(db_path), clock=clock)
    try:
        session = await second.require("persistent")
        assert isinstance(session, Session) and session.metadata == {"k": "v"}
        assert not [i async for i in second.iter_sessions("all") if isinstance(i, CorruptRecord)]
    finally:
        await second.close()


def test_a_store_used_before_fork_works_in_the_child(db_path: Path, clock: VirtualClock) -> None:
    store = open_store(_url(db_path), clock=clock)
    asyncio.run(store.connect("parent"))
    asyncio.run(store.disconnect("parent"))
    pid = os.fork()
    if pid == 0:  # the child: the inherited worker thread does not exist here
        code = 1
        try:
            code = 0 if asyncio.run(asyncio.wait_for(store.connect("parent"), 10)).returning else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert asyncio.run(store.require("parent")).reconnect_count == 1
    asyncio.run(store.close())


async def test_create_false_never_creates_the_file_or_its_directories(tmp_path: Path) -> None:
    from lkpersist.exceptions import StoreNotFoundError

    path = tmp_path / "a" / "b" / "sessions.db"
    store = open_store(f"sqlite:///{path}", create=False)
    try:
        with pytest.raises(StoreNotFoundError) as raised:
            await store.count()
    finally:
        await store.close()
    assert raised.value.path == str(path) and raised.value.exit_code == 3
    assert not (tmp_path / "a").exists()
    writer = open_store(f"sqlite:///{path}")  # the default creates it, directories included
    try:
        assert await writer.count() == 0
    finally:
        await writer.close()
    assert path.exists()
