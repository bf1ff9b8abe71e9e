"""Export's bulk read of stored turns (dicts, no Turn per turn) against the per-turn path it stands in for.

Every stored form a turn can take is read back as the per-turn decoder reads it: the lkpersist form
in bulk, anything else (an integer timestamp, keys in another order, a missing item id, damage) by the
per-turn path, which builds the same turns or names the record as corrupt. Export lines are the same
text either way. SQLite and Redis keep turns differently, so each is written raw in its own form.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import redis

from lkpersist.clock import VirtualClock
from lkpersist.crypto.codec import PLAIN
from lkpersist.crypto.fernet import FernetCodec
from lkpersist.crypto.keys import generate_key
from lkpersist.model.results import CorruptRecord
from lkpersist.model.session import Session, Turn
from lkpersist.model.transfer import ImportOutcome, SessionRecord
from lkpersist.stores import open_store
from lkpersist.stores.base import SessionStore
from lkpersist.stores.redis import RedisStore
from lkpersist.stores.redis.records import frame_turn
from lkpersist.stores.redis.transfer import turn_frames
from lkpersist.stores.sqlite import SQLiteStore
from lkpersist.transfer.format import record_line
from tests.conftest import T0

GOOD = Turn("user", "héllo \"there\"\n", T0 - 5.25, "item-1")
STORED_FORMS = {
    "as written": GOOD.to_json(),
    "integer timestamp": '{"role":"assistant","text":"a","timestamp":1800000000,"item_id":null}',
    "other key order": '{"text":"b","role":"user","timestamp":1800000001.5,"item_id":"i-2"}',
    "no item id": '{"role":"user","text":"c","timestamp":1800000002.0}',
    "spaces": '{"role": "user", "text": "d", "timestamp": 1800000003.0, "item_id": null}',
    "an extra key": '{"role":"user","text":"e","timestamp":1800000004.0,"item_id":null,"x":1}',
}
DAMAGED = {"not json": "{not json", "two values": GOOD.to_json() + "," + GOOD.to_json(), "a list": "[1, 2]"}

Writer = Callable[[str, str], None]
"""Appends one raw stored turn payload to an identity's turns."""


@pytest.fixture(params=("sqlite", "redis"))
async def raw_store(
    request: pytest.FixtureRequest, tmp_path: Path, clock: VirtualClock
) -> AsyncIterator[tuple[SessionStore, Writer]]:
    """A store and a function that appends a raw payload to an identity's stored turns, behind its back."""
    if request.param == "sqlite":
        path = tmp_path / "raw.db"
        store: SessionStore = open_store(f"sqlite:///{path}", clock=clock)
        assert isinstance(store, SQLiteStore)
        writer = _sqlite_writer(path)
    else:
        url, prefix = request.getfixturevalue("redis_url"), request.getfixturevalue("redis_prefix")
        store = open_store(f"{url}{'&' if '?' in url else '?'}prefix={prefix}", clock=clock)
        assert isinstance(store, RedisStore)
        writer = _redis_writer(store, request.getfixturevalue("sync_redis"))
    yield store, writer
    await store.close()


def _sqlite_writer(path: Path) -> Writer:
    def write(identity: str, payload: str) -> None:
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            (session_id,) = conn.execute("SELECT id FROM lkpersist_sessions WHERE identity = ?", (identity,)).fetchone()
            (seq,) = conn.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM lkpersist_turns WHERE session_id = ?",
                                  (session_id,)).fetchone()
            conn.execute("INSERT INTO lkpersist_turns (session_id, seq, item_id, payload) VALUES (?, ?, NULL, ?)",
                         (session_id, seq, payload))
        finally:
            conn.close()
    return write


def _redis_writer(store: RedisStore, client: redis.Redis) -> Writer:
    def write(identity: str, payload: str) -> None:
        client.rpush(store.keys.keys_for(identity)[1].turns, b"-:" + payload.encode("utf-8"))
    return write


def _session(identity: str) -> Session:
    return Session(identity=identity, joined_at=T0 - 100, last_seen=T0 - 10, reconnect_count=1,
                   metadata={"n": 2**70}, expires_at=T0 + 590, ttl=600.0)


async def _records(store: SessionStore) -> dict[str, SessionRecord | CorruptRecord]:
    found: dict[str, SessionRecord | CorruptRecord] = {}
    async for page in store.iter_records("all", page_size=2):
        found.update((item.identity if isinstance(item, CorruptRecord) else item.session.identity, item)
                     for item in page)
    return found


async def test_every_stored_turn_form_reads_as_the_per_turn_path_reads_it(
    raw_store: tuple[SessionStore, Writer],
) -> None:
    store, write = raw_store
    names = [*STORED_FORMS, *DAMAGED]
    await store.import_records([SessionRecord(_session(name), (GOOD,)) for name in names])
    for name, payload in {**STORED_FORMS, **DAMAGED}.items():
        write(name, payload)
    found = await _records(store)
    assert set(found) == set(names)
    for name, payload in STORED_FORMS.items():
        record, expected = found[name], (GOOD, Turn.from_dict(json.loads(payload)))
        assert isinstance(record, SessionRecord), (name, record)
        assert record.turns == expected and type(record.turns[1].timestamp) is float, name
        assert record.session.metadata == {"n": 2**70}
        assert record_line(record) == record_line(SessionRecord(record.session, expected)), name
    for name in DAMAGED:
        assert isinstance(found[name], CorruptRecord) and found[name].identity == name, name


async def test_an_encrypted_store_exports_what_it_imported(tmp_path: Path, clock: VirtualClock) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'enc.db'}", clock=clock, codec=FernetCodec([generate_key()]))
    try:
        records = [SessionRecord(_session(f"u{i}"), (GOOD, Turn("assistant", f"r{i}", T0 - 1, None))) for i in range(5)]
        assert await store.import_records(records) == [ImportOutcome.CREATED] * 5
        assert await _records(store) == {r.session.identity: r for r in records}
    finally:
        await store.close()


async def test_an_identity_twice_in_one_batch_is_created_then_merged(raw_store: tuple[SessionStore, Writer]) -> None:
    store, _ = raw_store
    first = SessionRecord(_session("twice"), (GOOD,))
    later = Turn("assistant", "later", T0 - 1, "item-2")
    second = SessionRecord(_session("twice"), (GOOD, later))
    outcomes = await store.import_records([first, SessionRecord(_session("other")), second, first])
    assert outcomes == [ImportOutcome.CREATED, ImportOutcome.CREATED, ImportOutcome.MERGED, ImportOutcome.UNCHANGED]
    assert (await _records(store))["twice"] == second


@pytest.mark.parametrize("item_id", [None, "item_1", "ünï {*} :7:"])
def test_bulk_frames_are_the_frames_a_turn_makes(item_id: str | None) -> None:
    turn = Turn("user", "text: with a colon", 1800000000.5, item_id)
    assert turn_frames([turn.to_dict()], [turn.to_json()]) == [frame_turn(turn, PLAIN)]
