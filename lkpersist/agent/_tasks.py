"""The controller's background tasks: kept, ordered per identity, their failures logged.

``rtc.Room.on`` refuses coroutines, so every handler of :class:`~lkpersist.agent.controller.SessionPersistence`
schedules its store work here. asyncio keeps only weak references to tasks, so this set holds them until
they finish; an exception nobody awaits is logged instead of vanishing. Work enqueued for one identity
runs after the work enqueued before it for that identity, so a leave is never recorded after the
join that followed it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from lkpersist.logsafe import get_logger

log = get_logger("lkpersist.agent")

PREFIX = "lkpersist-"
"""Every task's name starts with this, then what it does (``lkpersist-join``, ``lkpersist-heartbeat``)."""


class AgentTasks:
    """The tasks of one controller; see the module docstring."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()
        self._chains: dict[str, asyncio.Task[None]] = {}

    def spawn(self, work: Coroutine[Any, Any, Any], what: str) -> asyncio.Task[Any]:
        """Run ``work`` now, beside everything else."""
        task = asyncio.get_running_loop().create_task(work, name=f"{PREFIX}{what}")
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def enqueue(self, identity: str, what: str, work: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Run ``work`` once the work enqueued before it for ``identity`` has finished (or failed)."""
        previous = self._chains.get(identity)

        async def in_order() -> None:
            if previous is not None and not previous.done():
                await asyncio.wait([previous])
            await work()

        task = self.spawn(in_order(), what)
        self._chains[identity] = task
        task.add_done_callback(
            lambda done: self._chains.pop(identity, None) if self._chains.get(identity) is done else None
        )

    async def wait_idle(self, *, except_what: str) -> None:
        """Wait until every task has finished, except those doing ``except_what`` (which never end)."""
        endless = f"{PREFIX}{except_what}"
        while pending := [t for t in self._tasks if not t.get_name().startswith(endless)]:
            await asyncio.wait(pending)

    async def cancel_all(self) -> None:
        """Cancel what is left and wait for it to end."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("lkpersist %s task failed", task.get_name(), exc_info=exc)


__all__ = ["AgentTasks"]
