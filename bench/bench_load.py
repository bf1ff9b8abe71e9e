"""Benchmark: ``simulate load`` (the library) on standalone Redis, a 3-master Redis Cluster and SQLite.

Every backend runs on this machine over loopback, started for the run by the test suite's own helpers
(``tests/conftest.py``, ``tests/_servers.py``): one redis-server, three cluster nodes, a SQLite file in a
tmp dir. Each case runs ``--seconds`` per round, ``--rounds`` rounds interleaved across the backends
(the best round kept, so a noisy neighbour on a shared machine hurts less), from ONE client process
(asyncio tasks sharing one client). Reported: operations/s, p50/p99 over all operations and p99 of
connect, with the machine's core count.

Target (issue 4): Cluster throughput within 1.5x of standalone Redis (same number of round trips).

    .venv/bin/python bench/bench_load.py [--seconds 5] [--rounds 3] [--identities 2000] [--concurrency 64] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the test suite's server helpers

from lkpersist.sim.load import LOAD_TTL_POLICY, LoadPlan, LoadReport, run_load
from lkpersist.stores import open_store
from tests import conftest
from tests._servers import start_cluster

TARGET_RATIO = 1.5


@contextmanager
def standalone_redis() -> Iterator[str]:
    proc, port = conftest.start_redis_server()
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _summary(name: str, report: LoadReport) -> dict[str, Any]:
    every = sorted(v for values in report.stats.latencies.values() for v in values)
    latency = report.latency()
    return {
        "backend": name,
        "ops_per_s": round(report.throughput),
        "operations": report.operations,
        "p50_ms": round(every[len(every) // 2] * 1000, 2),
        "p99_ms": round(every[min(len(every) - 1, len(every) * 99 // 100)] * 1000, 2),
        "connect_p99_ms": round(latency["connect"]["p99"], 2),
        "errors": report.stats.error_count,
        "consistent": report.consistent,
    }


async def _one_round(url: str, args: argparse.Namespace) -> LoadReport:
    store = open_store(url, ttl_policy=LOAD_TTL_POLICY)
    try:
        plan = LoadPlan(args.identities, args.concurrency, duration=args.seconds)
        return await run_load(store, plan)
    finally:
        await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--identities", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="lkp-bench-load-")))
        urls = {
            "redis": stack.enter_context(standalone_redis()),
            "redis-cluster": stack.enter_context(start_cluster(work / "cluster")).url,
            "sqlite": f"sqlite:///{work / 'load.db'}",
        }
        best: dict[str, dict[str, Any]] = {}
        for _ in range(args.rounds):
            for name, url in urls.items():
                summary = _summary(name, asyncio.run(_one_round(url, args)))
                if name not in best or summary["ops_per_s"] > best[name]["ops_per_s"]:
                    best[name] = summary
    ratio = best["redis"]["ops_per_s"] / best["redis-cluster"]["ops_per_s"]
    result = {
        "cores": os.cpu_count(),
        "identities": args.identities,
        "concurrency": args.concurrency,
        "seconds": args.seconds,
        "rounds": args.rounds,
        "results": list(best.values()),
        "standalone_over_cluster": round(ratio, 2),
        "target_met": ratio <= TARGET_RATIO,
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"simulate load, {result['cores']} cores, {args.identities} identities, concurrency {args.concurrency}, "
          f"best of {args.rounds} x {args.seconds:g} s, one client process")
    for row in best.values():
        print(f"  {row['backend']:<14} {row['ops_per_s']:>8,} ops/s  p50 {row['p50_ms']:.2f} ms  p99 {row['p99_ms']:.2f} ms"
              f"  connect p99 {row['connect_p99_ms']:.2f} ms  errors {row['errors']}  consistent {row['consistent']}")
    verdict = "met" if result["target_met"] else "NOT met"
    print(f"standalone / cluster throughput: {ratio:.2f}x (target <= {TARGET_RATIO}x: {verdict})")


if __name__ == "__main__":
    main()
