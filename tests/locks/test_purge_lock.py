"""``sessions purge`` under its lock, with real processes on a shared SQLite file and on Redis.

A purge holds the store lock "purge"; a second purge meanwhile prints one line and exits 0. The holder
here is a real process holding that lock through the library (exactly what a running purge holds), so
the overlap is certain rather than a matter of timing; a second test then races two real purges.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest

from lkpersist.stores.base import PURGE_LOCK
from tests.cli.conftest import Seed, exists, seed
from tests.cli.test_processes import ROOT, lkpersist_command, run_cli

SKIP_LINE = "another purge is running (lock held); skipping"

HOLD_THE_LOCK = textwrap.dedent("""
    import asyncio, sys
    from lkpersist.stores import open_store

    async def main():
        store = open_store(sys.argv[1])
        try:
            async with store.lock(sys.argv[2], 60):
                print("held", flush=True)
                await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        finally:
            await store.close()

    asyncio.run(main())
""")


@pytest.fixture
def lock_holder(shared_url: str) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the purge lock until its stdin closes."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD_THE_LOCK, shared_url, PURGE_LOCK], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "held\n", proc.communicate(timeout=30)
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


def test_a_purge_skips_while_another_holds_the_lock_then_runs(shared_url: str, lock_holder: subprocess.Popen[str]) -> None:
    seed(shared_url, Seed("gone", age=7200, disconnected=True))
    skipped = run_cli("--store", shared_url, "sessions", "purge")
    assert skipped.returncode == 0, skipped.stderr
    assert skipped.stdout == SKIP_LINE + "\n"
    assert exists(shared_url, "gone")
    as_json = run_cli("--store", shared_url, "sessions", "purge", "-o", "json")
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout)["skipped"] == "another purge is running (lock held)"
    dry = run_cli("--store", shared_url, "sessions", "purge", "--dry-run")  # takes no lock
    assert dry.stdout.startswith("would purge 1 expired session"), dry.stdout + dry.stderr

    lock_holder.communicate("\n", timeout=30)  # the other purge finishes and releases the lock
    assert lock_holder.returncode == 0
    purged = run_cli("--store", shared_url, "sessions", "purge")
    assert purged.returncode == 0, purged.stderr
    assert purged.stdout == "purged 1 expired session\n"
    assert not exists(shared_url, "gone")


def test_two_purges_at_once_both_exit_0_and_purge_everything_once(shared_url: str) -> None:
    seed(shared_url, *(Seed(f"gone-{index}", age=7200, disconnected=True) for index in range(200)))
    command = [*lkpersist_command(), "--store", shared_url, "sessions", "purge", "-o", "json"]
    procs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
             for _ in range(2)]
    results = [proc.communicate(timeout=120) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], results
    documents = [json.loads(out) for out, _ in results]
    assert sum(document["purged"] for document in documents) == 200
    assert all(document.get("skipped") in (None, "another purge is running (lock held)") for document in documents)
    assert not exists(shared_url, "gone-0") and not exists(shared_url, "gone-199")
