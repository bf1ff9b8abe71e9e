"""Events across processes: another process's store operations reach this process's subscribers, and
``lkpersist sessions watch`` (a real subprocess) prints what another command does."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest

from lkpersist.stores import open_store
from tests.cli.test_processes import ROOT, lkpersist_command, run_cli
from tests.events.conftest import kinds, take

CONNECT_IN_A_CHILD = textwrap.dedent("""
    import asyncio, sys
    from lkpersist.stores import open_store

    async def main():
        store = open_store(sys.argv[1])
        try:
            await store.connect(sys.argv[2])
            await store.disconnect(sys.argv[2])
        finally:
            await store.close()

    asyncio.run(main())
""")


async def test_a_subscriber_sees_what_another_process_does(shared_url: str) -> None:
    store = open_store(shared_url)
    try:
        async with store.events("from-child") as stream:
            child = await asyncio.create_subprocess_exec(sys.executable, "-c", CONNECT_IN_A_CHILD, shared_url, "from-child")
            assert await child.wait() == 0
            events = await take(stream, 2)
    finally:
        await store.close()
    assert kinds(events) == [("created", "from-child", 0), ("disconnected", "from-child", 0)]


@pytest.fixture
def watcher(shared_url: str, request: pytest.FixtureRequest) -> Iterator[subprocess.Popen[str]]:
    """``sessions watch`` started with the test's arguments; yielded once it says it is watching."""
    args = request.param
    proc = subprocess.Popen([*lkpersist_command(), "--store", shared_url, "sessions", "watch", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert proc.stderr is not None
        ready = proc.stderr.readline()
        assert ready.startswith("watching session events"), ready + proc.stderr.read()
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


def _seed_session(url: str, identity: str) -> None:
    async def connect() -> None:
        store = open_store(url)
        try:
            await store.connect(identity)
        finally:
            await store.close()

    asyncio.run(connect())


@pytest.mark.parametrize("watcher", [["--identity", "user-1*", "-o", "ndjson", "--count", "2", "--timeout", "60"]],
                         indirect=True)
def test_watch_prints_the_event_of_another_command_as_ndjson(shared_url: str, watcher: subprocess.Popen[str]) -> None:
    _seed_session(shared_url, "user-10")  # not matched by the hostile filter
    _seed_session(shared_url, "user-1*")
    done = run_cli("--store", shared_url, "sessions", "rm", "user-10", "user-1*")
    assert done.returncode == 0, done.stderr
    out, err = watcher.communicate(timeout=60)
    assert watcher.returncode == 0, err
    events = [json.loads(line) for line in out.splitlines()]
    assert [(e["kind"], e["identity"], e["reconnect_count"]) for e in events] == [
        ("created", "user-1*", 0),
        ("deleted", "user-1*", 0),  # from the rm command, another process
    ]
    assert all(set(e) == {"kind", "identity", "time", "reconnect_count"} for e in events)


@pytest.mark.parametrize("watcher", [["--count", "2", "--timeout", "60"]], indirect=True)
def test_watch_prints_lines_for_people(shared_url: str, watcher: subprocess.Popen[str]) -> None:
    _seed_session(shared_url, "Zoë\n🎧")
    done = run_cli("--store", shared_url, "sessions", "rm", "Zoë\n🎧")
    assert done.returncode == 0, done.stderr
    out, err = watcher.communicate(timeout=60)
    assert watcher.returncode == 0, err
    created, deleted = out.splitlines()
    assert created.endswith("created       'Zoë\\n🎧'  reconnects=0")
    assert deleted.endswith("deleted       'Zoë\\n🎧'  reconnects=0")
    assert created[:4].isdigit() and created[19] == "Z"  # 2027-01-15T08:00:00Z


@pytest.mark.parametrize("watcher", [[]], indirect=True)
def test_ctrl_c_ends_watch_with_exit_0(watcher: subprocess.Popen[str]) -> None:
    watcher.send_signal(signal.SIGINT)
    _, err = watcher.communicate(timeout=30)
    assert watcher.returncode == 0, err
    assert "Traceback" not in err


@pytest.mark.parametrize("watcher", [["--count", "1", "--timeout", "0.5"]], indirect=True)
def test_a_timeout_before_count_events_exits_1(watcher: subprocess.Popen[str]) -> None:
    _, err = watcher.communicate(timeout=30)
    assert watcher.returncode == 1
    assert "only 0 of 1 events arrived before the timeout" in err
