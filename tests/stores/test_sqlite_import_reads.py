"""SQLite's import reads the stored records of a batch a slice at a time, then decides each record.

What it decides must be what it would decide reading each record alone, in the file's order: a batch
spanning several slices, identities repeated in it (the later line sees the earlier one's result),
identities new in the batch and then repeated, and a stored record that does not decode (that one
fails, alone). The reference is the same records imported one call each into a copy of the store.
"""

from __future__ import annotations

import shutil
import sqlite3
from dataclasses import replace
from pathlib import Path

from lkpersist.clock import VirtualClock
from lkpersist.model.results import CorruptRecord
from lkpersist.model.session import Session, Turn
from lkpersist.model.transfer import ImportOutcome, SessionRecord
from lkpersist.stores import open_store
from lkpersist.stores.sqlite.transfer import SCAN_ROWS


def _record(clock: VirtualClock, n: int, turns: range, **fields: object) -> SessionRecord:
    now = clock.now()
    session = Session(identity=f"user-{n}", joined_at=now - 100 - n, last_seen=now - 10, reconnect_count=n % 4,
                      language="fr", metadata={"n": n}, expires_at=now + 590, ttl=600.0, greeted_visit=1)
    turn_list = tuple(Turn("user", f"turn {t} of {n}", now - 60 + t, f"t-{t}") for t in turns)
    return SessionRecord(replace(session, **fields), turn_list)  # type: ignore[arg-type]


async def _state(path: Path, clock: VirtualClock) -> dict[str, SessionRecord | str]:
    store = open_store(f"sqlite:///{path}", clock=clock)
    try:
        return {(item.identity if isinstance(item, CorruptRecord) else item.session.identity):
                (item.reason if isinstance(item, CorruptRecord) else item)
                async for page in store.iter_records("all") for item in page}
    finally:
        await store.close()


async def test_a_batch_decides_as_its_records_one_by_one(tmp_path: Path, clock: VirtualClock) -> None:
    stored_count = 2 * SCAN_ROWS + 50
    first = tmp_path / "batch.db"
    store = open_store(f"sqlite:///{first}", clock=clock)
    await store.import_records([_record(clock, n, range(3)) for n in range(stored_count)])
    await store.close()
    conn = sqlite3.connect(first, isolation_level=None)  # one stored record that does not decode
    conn.execute("UPDATE lkpersist_turns SET payload = '{not json' WHERE session_id = "
                 "(SELECT id FROM lkpersist_sessions WHERE identity = 'user-150')")
    conn.close()  # the last connection: the file is whole without its WAL
    second = tmp_path / "one-by-one.db"
    shutil.copy(first, second)

    batch = [_record(clock, n, range(2, 5), reconnect_count=5) for n in range(stored_count)]  # merged
    batch[40:40] = [_record(clock, 7, range(9, 11))]  # a repeat of an identity merged just before
    batch[230:230] = [_record(clock, 7, range(12, 13), language="de")]  # ... and again, two slices later
    batch += [_record(clock, 999, range(1)), _record(clock, 999, range(1, 3))]  # new, then repeated
    batch += [_record(clock, 3, range(3))]  # unchanged by now
    rule = "merge"

    store = open_store(f"sqlite:///{first}", clock=clock)
    outcomes = await store.import_records(batch, rule)
    await store.close()
    store = open_store(f"sqlite:///{second}", clock=clock)
    expected = [outcome for record in batch for outcome in await store.import_records([record], rule)]
    await store.close()

    assert outcomes == expected
    assert outcomes.count(ImportOutcome.FAILED) == 1 and outcomes[-1] is ImportOutcome.UNCHANGED
    assert await _state(first, clock) == await _state(second, clock)
    merged = (await _state(first, clock))["user-7"]
    assert isinstance(merged, SessionRecord) and merged.session.language == "de"
    assert [turn.item_id for turn in merged.turns] == [f"t-{t}" for t in (0, 1, 2, 3, 4, 9, 10, 12)]
