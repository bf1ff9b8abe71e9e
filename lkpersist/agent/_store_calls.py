"""Store calls made on the agent's behalf: bounded in time, failures counted, never raised.

The store must never take the agent down: a call that fails or runs past its budget is logged, counted
and answered with :data:`FAILED`, an answer of its own, apart from the call's answers (where None means
something: no live session). The greeting path shares one deadline between its calls.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from enum import Enum
from typing import TypeVar

from lkpersist.logsafe import get_logger

log = get_logger("lkpersist.agent")
T = TypeVar("T")


class StoreFailed(Enum):
    """What a bounded store call gives when it failed or ran out of time."""

    FAILED = "failed"


FAILED = StoreFailed.FAILED


class BoundedCalls:
    """Runs store calls within ``timeout`` seconds each (or until a shared deadline); counts the failures."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.failures = 0

    async def __call__(self, call: Awaitable[T], what: str, deadline: float | None = None) -> T | StoreFailed:
        """The call's answer, or FAILED (logged and counted) when it raised or ran out of time.

        ``deadline`` is in the event loop's clock; without one the call gets the whole ``timeout``.
        """
        loop = asyncio.get_running_loop()
        timeout = self.timeout if deadline is None else max(deadline - loop.time(), 0.0)
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
