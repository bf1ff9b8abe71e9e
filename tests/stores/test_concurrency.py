"""Several OS processes connecting the same identity at once never lose an increment nor hit a lock error.

Four worker processes open the store on their own, report ready, wait for one "go" file, then connect
the same identity 200 times each as fast as they can. Whatever the interleaving, the session ends with
exactly 4 x 200 - 1 reconnects (the very first connect creates it).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lkpersist.stores import open_store

PROCESSES = 4
CONNECTS = 200
IDENTITY = "racer {*}"

_WORKER = """
import asyncio, sys, time
from pathlib import Path
from lkpersist.stores import open_store

url, identity, connects, ready, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4]), Path(sys.argv[5])

async def main() -> None:
    store = open_store(url)
    try:
        await store.count("all")  # open connections / files before the start line
        ready.touch()
        while not go.exists():
            await asyncio.sleep(0.002)
        for _ in range(connects):
            await store.connect(identity)
    finally:
        await store.close()

asyncio.run(main())
"""


@pytest.mark.parametrize("backend", ["redis", "sqlite"])
def test_concurrent_processes_never_lose_a_reconnect(store_url: str, tmp_path: Path) -> None:
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
    assert asyncio.run(_reconnect_count(store_url)) == PROCESSES * CONNECTS - 1


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
