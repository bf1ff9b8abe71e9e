"""Real Redis Cluster and Sentinel deployments for tests, started on free loopback ports in a tmp dir.

``start_cluster`` runs three masters (``--cluster-enabled yes``) joined by ``redis-cli --cluster create``
and waits until every node says ``cluster_state:ok``. ``start_sentinel`` runs a master, one replica and
three sentinels (quorum 2, short down-after/failover timeouts) and waits until every sentinel knows the
replica and its two peers, so a failover can be triggered at once. Both are context managers: the
processes are stopped and the directory removed afterwards. The session-scoped fixtures at the bottom
are imported by ``tests/conftest.py``; a missing redis-server/redis-cli fails with an install hint.
"""

from __future__ import annotations

import random
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import pytest

from tests import _redis_server as _base

SENTINEL_SERVICE = "lkpmaster"
DOWN_AFTER_MS = 500
FAILOVER_TIMEOUT_MS = 5000
STARTUP_TIMEOUT = 30.0
_PROBE_KEY = "lkptest:replication-probe"
_REPLICATION_OPTIONS = ("--repl-diskless-sync-delay", "0")  # the default waits 5 s for more replicas


def redis_cli_binary() -> str:
    binary = shutil.which("redis-cli")
    if binary is None:
        pytest.fail(
            "redis-cli not found on PATH (needed to create the test Redis Cluster): install it "
            "(Debian/Ubuntu: apt-get install redis-tools redis-server; macOS: brew install redis)",
            pytrace=False,
        )
    return binary


def cli(port: int, *args: str) -> str:
    """``redis-cli -p PORT ARGS`` on loopback; its stdout ('' when the server does not answer)."""
    done = subprocess.run(
        [redis_cli_binary(), "-h", "127.0.0.1", "-p", str(port), *args],
        capture_output=True, text=True, timeout=10, check=False,
    )
    return done.stdout


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def cluster_port() -> int:
    """A free port whose cluster bus port (port + 10000) is free too."""
    for _ in range(200):
        port = random.randint(20000, 40000)
        if _port_free(port) and _port_free(port + 10000):
            return port
    raise RuntimeError("no free port pair for a cluster node")


def wait_until(what: str, check: Callable[[], bool], timeout: float = STARTUP_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class ClusterServers:
    """A running 3-master cluster; ``url`` is its store URL (no prefix)."""

    ports: list[int]
    procs: list[subprocess.Popen[bytes]]

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{port}" for port in self.ports)


@contextmanager
def start_cluster(directory: Path, masters: int = 3) -> Iterator[ClusterServers]:
    """Start ``masters`` cluster nodes, create the cluster, wait for ``cluster_state:ok`` on all."""
    directory.mkdir(parents=True, exist_ok=True)
    cluster = ClusterServers(ports=[], procs=[])
    try:
        for _ in range(masters):
            port = cluster_port()
            proc, _ = _base.start_redis_server(
                "--cluster-enabled", "yes", "--cluster-config-file", str(directory / f"nodes-{port}.conf"),
                "--cluster-node-timeout", "2000", "--dir", str(directory), port=port,
            )
            cluster.ports.append(port)
            cluster.procs.append(proc)
        nodes = [f"127.0.0.1:{port}" for port in cluster.ports]
        created = subprocess.run(
            [redis_cli_binary(), "--cluster", "create", *nodes, "--cluster-yes"],
            capture_output=True, text=True, timeout=60, check=False,
        )
        if created.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed: {created.stdout}{created.stderr}")
        for port in cluster.ports:
            wait_until(f"cluster_state:ok on {port}", partial(_cluster_ok, port))
        yield cluster
    finally:
        _stop(cluster.procs)
        shutil.rmtree(directory, ignore_errors=True)


def _cluster_ok(port: int) -> bool:
    return "cluster_state:ok" in cli(port, "cluster", "info")


@dataclass
class SentinelServers:
    """A running master + replica watched by three sentinels; the master may be killed by a test."""

    master_port: int
    replica_port: int
    sentinel_ports: list[int]
    procs: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)
    service: str = SENTINEL_SERVICE

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)
        return f"redis+sentinel://{hosts}/{self.service}/0"

    def current_master(self) -> int | None:
        """The master port the sentinels currently announce (asked of the first that answers)."""
        for port in self.sentinel_ports:
            reply = cli(port, "sentinel", "get-master-addr-by-name", self.service).split()
            if len(reply) == 2:
                return int(reply[1])
        return None

    def kill_master(self) -> int:
        """SIGKILL the current master process (nothing runs on its way out); return its port."""
        port = self.current_master()
        assert port is not None, "no sentinel answered"
        proc = self.procs[port]
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        return port


