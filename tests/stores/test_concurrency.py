"""Several OS processes arriving and leaving on the same identity at once: exact visits, no lock error.

Four worker processes open the store on their own, report ready, wait for one "go" file, then each
arrives and leaves 200 times with its own connection id, as fast as it can. Whatever the interleaving
(how many visits there are depends on it), the session ends with exactly one greeting per visit:
the greetings the workers got add up to reconnect_count + 1, so no arrival was lost or counted twice.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lkpersist.stores import open_store
from tests.stores.test_presence_contract import PRESENCE_BACKENDS

PROCESSES = 4
CONNECTS = 200
IDENTITY = "racer {*}"

_WORKER = """
import asyncio, sys, time
from pathlib import Path
from lkpersist.stores import open_store
from tests.stores.test_presence_contract import PRESENCE_BACKENDS

url, identity, connects, ready, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4]), Path(sys.argv[5])

async def main() -> None:
    store = open_store(url)
    try:
        await store.count("all")  # open connections / files before the start line
        ready.touch()
        while not go.exists():
            await asyncio.sleep(0.002)
        greets = 0
        for _ in range(connects):
            greets += (await store.arrive(identity, f"worker-{ready.name}")).greet
            await store.leave(identity, f"worker-{ready.name}")
        print(greets)
    finally:
        await store.close()

asyncio.run(main())
"""


@pytest.mark.parametrize("backend", [b for b in PRESENCE_BACKENDS if b in ("sqlite", "redis")])
def test_concurrent_processes_greet_each_visit_once(store_url: str, tmp_path: Path) -> None:
    go = tmp_path / "go"
    ready = [tmp_path / f"ready-{index}" for index in range(PROCESSES)]
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, store_url, IDENTITY, str(CONNECTS), str(flag), str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for flag in ready
    ]
    try:
        _wait_until_ready(workers, ready)
        go.touch()
        outcomes = [worker.communicate(timeout=120) for worker in workers]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
    for worker, (_, stderr) in zip(workers, outcomes, strict=True):
        assert worker.returncode == 0, stderr.decode(errors="replace")
    greetings = sum(int(stdout) for stdout, _ in outcomes)
    visits = asyncio.run(_reconnect_count(store_url)) + 1
    assert 1 <= visits <= PROCESSES * CONNECTS
    assert greetings == visits


async def _reconnect_count(store_url: str) -> int:
    store = open_store(store_url)
    try:
        return (await store.require(IDENTITY)).reconnect_count
    finally:
        await store.close()


def _wait_until_ready(workers: list[subprocess.Popen[bytes]], ready: list[Path]) -> None:
    deadline = time.monotonic() + 60
    while not all(flag.exists() for flag in ready):
        failed = [worker for worker in workers if worker.poll() not in (None, 0)]
        if failed:
            raise AssertionError(failed[0].communicate()[1].decode(errors="replace"))
        if time.monotonic() > deadline:
            raise AssertionError("worker processes did not start within 60 s")
        time.sleep(0.01)
