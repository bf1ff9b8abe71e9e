"""``lkpersist metrics``: scraped over real HTTP, parsed with prometheus_client's parser, checked against
what the test put in the store."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from lkpersist.clock import VirtualClock
from lkpersist.exporter.snapshot import SnapshotCache
from lkpersist.model.analytics import day_of
from lkpersist.model.session import Turn
from lkpersist.stores import open_store
from tests.conftest import free_port, store_url_for


def _fill(url: str) -> None:
    async def fill() -> None:
        now = time.time()
        store = open_store(url)
        old = open_store(url, clock=VirtualClock(now - 7200))
        try:
            for identity in ("a", "b", "c"):
                await store.connect(identity)
            for index in range(4):
                await store.append_turn("a", Turn("user", f"hi {index}", now, f"i{index}"))
            await store.disconnect("c")
            await old.connect("gone")  # left two hours ago: expired for more than an hour
            await old.disconnect("gone")
        finally:
            await store.close()
            await old.close()

    asyncio.run(fill())


@pytest.fixture(params=("sqlite", "redis"))
def exporter(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    url = store_url_for(str(request.param), tmp_path, request)
    _fill(url)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "lkpersist", "--store", url, "metrics", "--port", str(port), "--interval", "1h"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ},
    )
    try:
        _wait(port, proc)
        yield f"http://127.0.0.1:{port}/metrics", str(request.param)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0


def _wait(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else b""
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=1).read()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("the exporter did not start")


def _scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = urllib.request.urlopen(url, timeout=10).read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_a_scrape_reports_what_the_store_holds(exporter: tuple[str, str]) -> None:
    url, backend = exporter
    values = _scrape(url)
    assert values[("lkpersist_store_up", ())] == 1.0
    assert 0 < values[("lkpersist_store_ping_seconds", ())] < 5
    assert values[("lkpersist_sessions", (("status", "active"),))] == 3
    assert values[("lkpersist_sessions", (("status", "expired"),))] == 1
    # c left seconds ago: an exact backend says 2, Redis' estimate (seen within the presence timeout) 3
    assert values[("lkpersist_sessions", (("status", "connected"),))] == (3 if backend == "redis" else 2)
    assert values[("lkpersist_turns_stored", ())] == 4
    assert values[("lkpersist_purge_backlog", ())] == 1
    assert values[("lkpersist_purge_overdue_sessions", ())] == 1
    gone_today = day_of(time.time() - 7200) == day_of(time.time())  # "gone" came two hours ago
    assert values[("lkpersist_daily_active_identities", ())] == 3 + gone_today
    assert _scrape(url) == values  # within the interval: the same reading, no second count pass


def test_a_store_that_does_not_answer_is_reported_down(tmp_path: Path) -> None:
    port = free_port()
    dead = f"redis://127.0.0.1:{free_port()}/0?socket_connect_timeout=0.2"
    proc = subprocess.Popen([sys.executable, "-m", "lkpersist", "--store", dead, "metrics", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _wait(port, proc)
        values = _scrape(f"http://127.0.0.1:{port}/metrics")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
    assert values == {("lkpersist_store_up", ()): 0.0}


async def test_the_cache_runs_one_count_pass_per_interval(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 's.db'}")
    try:
        cache = SnapshotCache(store, interval=3600)
        snapshots = await asyncio.gather(*(cache.get() for _ in range(20)))
        assert cache.passes == 1 and len({id(s) for s in snapshots}) == 1
        cache.interval = 0
        await cache.get()
        assert cache.passes == 2
    finally:
        await store.close()


def test_without_prometheus_client_it_says_what_to_install(tmp_path: Path) -> None:
    code = ("import sys; sys.modules['prometheus_client'] = None; sys.argv = ['lkpersist', '--store', "
            f"'sqlite:///{tmp_path / 's.db'}', 'metrics', '--port', '0']; from lkpersist.cli import main; main()")
    result = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=60)
    assert result.returncode == 4  # the CLI's "missing dependency"
    assert result.stderr == ("error: lkpersist metrics needs prometheus_client (the metrics extra), which is not "
                             "installed: pip install 'lkpersist[metrics]'\n")
