"""Throwaway redis-server processes on free loopback ports, for the tests and their fixtures."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time

import pytest

REDIS_URL_ENV = "LKPERSIST_TEST_REDIS_URL"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def redis_server_binary() -> str:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail(
            "redis-server not found on PATH: install it (Debian/Ubuntu: apt-get install redis-server; "
            f"macOS: brew install redis) or set {REDIS_URL_ENV}=redis://host:port/db",
            pytrace=False,
        )
    return binary


def start_redis_server(*extra: str, port: int | None = None) -> tuple[subprocess.Popen[bytes], int]:
    """Start a throwaway redis-server on loopback and wait until it answers PING."""
    port = port or free_port()
    proc = subprocess.Popen(
        [redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", *extra],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(64).startswith((b"+PONG", b"-NOAUTH")):
                    return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"redis-server did not start on port {port}")
