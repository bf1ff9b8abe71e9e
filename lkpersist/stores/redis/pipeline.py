"""Pipelines of Lua script calls that work the same on plain Redis, Sentinel and Cluster.

redis-py's ``ClusterPipeline`` refuses its ``evalsha()`` method (it could not load a missing script in
the middle of a pipeline), and its plain ``Pipeline`` checks ``SCRIPT EXISTS`` before every execute
when scripts are queued through ``Script.__call__``. Both are avoided the same way: EVALSHA is queued by
name (a cluster pipeline routes it by its first key, so every script must declare its keys in KEYS and
keep them in one slot, which the key layout guarantees per bucket), and when a server answers NOSCRIPT
(restarted, failed over, flushed) the scripts are loaded (``SCRIPT LOAD`` goes to every cluster
primary) and the pipeline runs once more. Re-running is safe: every pipelined script is a read, or a
purge that re-checks each record before deleting it.

:class:`Coalescer` is auto-pipelining: concurrent calls of one script sent as one such pipeline (or as
one call of a script running them all).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
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


Call = tuple[Sequence[Any], Sequence[Any], "asyncio.Future[Any]"]
"""One coalesced script call: its KEYS, its ARGV, and the future its caller awaits."""


@dataclass
class _Gathering:
    """One event loop's side of a :class:`Coalescer`: the batch being gathered, and how many calls or
    batches of the script are out to Redis now."""

    batch: list[Call] | None = None
    out: int = 0


class Coalescer:
    """Auto-pipelining for one script: the calls made while the event loop is busy go out together.

    At agent concurrency the client, not Redis, is the limit, and most of a call's client time is
    redis-py's per-command machinery (a pooled connection, a socket write, a timeout, a reply read). A
    call here joins the batch being gathered; the batch leaves on the event loop's next turn as one
    pipeline (a lone call as a plain command), so sixty-four concurrent calls cost about one round trip's
    overhead instead of sixty-four. With ``lone_at_once`` a call made while none of this script is out
    to Redis and no batch is being gathered goes out at once, from its caller's task: a lone caller pays
    no extra loop turn or task; only what arrives while calls are out is batched. With ``many``, a script
    that runs many calls of ``script`` in one (ARGV[1] and ARGV[2] each call's number of keys and
    arguments, then every call's keys and arguments, each call in its own pcall: see
    :func:`~lkpersist.stores.redis.presence.each_arrival`), a batch is one EVALSHA of it instead of a
    pipeline: one command's client overhead for the whole batch (not on a Cluster, where one call's keys
    must share a slot). With ``batch_size``, a batch leaves as several of at most that many calls, one
    after the other: Redis runs the first while the client still writes the next and, once its replies
    are back, answers their callers while Redis runs the rest, so the two overlap instead of taking turns
    (one batch of all 64 callers of a busy worker kept each waiting on the other: half the throughput).
    Each script call is still atomic on its own and its failure reaches only its
    caller; a caller cancelled before the batch returns is simply not answered. After NOSCRIPT only the
    calls that got it run again (they did nothing), so writes are safe here too.
    """

    def __init__(
        self, client: Any, script: AsyncScript, scripts: Iterable[AsyncScript], *, lone_at_once: bool = False,
        many: AsyncScript | None = None, batch_size: int | None = None,
    ) -> None:
        self._client, self._script, self._scripts = client, script, tuple(scripts)
        self._lone_at_once, self._many, self._batch_size = lone_at_once, many, batch_size
        self._loops: dict[asyncio.AbstractEventLoop, _Gathering] = {}
        self._sending: set[asyncio.Task[None]] = set()

    @property
    def script(self) -> AsyncScript:
        return self._script

    async def call(self, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        """The script's reply for ``keys`` and ``args``; redis-py's exception if that call failed."""
        loop = asyncio.get_running_loop()
        gathering = self._loops.get(loop)
        if gathering is None:
            self._forget_closed_loops()
            gathering = self._loops[loop] = _Gathering()
        if self._lone_at_once and gathering.out == 0 and gathering.batch is None:
            gathering.out += 1
            try:
                return await self._lone(keys, args)
            finally:
                gathering.out -= 1
        future = loop.create_future()
        if gathering.batch is None:  # the first call of a batch: it leaves on the loop's next turn
            gathering.batch = []
            loop.call_soon(self._send, loop, gathering)
        gathering.batch.append((keys, args, future))
        return await future

    def _forget_closed_loops(self) -> None:
        """A loop closed before its batch left (its callers are gone with it) must not hold on to them."""
        for loop in [loop for loop in self._loops if loop.is_closed()]:
            del self._loops[loop]

    def _send(self, loop: asyncio.AbstractEventLoop, gathering: _Gathering) -> None:
        batch, gathering.batch = gathering.batch or [], None
        size = self._batch_size or len(batch) or 1
        for start in range(0, len(batch) or 1, size):
            gathering.out += 1
            task = loop.create_task(self._run(batch[start:start + size], gathering))
            self._sending.add(task)  # a reference until it is done: the loop keeps only weak ones
            task.add_done_callback(self._sending.discard)

    async def _run(self, batch: list[Call], gathering: _Gathering) -> None:
        try:
            await self._answer([call for call in batch if not call[2].cancelled()])
        finally:
            gathering.out -= 1

    async def _answer(self, calls: list[Call]) -> None:
        try:
            replies = await self._replies(calls)
            missing = [index for index, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
            if missing:  # a restarted or flushed server: load the scripts, run those calls again
                await load_scripts(self._client, self._scripts)
                for index, reply in zip(missing, await self._replies([calls[i] for i in missing]), strict=True):
                    replies[index] = reply
        except asyncio.CancelledError:  # the loop is shutting down: so are the callers
            for _, _, future in calls:
                future.cancel()
            raise
        except Exception as exc:  # noqa: BLE001 - the batch failed as a whole: every caller's error
            replies = [exc] * len(calls)
        for (_, _, future), reply in zip(calls, replies, strict=True):
            if future.done():
                continue
            if isinstance(reply, BaseException):
                future.set_exception(reply)
            else:
                future.set_result(reply)

    async def _lone(self, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        """One call as a plain EVALSHA; on NOSCRIPT the scripts are loaded and it runs again."""
        try:
            return await self._evalsha(keys, args)
        except NoScriptError:
            await load_scripts(self._client, self._scripts)
            return await self._evalsha(keys, args)

    def _evalsha(self, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        return self._client.execute_command("EVALSHA", self._script.sha, len(keys), *keys, *args)

    async def _replies(self, calls: list[Call]) -> list[Any]:
        """Each call's reply, or the error Redis answered it with, in order."""
        if len(calls) == 1:
            keys, args, _ = calls[0]
            try:
                return [await self._evalsha(keys, args)]
            except NoScriptError as exc:
                return [exc]
        if not calls:
            return []
        if self._many is not None:
            return await self._replies_of_many(calls, self._many)
        async with self._client.pipeline(transaction=False) as pipe:
            for keys, args, _ in calls:
                queue_script(pipe, self._script, keys, args)
            return list(await pipe.execute(raise_on_error=False))

    async def _replies_of_many(self, calls: list[Call], many: AsyncScript) -> list[Any]:
        """The calls as one EVALSHA of ``many`` (every call's KEYS, then their counts and every call's ARGV);
        its reply is each call's reply or error in order. Every call has as many keys and arguments as the first."""
        keys = [key for call_keys, _, _ in calls for key in call_keys]
        args = [arg for _, call_args, _ in calls for arg in call_args]
        width = (len(calls[0][0]), len(calls[0][1]))
        try:
            return list(await self._client.execute_command("EVALSHA", many.sha, len(keys), *keys, *width, *args))
        except NoScriptError as exc:
            return [exc] * len(calls)
