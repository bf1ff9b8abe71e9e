"""``simulate load``: consistent on Cluster, from two processes at once on Redis and SQLite, its JSON
shape, its argument checks, and a consistency check that catches a store losing a participant's data."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lkpersist.cli import app
from lkpersist.exceptions import InvalidInputError
from lkpersist.sim.load import LOAD_TTL_POLICY, OPERATIONS, LoadPlan, LoadProgress, LoadReport, run_load
from lkpersist.stores import open_store
from tests.conftest import store_url_for


async def _run(url: str, plan: LoadPlan) -> tuple[LoadReport, int]:
    store = open_store(url, ttl_policy=LOAD_TTL_POLICY)
    try:
        report = await run_load(store, plan)
        return report, await store.count("all")
    finally:
        await store.close()


async def test_load_on_cluster_ends_consistent_and_cleans_up(ha_url: str) -> None:
    report, left = await _run(ha_url, LoadPlan(identities=120, concurrency=24, operations=3000))
    assert report.consistent, report.mismatches[:3]
    assert report.checked == 120 and report.operations >= 3000 and report.stats.error_count == 0
    assert set(report.latency()) == set(OPERATIONS)
    assert left == 0  # the run deleted its own participants


def _load_process(url: str, *args: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "lkpersist", "--store", url, "simulate", "load", *args, "-o", "json"]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize("backend", ["redis", "sqlite"])
def test_two_processes_at_once_end_consistent(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    url = store_url_for(backend, tmp_path, request)
    args = ("--identities", "40", "--concurrency", "8", "--duration", "1.5s", "--keep")
    procs = [_load_process(url, *args) for _ in range(2)]
    outputs = [proc.communicate(timeout=60) for proc in procs]
    for proc, (stdout, stderr) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, stderr
    first, second = (json.loads(stdout) for stdout, _ in outputs)
    assert first["run_id"] != second["run_id"]
    assert first["consistency"] == second["consistency"] == {"ok": True, "checked": 40, "mismatches": 0, "examples": []}
    overlap = min(first["started_at"] + first["elapsed_s"], second["started_at"] + second["elapsed_s"]) - max(
        first["started_at"], second["started_at"]
    )
    assert overlap > 0.5, "the two runs did not run at the same time"
    assert asyncio.run(_count(url)) == 80  # --keep: both runs' participants are still there


async def _count(url: str) -> int:
    store = open_store(url)
    try:
        return await store.count("all")
    finally:
        await store.close()


def test_json_shape(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'load.db'}"
    result = CliRunner().invoke(
        app, ["--store", url, "simulate", "load", "--identities", "10", "--concurrency", "4", "--operations", "200",
              "-o", "json"],
    )
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert set(document) == {
        "store", "run_id", "started_at", "identities", "concurrency", "elapsed_s", "operations", "ops_per_s",
        "latency_ms", "errors", "longest_stall_s", "consistency",
    }
    assert document["store"] == url and document["identities"] == 10 and document["operations"] >= 200
    assert set(document["latency_ms"]) == set(OPERATIONS)
    for row in document["latency_ms"].values():
        assert set(row) == {"count", "p50", "p95", "p99", "max"}
        assert 0 <= row["p50"] <= row["p95"] <= row["p99"] <= row["max"]
    assert document["errors"] == {"total": 0, "by_kind": {}, "by_operation": {}, "first_at_s": None, "last_at_s": None}
    assert document["consistency"]["ok"] is True


def test_table_output(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'load.db'}"
    result = CliRunner().invoke(app, ["--store", url, "simulate", "load", "--identities", "5", "--operations", "50"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("simulate load run ") and "5 identities, concurrency 64" in lines[0]
    assert "ops/s" in lines[1]
    assert lines[2].split() == ["operation", "count", "p50", "ms", "p95", "ms", "p99", "ms", "max", "ms"]
    assert lines[-1].startswith("consistency: OK — 5 identities match")


@pytest.mark.parametrize(
    "args",
    [
        (),
        ("--duration", "1s", "--operations", "10"),
        ("--operations", "10", "--identities", "0"),
        ("--operations", "10", "--concurrency", "0"),
        ("--operations", "0"),
        ("--duration", "soon"),
        ("--duration", "0"),
    ],
)
def test_bad_arguments_exit_2(args: tuple[str, ...]) -> None:
    result = CliRunner().invoke(app, ["--store", "memory://", "simulate", "load", *args])
    assert result.exit_code == 2, result.output


async def test_a_store_with_short_ttls_is_refused() -> None:
    store = open_store("memory://")
    with pytest.raises(InvalidInputError, match="LOAD_TTL_POLICY"):
        await run_load(store, LoadPlan(identities=1, concurrency=1, operations=1))


async def test_the_check_catches_a_participant_whose_data_was_lost() -> None:
    """Someone else deletes participant 0 mid-run: its counts start again and the check must say so."""
    store = open_store("memory://", ttl_policy=LOAD_TTL_POLICY)
    plan = LoadPlan(identities=4, concurrency=2, duration=0.8)
    deleted: list[asyncio.Task[bool]] = []

    def sabotage(snapshot: LoadProgress) -> None:
        if not deleted and snapshot.operations > 50:
            deleted.append(asyncio.ensure_future(store.delete(plan.identity(0))))

    report = await run_load(store, plan, sabotage)
    assert deleted and await deleted[0] is True
    assert not report.consistent
    assert [m.identity for m in report.mismatches] == [plan.identity(0)]
    mismatch = report.mismatches[0]
    assert mismatch.reconnects is not None and mismatch.reconnects < mismatch.expected_reconnects[0]


def test_load_command_never_imports_livekit(tmp_path: Path) -> None:
    code = (
        "import sys\nfrom typer.testing import CliRunner\nfrom lkpersist.cli import app\n"
        f"r = CliRunner().invoke(app, ['--store', 'sqlite:///{tmp_path / 'x.db'}', 'simulate', 'load', "
        "'--identities', '3', '--operations', '30'])\n"
        "assert r.exit_code == 0, r.output\nprint(sorted(m for m in sys.modules if m.startswith('livekit')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "[]"
