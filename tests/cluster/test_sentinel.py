"""Sentinel: a failover under load, with nothing restarted; the opt-in WAIT for replicas; URL options.

The failover test runs its own master, replica and sentinels (it kills the master); the others use the
session's deployment. Figures are printed (``pytest -s``) and attached as junit properties.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from lkpersist.exceptions import InvalidStoreURLError
from lkpersist.model.session import Turn
from lkpersist.sim.load import LOAD_TTL_POLICY, LoadPlan, LoadProgress, run_load
from lkpersist.stores import open_store
from lkpersist.stores.redis import RedisStore
from tests._servers import SentinelServers, start_sentinel, unique_prefix

KILL_AT = 0.5
RUN_FOR = 4.0


async def test_operations_resume_after_the_master_is_killed(
    tmp_path: Path, record_property: Callable[[str, object], None]
) -> None:
    with start_sentinel(tmp_path / "sentinel") as servers:
        store = open_store(f"{servers.url}?prefix={unique_prefix()}", ttl_policy=LOAD_TTL_POLICY)
        old_master = servers.current_master()
        snapshots: list[LoadProgress] = []
        asyncio.get_running_loop().call_later(KILL_AT, servers.kill_master)
        plan = LoadPlan(identities=100, concurrency=16, duration=RUN_FOR)
        try:
            report = await run_load(store, plan, snapshots.append)
            after = await store.connect("after-the-failover")  # the same store object, nothing restarted
        finally:
            await store.close()
        new_master = servers.current_master()
    stall, failed = report.stats.longest_stall, report.stats.error_count
    print(f"\nSentinel failover under load: {failed} operations failed ({dict(report.stats.errors)}), longest stall "
          f"{stall:.2f} s, {report.operations} operations in {report.elapsed:.1f} s, "
          f"{len(report.mismatches)} of {report.checked} identities lost writes")
    for name, value in (("failover_failed_ops", failed), ("failover_stall_s", round(stall, 2))):
        record_property(name, value)
    assert new_master == servers.replica_port != old_master
    assert 0.5 < stall < RUN_FOR - KILL_AT - 0.5  # the switch happened, and there was time after it
    resumed = [s.operations for s in snapshots if s.elapsed > KILL_AT + stall + 0.3]
    assert len(resumed) >= 2 and resumed[-1] > resumed[0], "operations did not resume after the promotion"
    assert after.returning is False
    # The retry budget (~9 s by default on Sentinel) rides out this ~3 s switch: no operation gives up on
    # an unavailable store and none hangs on the dead master past the run.
    assert report.stats.errors["StoreUnavailableError"] == 0
    assert report.elapsed < RUN_FOR + 1.0
    # Asynchronous replication: what the dead master acknowledged but had not yet sent to the replica is
    # lost (and an operation that then misses its session fails with SessionNotFoundError). With the
    # replica streaming on loopback that is at most the operations in flight at the kill.
    assert len(report.mismatches) <= plan.concurrency


def _wait_calls(port: int) -> int:
    client = redis.Redis(host="127.0.0.1", port=port)
    try:
        stats = client.info("commandstats")
    finally:
        client.close()
    return int(stats.get("cmdstat_wait", {}).get("calls", 0))


async def test_wait_replicas_waits_after_every_write_and_never_after_a_read(redis_sentinel: SentinelServers) -> None:
    master = redis_sentinel.current_master()
    assert master is not None
    store = open_store(f"{redis_sentinel.url}?prefix={unique_prefix()}&wait_replicas=1&wait_timeout_ms=2000")
    assert isinstance(store, RedisStore) and store.replica_wait is not None
    replica = redis.Redis(host="127.0.0.1", port=redis_sentinel.replica_port)
    session_key = store.keys.keys_for("ann")[1].session
    try:
        for warm_up in (store.connect("warm-up"), store.append_turn("warm-up", Turn("user", "x", 0.0)),
                        store.disconnect("warm-up")):
            await warm_up  # loads the scripts (a NOSCRIPT round would count its WAIT twice)
        before = _wait_calls(master)
        await store.connect("ann")
        assert replica.hgetall(session_key)[b"r"] == b"0"  # on the replica when the call returns
        await store.append_turn("ann", Turn("user", "hello", time.time(), "t1"))
        assert await store.get("ann") is not None and len(await store.recent_turns("ann")) == 1
        await store.disconnect("ann")
        await store.connect("ann")
        assert replica.hgetall(session_key)[b"r"] == b"1"
        await store.disconnect("ann")
        assert _wait_calls(master) - before == 5  # connect, append, disconnect, connect, disconnect; no WAIT for reads
        assert store.replica_wait.shortfalls == 0
    finally:
        replica.close()
        await store.close()


async def test_too_few_replicas_is_a_warning_not_a_failure(
    redis_sentinel: SentinelServers, caplog: pytest.LogCaptureFixture
) -> None:
    store = open_store(f"{redis_sentinel.url}?prefix={unique_prefix()}&wait_replicas=2&wait_timeout_ms=50")
    assert isinstance(store, RedisStore) and store.replica_wait is not None
    try:
        with caplog.at_level(logging.WARNING, logger="lkpersist.redis"):
            started = time.perf_counter()
            result = await store.connect("bea")
            waited = time.perf_counter() - started
        assert result.session.reconnect_count == 0 and await store.get("bea") is not None
        assert store.replica_wait.shortfalls == 1 and waited >= 0.045
        assert "acknowledged by 1 of 2 replicas within 50 ms" in caplog.text
    finally:
        await store.close()


@pytest.mark.parametrize(
    "url",
    [
        "redis+cluster://127.0.0.1:7000?wait_replicas=1",
        "redis://127.0.0.1:6390/0?wait_timeout_ms=10",
        "redis://127.0.0.1:6390/0?wait_replicas=0",
        "redis://127.0.0.1:6390/0?retries=-1",
        "redis://127.0.0.1:6390/0?retry_max_backoff=0",
    ],
)
def test_bad_high_availability_options_are_refused(url: str) -> None:
    with pytest.raises(InvalidStoreURLError):
        open_store(url)


async def test_retry_budget_defaults_and_options() -> None:
    def retries(url: str) -> int:
        store = open_store(url)
        assert isinstance(store, RedisStore)
        return int(store.client.connection_pool.connection_kwargs["retry"].get_retries())

    assert retries("redis://127.0.0.1:6390/0") == 1
    assert retries("redis+sentinel://127.0.0.1:26379/svc") == 20
    assert retries("redis+sentinel://127.0.0.1:26379/svc?retries=50&retry_max_backoff=1") == 50
