"""Summaries and userdata at rest: encrypted like every context value, and refused under the wrong key."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from lkpersist.agent.userdata import USERDATA_KEY, UserdataCodec
from lkpersist.clock import VirtualClock
from lkpersist.crypto.fernet import FernetCodec
from lkpersist.crypto.keys import generate_key
from lkpersist.exceptions import DecryptionError
from lkpersist.model.session import SUMMARY_KEY, Turn
from lkpersist.stores import open_store
from tests.conftest import store_url_for
from tests.security._raw import raw_values

KEY, OTHER_KEY = generate_key(), generate_key()
SUMMARY = "they disclosed the custody hearing on Monday"
USER_NOTE = "prefers to be called Captain Nemo"


@dataclass
class Notes:
    note: str = ""


@pytest.fixture(params=["sqlite", "redis"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return store_url_for(str(request.param), tmp_path, request)


async def _write(url: str, clock: VirtualClock) -> None:
    async with open_store(url, clock=clock, codec=FernetCodec([KEY])) as store:
        await store.connect("p1")
        for n in range(4):
            await store.append_turn("p1", Turn("user", f"line {n}", clock.now() + n, f"i{n}"))
        await store.compact_turns("p1", SUMMARY, (await store.recent_turns("p1"))[:2])
        await store.update("p1", context={USERDATA_KEY: UserdataCodec(Notes).encode(Notes(USER_NOTE))})


async def test_summary_and_userdata_are_not_stored_in_plaintext(url: str, clock: VirtualClock) -> None:
    await _write(url, clock)
    blob = b"\n".join(raw_values(url, with_files=True))
    assert SUMMARY.encode() not in blob and USER_NOTE.encode() not in blob
    async with open_store(url, clock=clock, codec=FernetCodec([KEY])) as store:
        context = (await store.require("p1")).context
    assert context[SUMMARY_KEY] == SUMMARY
    assert UserdataCodec(Notes).decode(context[USERDATA_KEY]) == Notes(USER_NOTE)


async def test_compaction_under_the_wrong_key_changes_nothing(url: str, clock: VirtualClock) -> None:
    await _write(url, clock)
    before = sorted(raw_values(url))
    async with open_store(url, clock=clock, codec=FernetCodec([OTHER_KEY])) as store:
        covered = [Turn("user", "line 2", clock.now() + 2, "i2")]
        with pytest.raises(DecryptionError, match="cannot decrypt session 'p1'"):
            await store.compact_turns("p1", "a summary written under another key", covered)
    assert sorted(raw_values(url)) == before