@contextmanager
def start_sentinel(directory: Path) -> Iterator[SentinelServers]:
    """Master, replica and three sentinels (quorum 2); waits until a failover could start at once."""
    directory.mkdir(parents=True, exist_ok=True)
    procs: dict[int, subprocess.Popen[bytes]] = {}
    try:
        master, master_port = _base.start_redis_server("--dir", str(directory), *_REPLICATION_OPTIONS)
        procs[master_port] = master
        replica, replica_port = _base.start_redis_server(
            "--dir", str(directory), *_REPLICATION_OPTIONS, "--replicaof", "127.0.0.1", str(master_port)
        )
        procs[replica_port] = replica
        servers = SentinelServers(master_port, replica_port, [_base.free_port() for _ in range(3)], procs)
        ids = {port: uuid.uuid4().hex + uuid.uuid4().hex[:8] for port in servers.sentinel_ports}
        for port in servers.sentinel_ports:
            _start_one_sentinel(directory, servers, port, ids)
        _wait_sentinels_ready(servers)
        yield servers
    finally:
        _stop(list(procs.values()))
        shutil.rmtree(directory, ignore_errors=True)


def _start_one_sentinel(directory: Path, servers: SentinelServers, port: int, ids: dict[int, str]) -> None:
    """One sentinel, told its peers and the replica up front (``known-*`` lines, as a sentinel rewrites
    its own config), so it need not wait for hello messages (every 2 s) before it could fail over."""
    service = servers.service
    peers = "".join(
        f"sentinel known-sentinel {service} 127.0.0.1 {peer} {ids[peer]}\n" for peer in ids if peer != port
    )
    config = directory / f"sentinel-{port}.conf"
    config.write_text(
        f"port {port}\nbind 127.0.0.1\ndir {directory}\nsentinel myid {ids[port]}\n"
        f"sentinel monitor {service} 127.0.0.1 {servers.master_port} 2\n"
        f"sentinel down-after-milliseconds {service} {DOWN_AFTER_MS}\n"
        f"sentinel failover-timeout {service} {FAILOVER_TIMEOUT_MS}\n"
        f"sentinel parallel-syncs {service} 1\n"
        f"sentinel known-replica {service} 127.0.0.1 {servers.replica_port}\n{peers}"
    )
    servers.procs[port] = subprocess.Popen(
        [_base.redis_server_binary(), str(config), "--sentinel"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    wait_until(f"sentinel on {port}", lambda: cli(port, "ping").strip() == "PONG")


def _wait_sentinels_ready(servers: SentinelServers) -> None:
    # "master_link_status:up" is not enough: after a diskless sync the master streams writes only once the
    # replica's first REPLCONF ACK arrives (up to a second later), and a master killed before that takes
    # every write with it. Wait until a probe write has reached the replica.
    cli(servers.master_port, "set", _PROBE_KEY, "1")
    wait_until("the replica to receive writes", lambda: cli(servers.replica_port, "get", _PROBE_KEY).strip() == "1")
    cli(servers.master_port, "del", _PROBE_KEY)
    for port in servers.sentinel_ports:
        wait_until(f"sentinel {port} to see its peers and the replica", partial(_sentinel_ready, servers, port))


def _sentinel_ready(servers: SentinelServers, port: int) -> bool:
    fields = cli(port, "sentinel", "master", servers.service).split()
    info = dict(zip(fields[::2], fields[1::2], strict=False))
    return info.get("num-slaves") == "1" and info.get("num-other-sentinels") == "2"


def unique_prefix() -> str:
    return f"lkptest-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterServers]:
    """A 3-master Redis Cluster for the whole test session."""
    with start_cluster(tmp_path_factory.mktemp("cluster")) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def redis_sentinel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelServers]:
    """A Sentinel deployment for the whole test session (tests that kill its master start their own)."""
    with start_sentinel(tmp_path_factory.mktemp("sentinel")) as servers:
        yield servers


SERVER_FIXTURES = {"redis-cluster": "redis_cluster", "redis-sentinel": "redis_sentinel"}


def server_store_url(backend: str, request: pytest.FixtureRequest) -> str:
    """The store URL of a Cluster/Sentinel backend, under a key prefix of this test's own."""
    servers = request.getfixturevalue(SERVER_FIXTURES[backend])
    return f"{servers.url}?prefix={unique_prefix()}"
