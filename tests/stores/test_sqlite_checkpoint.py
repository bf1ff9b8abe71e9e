"""The checkpoints of SQLite's inline writes: copied while the loop writes on, the WAL still started over.

The worker checkpoints in rounds while inline writes continue, then pauses them for the last frames
(lkpersist.stores.sqlite.db.Database._checkpoint_and_resume). The pause must wait for a write in flight,
or that write's frames would keep the WAL from starting over.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from lkpersist.clock import VirtualClock
from lkpersist.stores import open_store
from lkpersist.stores.sqlite import SQLiteStore
from lkpersist.stores.sqlite.inline import CHECKPOINT_EVERY


def _open(path: Path, clock: VirtualClock) -> SQLiteStore:
    store = open_store(f"sqlite:///{path}", clock=clock)
    assert isinstance(store, SQLiteStore)
    return store


async def test_a_pause_waits_for_the_inline_write_in_flight(tmp_path: Path, clock: VirtualClock) -> None:
    store = _open(tmp_path / "s.db", clock)
    try:
        await store.count("all")
        writer = store._db._inline
        pausing = threading.Thread(target=writer.pause)
        waiting: list[bool] = []

        def write(conn: sqlite3.Connection) -> str:
            pausing.start()
            pausing.join(0.2)
            waiting.append(pausing.is_alive() and not writer.paused)  # the pause waits for this write
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO lkpersist_meta VALUES ('probe', 'x')")
            conn.execute("COMMIT")
            return "written"

        assert await store._db.run_short(write) == "written"
        pausing.join(10)
        assert waiting == [True]
        assert writer.paused  # the pause went through once the write had committed
        assert writer.attempt(lambda conn: None, ()) == (False, None)  # and later writes take the worker's way
    finally:
        store._db._inline.paused = False
        await store.close()


async def test_checkpoints_during_inline_writes_start_the_wal_over(tmp_path: Path, clock: VirtualClock) -> None:
    """The checkpoint runs while the loop goes on writing (nothing awaits it): the WAL still stays bounded."""
    path = tmp_path / "s.db"
    store = _open(path, clock)
    try:
        await store.count("all")
        wal = Path(f"{path}-wal")
        sizes = []
        for period in range(8):
            for index in range(CHECKPOINT_EVERY):
                await store.arrive(f"caller-{period}-{index}", "a")
                clock.advance(0.01)
            sizes.append(wal.stat().st_size)
        await store.count("all")
        # The file keeps its largest size: one period's frames and those written while the checkpoint
        # caught up, unless a restart was missed (then two periods' and more).
        assert max(sizes) < 2 * sizes[0], sizes
    finally:
        await store.close()


async def test_only_the_last_round_of_a_checkpoint_pauses_inline_writes(tmp_path: Path, clock: VirtualClock) -> None:
    path = tmp_path / "s.db"
    store = _open(path, clock)
    try:
        for index in range(50):
            await store.arrive(f"caller-{index}", "a")
        writer = store._db._inline
        rounds: list[bool] = []  # per checkpoint statement: were inline writes paused?

        class Watched:
            def __init__(self, conn: sqlite3.Connection) -> None:
                self.conn = conn

            def execute(self, sql: str) -> sqlite3.Cursor:
                rounds.append(writer.paused)
                return self.conn.execute(sql)

        conn = sqlite3.connect(path, isolation_level=None)
        store._db._checkpoint_and_resume(Watched(conn))  # type: ignore[arg-type]
        conn.close()
        assert rounds[0] is False and rounds[-1] is True and rounds.count(True) == 1, rounds
        assert not writer.paused
        assert (await store.arrive("after", "a")).new_visit
        assert writer.attempt(lambda conn: "inline", ()) == (True, "inline")
    finally:
        await store.close()
