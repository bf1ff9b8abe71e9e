"""Serving the exporter's series over HTTP with ``prometheus_client``.

``prometheus_client``'s own HTTP server (a thread) calls the collector on every scrape; the collector
asks the event loop that owns the store for the current snapshot (:class:`SnapshotCache`) and renders
:data:`~lkpersist.exporter.series.SERIES`. The store is only ever used from its own loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

from lkpersist.exceptions import InvalidInputError, MissingDependencyError
from lkpersist.exporter.series import SERIES
from lkpersist.exporter.snapshot import SnapshotCache

SCRAPE_TIMEOUT = 30.0
MISSING = "lkpersist metrics needs prometheus_client (the metrics extra), which is not installed: pip install 'lkpersist[metrics]'"


def _prometheus() -> Any:
    try:
        import prometheus_client
    except ImportError as exc:
        raise MissingDependencyError(MISSING, name="prometheus_client") from exc
    return prometheus_client


class StoreCollector:
    """A prometheus_client collector reading ``cache`` through ``loop`` (the loop that owns the store)."""

    def __init__(self, cache: SnapshotCache, loop: asyncio.AbstractEventLoop) -> None:
        self._cache = cache
        self._loop = loop
        _prometheus()
        from prometheus_client.core import GaugeMetricFamily

        self._family = GaugeMetricFamily

    def collect(self) -> Iterator[Any]:
        snapshot = asyncio.run_coroutine_threadsafe(self._cache.get(), self._loop).result(SCRAPE_TIMEOUT)
        for series in SERIES:
            if series.needs_census and snapshot.census is None:
                continue
            family = self._family(series.name, series.help, labels=series.label_names)
            for labels, value in series.samples(snapshot):
                family.add_metric([labels[name] for name in series.label_names], value)
            yield family


async def serve(cache: SnapshotCache, host: str, port: int) -> tuple[Any, Any]:
    """Start serving ``/metrics`` on ``host:port`` (a thread); returns prometheus_client's (server, thread)."""
    prometheus = _prometheus()
    registry = prometheus.CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(cache, asyncio.get_running_loop()))
    try:
        return prometheus.start_http_server(port, addr=host, registry=registry)  # type: ignore[no-any-return]
    except OSError as exc:
        raise InvalidInputError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc


__all__ = ["MISSING", "StoreCollector", "serve"]
