"""Pipelines of Lua script calls that work the same on plain Redis, Sentinel and Cluster.

redis-py's ``ClusterPipeline`` refuses its ``evalsha()`` method (it could not load a missing script in
the middle of a pipeline), and its plain ``Pipeline`` checks ``SCRIPT EXISTS`` before every execute
when scripts are queued through ``Script.__call__``. Both are avoided the same way: EVALSHA is queued by
name (a cluster pipeline routes it by its first key, so every script must declare its keys in KEYS and
keep them in one slot, which the key layout guarantees per bucket), and when a server answers NOSCRIPT
(restarted, failed over, flushed) the scripts are loaded (``SCRIPT LOAD`` goes to every cluster
primary) and the pipeline runs once more. Re-running is safe: every pipelined script is a read, or a
purge that re-checks each record before deleting it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError


def queue_script(pipe: Any, script: AsyncScript, keys: Sequence[Any], args: Iterable[Any]) -> None:
    """Queue one EVALSHA of ``script`` on ``pipe`` (a pipeline of any client kind)."""
    pipe.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)


async def load_scripts(client: Any, scripts: Iterable[AsyncScript]) -> None:
    """SCRIPT LOAD each script (on a cluster: on every primary)."""
    for script in scripts:
        await client.script_load(script.script)


async def run_pipeline(
    client: Any, scripts: Iterable[AsyncScript], fill: Callable[[Any], None], *, raise_on_error: bool = True
) -> list[Any]:
    """Build a non-transactional pipeline with ``fill``, execute it; on NOSCRIPT load ``scripts`` and retry once."""
    for attempt in (1, 2):
        async with client.pipeline(transaction=False) as pipe:
            fill(pipe)
            try:
                replies: list[Any] = await pipe.execute(raise_on_error=raise_on_error)
            except NoScriptError:
                if attempt == 2:
                    raise
            else:
                if attempt == 2 or not any(isinstance(reply, NoScriptError) for reply in replies):
                    return replies
        await load_scripts(client, scripts)
    raise AssertionError("unreachable")
