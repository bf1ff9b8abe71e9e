"""Running ``lkpersist serve``: listen, announce, wait for SIGTERM or Ctrl-C, shut down cleanly.

With ``demo=True`` the bundled agent worker (``lkpersist run dev``) runs beside the server in a child
process, registered under the agent name the tokens dispatch, sharing the same store and LiveKit
settings; stopping the server stops it, and a worker that exits on its own stops the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Callable, Mapping
from typing import Final

from aiohttp import web

from lkpersist.agent.config import ENV as WORKER_ENV
from lkpersist.crypto import ENV_KEY_FILE
from lkpersist.exceptions import LkPersistError
from lkpersist.logsafe import get_logger
from lkpersist.serve.app import AccessLogger, access_logger, build_app
from lkpersist.serve.config import ServeConfig
from lkpersist.stores import ENV_STORE, redact_url, resolve_store_url
from lkpersist.stores.base import SessionStore

SHUTDOWN_TIMEOUT: Final = 5.0
"""Seconds open requests get to finish after SIGTERM (a token request takes well under a millisecond)."""
WORKER_STOP_TIMEOUT: Final = 10.0
AGENT_NAME_ENV: Final = WORKER_ENV["agent_name"]

log = get_logger("lkpersist.serve")


class ListenError(LkPersistError):
    """The server could not listen on the asked address (in use, not ours, not permitted)."""

    exit_code = 1


async def serve(
    config: ServeConfig,
    *,
    announce: Callable[[str], None],
    store: SessionStore | None = None,
    demo: bool = False,
    key_file: str | None = None,
) -> int:
    """Serve until SIGTERM/SIGINT (0) or, with ``demo``, until the worker exits (its exit code, else 1).

    ``store`` (else one opened from ``config.store_url``) is read by ``GET /api/history``; ``key_file``
    is handed to the demo worker so that it reads and writes the same encrypted store.
    """
    app = build_app(config, store=store)
    runner = web.AppRunner(app, access_log_class=AccessLogger,
                           access_log=access_logger() if config.access_log else None,
                           shutdown_timeout=SHUTDOWN_TIMEOUT)
    await runner.setup()
    try:
        address = await _listen(runner, config)
        announce(_banner(config, address))
        stop = _stop_on_signals()
        if not demo:
            await stop.wait()
            return 0
        return await _with_worker(config, stop, announce, key_file)
    finally:
        await runner.cleanup()


async def _listen(runner: web.AppRunner, config: ServeConfig) -> str:
    site = web.TCPSite(runner, config.host, config.port)
    try:
        await site.start()
    except OSError as exc:
        raise ListenError(f"cannot listen on {config.host}:{config.port}: {exc.strerror or exc}") from exc
    host, port = runner.addresses[0][:2]
    return f"http://{'[' + host + ']' if ':' in host else host}:{port}"


def _banner(config: ServeConfig, address: str) -> str:
    agent = f"dispatching agent {config.agent_name!r}" if config.agent_name else "automatic agent dispatch"
    return f"lkpersist serve: {address} (LiveKit {config.livekit_url}, {agent}; Ctrl-C to stop)"


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


def worker_environment(
    config: ServeConfig, environ: Mapping[str, str], key_file: str | None = None
) -> dict[str, str]:
    """The demo worker's environment: ours, plus the agent name and store the tokens and history use."""
    env = dict(environ)
    env[AGENT_NAME_ENV] = config.agent_name or ""
    env[ENV_STORE] = resolve_store_url(config.store_url)
    if key_file:
        env[ENV_KEY_FILE] = os.path.abspath(key_file)
    return env


async def _with_worker(
    config: ServeConfig, stop: asyncio.Event, announce: Callable[[str], None], key_file: str | None
) -> int:
    worker = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "lkpersist", "run", "dev", env=worker_environment(config, os.environ, key_file)
    )
    announce(f"lkpersist serve: agent worker {config.agent_name!r} started (pid {worker.pid}), sessions in "
             f"{redact_url(resolve_store_url(config.store_url))}")
    exited = asyncio.ensure_future(worker.wait())
    stopped = asyncio.ensure_future(stop.wait())
    await asyncio.wait({exited, stopped}, return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    if exited.done():
        code = exited.result()
        announce(f"lkpersist serve: the agent worker exited with code {code}; stopping")
        return code if code > 0 else 1
    await _stop_worker(worker)
    return 0


async def _stop_worker(worker: asyncio.subprocess.Process) -> None:
    """SIGTERM (livekit's graceful shutdown), then SIGKILL if it has not ended in time."""
    with contextlib.suppress(ProcessLookupError):
        worker.terminate()
    try:
        await asyncio.wait_for(worker.wait(), WORKER_STOP_TIMEOUT)
    except TimeoutError:
        log.warning("the agent worker did not stop within %.0f s; killing it", WORKER_STOP_TIMEOUT)
        with contextlib.suppress(ProcessLookupError):
            worker.kill()
        await worker.wait()


__all__ = ["AGENT_NAME_ENV", "ListenError", "serve", "worker_environment"]
