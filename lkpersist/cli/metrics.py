"""``lkpersist metrics``: serve the store exporter on ``http://HOST:PORT/metrics`` until stopped.

Exit codes: 0 stopped (Ctrl-C, SIGTERM); 2 usage (a bad interval, the port taken, prometheus_client
missing: install the ``metrics`` extra); 3 the store URL is unusable.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from lkpersist.cli._options import duration_seconds
from lkpersist.cli._runner import fail, run_with_store

if TYPE_CHECKING:
    from lkpersist.stores.base import SessionStore

DEFAULT_PORT = 9464
"""The port OpenTelemetry reserves for Prometheus exporters, as the issue asks."""

app = typer.Typer()


@app.command("metrics")
def metrics(
    ctx: typer.Context,
    port: Annotated[int, typer.Option("--port", "-p", min=0, max=65535, help="Port to listen on.")] = DEFAULT_PORT,
    host: Annotated[str, typer.Option("--host", help="Address to listen on (0.0.0.0 for every interface).")] = "127.0.0.1",
    interval: Annotated[
        str, typer.Option("--interval", metavar="DURATION", help="Read the store at most this often (scrapes in between get the last reading).")
    ] = "15s",
) -> None:
    """Serve Prometheus metrics about the store: sessions by status, turns stored, purge backlog, store up and ping.

    Independent of any agent; computed from the store's counts and indexes, never by loading sessions. Needs prometheus_client (the metrics extra; exit 4 without it).
    """
    import asyncio
    import signal

    from lkpersist.exporter.server import serve
    from lkpersist.exporter.snapshot import SnapshotCache

    seconds = duration_seconds(interval)
    if seconds <= 0:
        fail("--interval must be positive", 2)

    async def work(store: SessionStore) -> None:
        cache = SnapshotCache(store, seconds)
        server, thread = await serve(cache, host, port)
        bound = server.server_address[1]
        typer.echo(f"serving metrics on http://{host}:{bound}/metrics (store read at most every {interval})", err=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        try:
            await stop.wait()
        finally:
            server.shutdown()
            thread.join(timeout=5)

    run_with_store(ctx, work, create=False)


__all__ = ["app", "metrics"]
