"""The loop of ``lkpersist sessions watch`` (the command is in ``cli/sessions.py``, the lines it prints
in :mod:`lkpersist.cli._output.events`).

Events come from :meth:`SessionStore.events` (rule in :mod:`lkpersist.model.events`, delivery in
:mod:`lkpersist.stores.events`), produced by any process using the store: agents, other CLI commands,
cron purges. Once subscribed, the command says so on stderr ("watching session events ..."), so a
script can wait for that line before acting.
"""

from __future__ import annotations

import asyncio

from lkpersist.cli._output.events import print_event
from lkpersist.cli._output.formats import WatchFormat
from lkpersist.cli._output.text import quoted
from lkpersist.cli._runner import err_console
from lkpersist.stores.base import SessionStore


async def tail_events(
    store: SessionStore, identity: str | None, output: WatchFormat, count: int | None, timeout: float | None
) -> int:
    """Subscribe, say so on stderr, print events until ``count`` of them or ``timeout``; return how many."""
    async with store.events(identity) as stream:
        whose = "" if identity is None else f" of {quoted(identity)}"
        err_console.print(f"watching session events{whose} (Ctrl-C to stop)", markup=False)
        seen = 0
        try:
            async with asyncio.timeout(timeout):
                async for event in stream:
                    print_event(event, output)
                    seen += 1
                    if count is not None and seen >= count:
                        break
        except TimeoutError:
            pass
        return seen
