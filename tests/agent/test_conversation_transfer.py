"""A summarised session with typed userdata, exported from SQLite and imported into Redis, comes back whole:
the next job on Redis restores the summary before the recent turns and the userdata as its class."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from lkpersist.agent.summaries import Summaries
from lkpersist.clock import VirtualClock
from lkpersist.stores import open_store
from lkpersist.transfer.export import export_sessions
from lkpersist.transfer.import_ import import_sessions
from tests.agent.conftest import JobFactory
from tests.conftest import store_url_for

SMALL = Summaries(cap=12, keep=4, check_every=2, settle=0)


@dataclass
class Basket:
    items: list[str] = field(default_factory=list)


async def test_summary_and_userdata_survive_export_and_import(
    tmp_path: Path, clock: VirtualClock, make_job: JobFactory, request: pytest.FixtureRequest
) -> None:
    sqlite = open_store(store_url_for("sqlite", tmp_path, request), clock=clock)
    redis = open_store(store_url_for("redis", tmp_path, request), clock=clock)
    try:
        job = await make_job(sqlite, summaries=SMALL, initial_userdata=Basket(), userdata=Basket)
        await job.arrive("ada")
        for index in range(8):
            await job.say_user(f"add item {index}")
        job.session.userdata.items.append("olives")
        await job.leave("ada")
        dump = tmp_path / "sessions.ndjson"
        with dump.open("w", encoding="utf-8") as out:
            await export_sessions(sqlite, out, status="all")
        with dump.open(encoding="utf-8") as lines:
            await import_sessions(redis, lines)
        clock.advance(10)
        again = await make_job(redis, summaries=SMALL, initial_userdata=Basket(), userdata=Basket)
        await again.arrive("ada")
        assert again.session.userdata == Basket(["olives"])
        await again.say_user("what is in my basket?")
        restored = [m for m in again.llm.calls[-1].messages() if m.extra.get("lkpersist_restored")]
        assert restored[0].extra.get("is_summary") and '"add item 0"' in (restored[0].text_content or "")
    finally:
        await sqlite.close()
        await redis.close()
