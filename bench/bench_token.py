"""Benchmark: ``POST /api/token`` of a real ``lkpersist serve`` process, against a bare aiohttp handler.

Both servers are real processes on loopback, one process each, driven by the same client from this
process (keep-alive HTTP/1.1 connections, one request in flight on each) with the same concurrency:

- ``baseline``: a bare aiohttp application whose handler parses the JSON body and answers a small JSON
  object (what any JSON endpoint costs on aiohttp, before doing any work);
- ``new``: ``POST /api/token`` with ``{}``: a new identity, a signed LiveKit JWT, a resume credential;
- ``returning``: ``POST /api/token`` with a valid ``resume_token`` (verify it, then the same work).

The ratio (throughput of the token endpoint / throughput of the baseline) shows what the token work
costs on top of aiohttp itself. The client shares the machine's cores with the server (and, on a shared
machine, with whatever else runs), so measured requests/s are a lower bound of what the server can do.
The server's own CPU time per request (from /proc, user + system) does not depend on that: one core
divided by it is the throughput one server process can reach when it has a core to itself
("capacity/s"). Target (issue 10): >= 1,000 tokens/s from one process.

    .venv/bin/python bench/bench_token.py [--seconds 5] [--concurrency 32] [--repeat 3] [--json]

With ``--repeat N`` the three cases run N times in turn and the round with the best token throughput
is printed whole (its baseline included), so every ratio still compares figures of the same round.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
TARGET_PER_SECOND = 1000
API_SECRET = "bench-secret-0123456789abcdefghijklmnop"
BASELINE_APP = """
import sys
from aiohttp import web

async def hello(request):
    body = await request.json()
    return web.json_response({"hello": "world", "keys": len(body)})

