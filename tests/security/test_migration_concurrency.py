"""``encrypt migrate`` while an agent-like process keeps reconnecting and appending turns: nothing lost.

The writer (a real process, with the key, as agents run once encryption is switched on) hammers a few
"hot" sessions whose turn lists are full, so every append trims the oldest turn and shifts the list
under the migration's compare-and-set. The migration runs as the real CLI in another process. Afterwards
every reconnect increment and every turn the writer made is there, and no plaintext is left.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from lkpersist.crypto.codec import PLAIN
from lkpersist.crypto.fernet import FernetCodec
from lkpersist.model.session import Turn
from lkpersist.stores import open_store
from tests.cli.test_processes import lkpersist_command
from tests.security._raw import raw_values
from tests.security._sessions import KEY

HOT = [f"hot-{n}" for n in range(6)]
COLD = [f"cold-{n}" for n in range(40)]
TURN_CAP = 100  # the writer trims at this cap while the migration rewrites: hot sessions start just below it
SEEDED_TURNS = {**dict.fromkeys(HOT, TURN_CAP - 2), **dict.fromkeys(COLD, 12)}
SECRET = "seeded secret"

WRITER = textwrap.dedent("""
    import asyncio, json, os, sys
    from lkpersist.crypto.fernet import FernetCodec
    from lkpersist.model.session import Turn
    from lkpersist.stores import open_store

    async def main(url, stop_file, identities):
        done = {identity: {"reconnects": 0, "turns": []} for identity in identities}
        async with open_store(url, codec=FernetCodec([os.environ["KEY"]]), max_turns=100) as store:
            round_ = 0
            while not os.path.exists(stop_file) or round_ < 3:
                for identity in identities:
                    await store.connect(identity)
                    done[identity]["reconnects"] += 1
                    item = f"w{round_}"
                    await store.append_turn(identity, Turn("user", f"new turn {item}", 2.0, item_id=item))
                    done[identity]["turns"].append(item)
                    await store.update(identity, metadata={"note": f"changed in round {round_}"})
                    await store.disconnect(identity)
                round_ += 1
                await asyncio.sleep(0.002)
                if round_ == 1:
                    print("started", flush=True)
        print(json.dumps(done), flush=True)

    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3:]))
""")


async def seed(url: str) -> dict[str, list[str]]:
    """Plaintext sessions (written before encryption was on); returns each one's turn item ids."""
    items: dict[str, list[str]] = {}
    async with open_store(url, codec=PLAIN) as store:
        for identity, count in SEEDED_TURNS.items():
            await store.connect(identity)
            await store.update(identity, language=f"{SECRET} lang", metadata={"note": f"{SECRET} {identity}"})
            items[identity] = [f"s{t}" for t in range(count)]
            for item in items[identity]:
                await store.append_turn(identity, Turn("user", f"{SECRET} {item}", 1.0, item_id=item))
            await store.disconnect(identity)  # so the writer's first connect is a return, as each later one
    return items


async def final_state(url: str) -> dict[str, tuple[int, list[str | None], str]]:
    """Per session: reconnect count, turn item ids, metadata note (read with the key)."""
    async with open_store(url, codec=FernetCodec([KEY])) as store:
        state = {}
        for identity in SEEDED_TURNS:
            session = await store.require(identity)
            items = [turn.item_id for turn in await store.recent_turns(identity)]
            state[identity] = (session.reconnect_count, items, session.metadata["note"])
        return state


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_migration_under_concurrent_writes_loses_nothing(backend: str, tmp_path: Path,
                                                         request: pytest.FixtureRequest) -> None:
    from tests.conftest import store_url_for

    url = store_url_for(backend, tmp_path, request)
    seeded = asyncio.run(seed(url))
    env = {**os.environ, "KEY": KEY, "LKPERSIST_ENCRYPTION_KEYS": KEY}
    stop_file = tmp_path / "stop"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, url, str(stop_file), *HOT], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "started"
        command = [*lkpersist_command(), "--store", url, "encrypt", "migrate", "--batch", "2", "-o", "json"]
        migration = subprocess.run(command, check=False, env=env, capture_output=True, text=True, timeout=120)
    finally:
        stop_file.touch()
        out, err = writer.communicate(timeout=120)
    assert writer.returncode == 0, err
    assert migration.returncode == 0, migration.stderr
    written = json.loads(out.strip().splitlines()[-1])

    state = asyncio.run(final_state(url))
    for identity, (reconnects, items, note) in state.items():
        made = written.get(identity, {"reconnects": 0, "turns": []})
        assert reconnects == made["reconnects"], identity
        assert items == (seeded[identity] + made["turns"])[-TURN_CAP:], identity
        assert note == (f"changed in round {reconnects - 1}" if reconnects else f"{SECRET} {identity}"), identity
    blob = b"\n".join(raw_values(url, with_files=True))
    assert SECRET.encode() not in blob
    report = json.loads(migration.stdout)
    assert report["sessions"] >= len(SEEDED_TURNS) and report["unfinished"] == []
