"""A Redis of the test's own that can be killed (SIGKILL) and started again on the same port.

It persists with an append-only file fsynced on every write, as a production Redis that must survive a
crash would, so that what was written before the kill is there after the restart.
"""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.agent.conftest import make_job  # noqa: F401 -- the agent job fixture, for the outage test
from tests.conftest import start_redis_server


class KillableRedis:
    """One redis-server process at a time on a fixed loopback port."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0?socket_timeout=1&socket_connect_timeout=0.5"

    def start(self) -> None:
        extra = ("--appendonly", "yes", "--appendfsync", "always", "--dir", str(self.data_dir))
        self.proc, self.port = start_redis_server(*extra, port=self.port or None)

    def pause(self) -> None:
        """SIGSTOP: the server holds its connections but answers nothing (a hung host, a black hole)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL: no shutdown, no save; clients see their connections drop."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None


@pytest.fixture
def killable_redis(tmp_path: Path) -> Iterator[KillableRedis]:
    server = KillableRedis(tmp_path)
    try:
        yield server
    finally:
        server.kill()
