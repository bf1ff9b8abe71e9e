"""``lkpersist serve`` as a real process: started on a free loopback port, its address read from its banner."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from tests.cli.test_processes import ROOT, lkpersist_command

API_KEY = "lkpersist-test-key"
API_SECRET = "lkpersist-test-secret-0123456789abcdefghij"  # >= 32 bytes: PyJWT warns about shorter HMAC keys
BANNER = re.compile(r"lkpersist serve: (http://\S+) ")


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_environment(livekit_url: str, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("LIVEKIT_", "LKPERSIST_"))}
    env.update(LIVEKIT_URL=livekit_url, LIVEKIT_API_KEY=API_KEY, LIVEKIT_API_SECRET=API_SECRET, **extra)
    return env


class ServeProcess:
    """A running ``lkpersist serve``; its stderr is collected line by line by a reader thread."""

    def __init__(self, args: list[str], env: Mapping[str, str]) -> None:
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True, cwd=ROOT, env=dict(env))
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        try:
            self.url = self.wait_for(BANNER.pattern, 60.0).group(1)
        except BaseException:
            self.proc.kill()
            self.proc.wait()
            raise

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._changed:
                self.lines.append(line)
                self._changed.notify_all()
        with self._changed:
            self.lines.append("")  # end of output
            self._changed.notify_all()

    def wait_for(self, pattern: str, timeout: float = 30.0) -> re.Match[str]:
        """The first stderr line matching ``pattern`` (already printed or still to come)."""
        compiled = re.compile(pattern)

        def found() -> re.Match[str] | None:
            return next((m for m in map(compiled.search, self.lines) if m), None)

        with self._changed:
            self._changed.wait_for(lambda: found() is not None or "" in self.lines, timeout)
            match = found()
        if match is None:
            raise AssertionError(f"no line matching {pattern!r} (exit {self.proc.poll()}):\n{self.output[-3000:]}")
        return match

    @property
    def output(self) -> str:
        with self._changed:
            return "".join(self.lines)

    def stop(self, timeout: float = 20.0) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise
        finally:
            self._reader.join(timeout=5)


@contextmanager
def serve_process(store_url: str, *args: str, livekit_url: str | None = None, env: Mapping[str, str] | None = None,
                  global_args: tuple[str, ...] = ()) -> Iterator[ServeProcess]:
    """``lkpersist --store URL [GLOBAL_ARGS] serve --port 0 ARGS`` running until the block ends (then SIGTERM)."""
    environment = serve_environment(livekit_url or f"ws://127.0.0.1:{closed_port()}", **(env or {}))
    command = [*lkpersist_command(), "--store", store_url, *global_args, "serve", "--port", "0", *args]
    process = ServeProcess(command, environment)
    try:
        yield process
    finally:
        if process.proc.poll() is None:
            process.stop()