app = web.Application()
app.router.add_post("/hello", hello)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
"""


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_port(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def _process(args: list[str], port: int, env: dict[str, str] | None = None) -> Iterator[tuple[str, int]]:
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT, env=env)
    try:
        _wait_for_port(port, proc)
        yield f"http://127.0.0.1:{port}", proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def _serve_args(port: int) -> tuple[list[str], dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LIVEKIT_", "LKPERSIST_"))}
    env.update(LIVEKIT_URL="wss://bench.invalid", LIVEKIT_API_KEY="bench-key", LIVEKIT_API_SECRET=API_SECRET)
    args = [sys.executable, "-m", "lkpersist", "--store", "memory://", "serve", "--port", str(port),
            "--rate-limit", "off", "--agent-name", "bench-agent"]
    return args, env


class _Connection:
    """One keep-alive HTTP/1.1 connection that POSTs a fixed request: a client costing far less CPU than
    aiohttp's, so that on a shared machine the server, not the client, is what gets measured."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> None:
        self.reader, self.writer, self.request = reader, writer, request

    @classmethod
    async def open(cls, url: str, body: bytes) -> _Connection:
        host_port, path = url.removeprefix("http://").split("/", 1)
        host, port = host_port.split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        request = (f"POST /{path} HTTP/1.1\r\nHost: {host_port}\r\nContent-Type: application/json\r\n"
                   f"Content-Length: {len(body)}\r\n\r\n").encode() + body
        return cls(reader, writer, request)

    async def post(self) -> int:
        """Send the request, read the whole answer; its status."""
        self.writer.write(self.request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
        await self.reader.readexactly(length)
        return int(head[9:12])

    def close(self) -> None:
        self.writer.close()


async def _drive(url: str, pid: int, body: dict[str, Any], seconds: float, concurrency: int) -> dict[str, float]:
    latencies: list[float] = []
    errors = 0
    payload = json.dumps(body).encode()
    connections = [await _Connection.open(url, payload) for _ in range(concurrency)]
    for connection in connections:  # warm up: each connection answered once, caches filled
        await connection.post()
    deadline = time.perf_counter() + seconds

    async def worker(connection: _Connection) -> None:
        nonlocal errors
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            if await connection.post() != 200:
                errors += 1
            latencies.append(time.perf_counter() - started)

    started, cpu = time.perf_counter(), _cpu_seconds(pid)
    await asyncio.gather(*(worker(connection) for connection in connections))
    elapsed, cpu = time.perf_counter() - started, _cpu_seconds(pid) - cpu
    for connection in connections:
        connection.close()
    cpu_per_request = cpu / len(latencies)
    return {"per_second": len(latencies) / elapsed, "p50_ms": _percentile(latencies, 0.5) * 1000,
            "p99_ms": _percentile(latencies, 0.99) * 1000, "requests": len(latencies), "errors": errors,
            "server_cpu_us": cpu_per_request * 1e6, "capacity_per_second": 1 / cpu_per_request}


async def _resume_token(url: str) -> str:
    async with aiohttp.ClientSession() as http, http.post(url, json={}) as response:
        return str((await response.json())["resume_token"])


def run(seconds: float, concurrency: int) -> dict[str, Any]:
    results: dict[str, Any] = {"cores": os.cpu_count(), "concurrency": concurrency, "seconds": seconds}
    port = _free_port()
    with _process([sys.executable, "-c", BASELINE_APP, str(port)], port) as (base, pid):
        results["baseline"] = asyncio.run(_drive(f"{base}/hello", pid, {}, seconds, concurrency))
    port = _free_port()
    args, env = _serve_args(port)
    with _process(args, port, env) as (base, pid):
        url = f"{base}/api/token"
        results["new"] = asyncio.run(_drive(url, pid, {}, seconds, concurrency))
        credential = asyncio.run(_resume_token(url))
        results["returning"] = asyncio.run(_drive(url, pid, {"resume_token": credential}, seconds, concurrency))
    for case in ("new", "returning"):
        for key in ("per_second", "capacity_per_second"):
            results[case][f"{key}_vs_baseline"] = results[case][key] / results["baseline"][key]
    return results


def _print(results: dict[str, Any]) -> None:
    print(f"POST /api/token, one server process, {results['concurrency']} concurrent requests, "
          f"{results['seconds']:g} s per case, {results['cores']} cores (client on the same machine), "
          f"best of {results['rounds']} round(s)")
    print(f"{'case':<11}{'requests/s':>11}{'ratio':>7}{'p50 ms':>8}{'p99 ms':>8}{'errors':>7}"
          f"{'server CPU':>12}{'capacity/s':>12}{'ratio':>7}")
    for case in ("baseline", "new", "returning"):
        row = results[case]
        measured = row.get("per_second_vs_baseline", 1.0)
        capacity = row.get("capacity_per_second_vs_baseline", 1.0)
        print(f"{case:<11}{row['per_second']:>11,.0f}{measured:>7.2f}{row['p50_ms']:>8.2f}{row['p99_ms']:>8.2f}"
              f"{row['errors']:>7}{row['server_cpu_us']:>10.0f}us{row['capacity_per_second']:>12,.0f}{capacity:>7.2f}")
    measured = min(results["new"]["per_second"], results["returning"]["per_second"])
    capacity = min(results["new"]["capacity_per_second"], results["returning"]["capacity_per_second"])
    print(f"target >= {TARGET_PER_SECOND:,} tokens/s: measured {measured:,.0f}/s "
          f"({'met' if measured >= TARGET_PER_SECOND else 'NOT met'}), one core's capacity {capacity:,.0f}/s "
          f"({'met' if capacity >= TARGET_PER_SECOND else 'NOT met'})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--repeat", type=int, default=1)
    options = parser.parse_args()
    rounds = [run(options.seconds, options.concurrency) for _ in range(max(1, options.repeat))]
    results = max(rounds, key=lambda r: min(r["new"]["per_second"], r["returning"]["per_second"]))
    results["rounds"] = len(rounds)
    print(json.dumps(results)) if options.json else _print(results)


if __name__ == "__main__":
    main()
