"""Agent-side Prometheus metrics, scraped over HTTP from livekit's own worker endpoint and parsed with
prometheus_client's parser; values checked against what the test did (deltas: the registry is per process)."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import textwrap
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from livekit.agents.telemetry.http_server import HttpServer
from prometheus_client.parser import text_string_to_metric_families

from lkpersist.agent.metrics import NO_METRICS, agent_metrics
from lkpersist.clock import VirtualClock
from lkpersist.stores import open_store
from lkpersist.stores.base import SessionStore
from tests.agent.conftest import JobFactory
from tests.conftest import free_port

Values = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _scrape(port: int) -> Values:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def _delta(after: Values, before: Values, name: str, **labels: str) -> float:
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0.0) - before.get(key, 0.0)


@pytest.fixture
async def endpoint() -> AsyncIterator[int]:
    """livekit-agents' worker metrics server (the class ``AgentServer(prometheus_port=…)`` starts)."""
    port = free_port()
    server = HttpServer("127.0.0.1", port)
    await server.start()
    try:
        yield port
    finally:
        await server.aclose()


def test_without_prometheus_in_use_the_controller_records_nothing() -> None:
    assert agent_metrics({}) is NO_METRICS
    code = ("import sys; from lkpersist.agent.metrics import agent_metrics; agent_metrics({}); "
            "print('prometheus_client' in sys.modules)")
    env = {k: v for k, v in os.environ.items() if k not in ("PROMETHEUS_MULTIPROC_DIR", "LKPERSIST_METRICS")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "False"


async def test_a_visit_shows_on_the_worker_endpoint(
    endpoint: int, make_job: JobFactory, clock: VirtualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LKPERSIST_METRICS", "1")
    store: SessionStore = open_store("memory://", clock=clock)
    before = await asyncio.to_thread(_scrape, endpoint)  # the server runs on this event loop
    job = await make_job(store)
    await job.arrive("alice")
    await job.say_user("hello there")
    await job.leave("alice")
    clock.advance(10)
    await job.arrive("alice")
    await job.persistence.wait_idle()
    after = await asyncio.to_thread(_scrape, endpoint)
    assert _delta(after, before, "lkpersist_connections_total") == 2
    assert _delta(after, before, "lkpersist_returns_total") == 1
    assert _delta(after, before, "lkpersist_greetings_total", mode="template", outcome="greet") == 2
    assert _delta(after, before, "lkpersist_greeting_decision_seconds_count") == 2
    assert _delta(after, before, "lkpersist_turns_recorded_total") >= 2  # the greeting, the user, the reply
    assert _delta(after, before, "lkpersist_session_duration_seconds_count") == 1
    assert _delta(after, before, "lkpersist_store_operation_seconds_count", backend="memory", operation="connect") == 2
    assert _delta(after, before, "lkpersist_store_failures_total", operation="connect") == 0
    assert after[("lkpersist_store_degraded", ())] == 0


_CHILD = textwrap.dedent("""
    import asyncio
    from lkpersist.stores import open_store
    from tests.agent.conftest import Job

    async def main():
        store = open_store("memory://")
        job = await Job(store).start()
        for identity in ("a", "b", "c"):
            await job.arrive(identity)
        await job.persistence.aclose()
        await job.session.aclose()

    asyncio.run(main())
""")


async def test_multiprocess_mode_collects_a_job_process_s_metrics(
    endpoint: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As the worker runs it: PROMETHEUS_MULTIPROC_DIR set, the job in a child process, the parent serving."""
    directory = tmp_path / "prom"
    directory.mkdir()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    env.pop("LKPERSIST_METRICS", None)
    await asyncio.to_thread(subprocess.run, [sys.executable, "-c", _CHILD], env=env, check=True, timeout=120,
                            cwd=Path(__file__).parents[2])
    assert list(directory.glob("*.db"))
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(directory))  # livekit's server then collects the files
    values = await asyncio.to_thread(_scrape, endpoint)
    assert values[("lkpersist_connections_total", ())] == 3
    assert values[("lkpersist_greetings_total", (("mode", "template"), ("outcome", "greet")))] == 3
    assert values[("lkpersist_session_duration_seconds_count", ())] == 3


def test_run_prometheus_port_reaches_the_worker(tmp_path: Path) -> None:
    """``lkpersist run --prometheus-port`` sets LKPERSIST_PROMETHEUS_PORT; the worker's AgentServer serves it."""
    code = ("from lkpersist.agent import worker; import os; "
            "print(worker.server._prometheus_port, worker.server._prometheus_multiproc_dir == "
            "os.environ['PROMETHEUS_MULTIPROC_DIR'])")
    env = {**os.environ, "LKPERSIST_PROMETHEUS_PORT": "9464", "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.split() == ["9464", "True"]


async def test_the_debug_line_says_who_came_back_and_how_many_sessions_live(
    make_job: JobFactory, clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    store: SessionStore = open_store("memory://", clock=clock)
    await store.connect("earlier")  # one session already live in the store
    job = await make_job(store)
    with caplog.at_level(logging.DEBUG, logger="lkpersist.agent"):
        await job.arrive("alice")
        await job.say_user("my secret plan")
        await job.leave("alice")
        await job.arrive("alice")
        await job.arrive("bob")
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("arrival of")]
    assert lines[0].startswith("arrival of 'alice': new, visit 1, sessions live in the store: 2 (counted")
    assert lines[1].startswith("arrival of 'alice': returning, visit 2, sessions live in the store: 2")
    # counted once a minute at most: bob's own session is not in the count yet
    assert lines[2].startswith("arrival of 'bob': new, visit 1, sessions live in the store: 2 (counted")
    assert not [r for r in caplog.records if r.levelno >= logging.INFO and "secret plan" in r.getMessage()]


async def test_at_info_there_is_no_arrival_line(make_job: JobFactory, clock: VirtualClock,
                                               caplog: pytest.LogCaptureFixture) -> None:
    store: SessionStore = open_store("memory://", clock=clock)
    job = await make_job(store)
    with caplog.at_level(logging.INFO, logger="lkpersist.agent"):
        await job.arrive("alice")
    assert not [r for r in caplog.records if r.getMessage().startswith("arrival of")]
