"""Store calls made on the agent's behalf: bounded in time, failures counted, never raised.

The store must never take the agent down: a call that fails or runs past its budget is logged, counted
and answered with :data:`FAILED`, an answer of its own, apart from the call's answers (where None means
something: no live session). The greeting path shares one deadline between its calls.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from enum import Enum
from typing import TypeVar

from lkpersist.agent.metrics import NO_METRICS, AgentMetrics, backend_of, degraded_of
from lkpersist.logsafe import get_logger
from lkpersist.stores.base import SessionStore

log = get_logger("lkpersist.agent")
T = TypeVar("T")


class StoreFailed(Enum):
    """What a bounded store call gives when it failed or ran out of time."""

    FAILED = "failed"


FAILED = StoreFailed.FAILED


class BoundedCalls:
    """Runs store calls within ``timeout`` seconds each (or until a shared deadline); counts the failures.

    With ``metrics`` (and the ``store`` the calls go to) each call is timed and reported, labelled with the
    first word of its ``what`` ("connect after expiry" is a connect)."""

    def __init__(self, timeout: float, metrics: AgentMetrics = NO_METRICS, store: SessionStore | None = None) -> None:
        self.timeout = timeout
        self.failures = 0
        self.metrics, self._store = metrics, store
        self._backend = "" if store is None else backend_of(store)

    async def __call__(self, call: Awaitable[T], what: str, deadline: float | None = None) -> T | StoreFailed:
        """The call's answer, or FAILED (logged and counted) when it raised or ran out of time.

        ``deadline`` is in the event loop's clock; without one the call gets the whole ``timeout``.
        """
        loop = asyncio.get_running_loop()
        timeout = self.timeout if deadline is None else max(deadline - loop.time(), 0.0)
        started = time.perf_counter()
        answer = await self._bounded(call, what, timeout)
        if self.metrics is not NO_METRICS and self._store is not None:
            ok, degraded = answer is not FAILED, degraded_of(self._store)
            self.metrics.store_call(self._backend, what.split()[0], time.perf_counter() - started, ok, degraded)
        return answer

    async def _bounded(self, call: Awaitable[T], what: str, timeout: float) -> T | StoreFailed:
        try:
            return await asyncio.wait_for(call, timeout=timeout)
        except TimeoutError:
            self.failures += 1
            log.warning("store %s timed out after %.0f ms; carrying on without it", what, timeout * 1000)
        except Exception as exc:  # noqa: BLE001 -- the store must never take the agent down
            self.failures += 1
            log.warning("store %s failed: %s; carrying on without it", what, exc)
        return FAILED


__all__ = ["FAILED", "BoundedCalls", "StoreFailed"]
