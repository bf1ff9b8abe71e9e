"""The bundled persistence-enabled agent that ``lkpersist run`` launches through livekit's own CLI.

livekit-agents starts every job in a separate process that imports this module again, so the server
and the entrypoint live at module level and the configuration comes from ``LKPERSIST_*`` variables
(see :mod:`lkpersist.agent.config`).

``--greeting llm`` greets with the job's own LLM, ``off`` leaves the bundled agent silent until the
participant speaks; summaries use the job's LLM too (``--llm``).

The room is opened with ``RoomOptions(close_on_disconnect=False)``: with livekit's default, the
CLIENT_INITIATED leave that a browser refresh sends closes the ``AgentSession`` and leaves a silent agent
in the room; here the session stays open and RoomIO re-links the participant when they come back.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

from livekit.agents import Agent, AgentServer, AgentSession, JobContext, room_io

from lkpersist.agent.config import SCRIPTED, WorkerConfig
from lkpersist.agent.controller import GreetingDecision, SessionPersistence
from lkpersist.logsafe import get_logger
from lkpersist.stores import open_store, redact_url, resolve_store_url

log = get_logger("lkpersist.worker")

def _prometheus_options() -> dict[str, Any]:
    """``lkpersist run --prometheus-port``: livekit's worker serves /metrics and, through a multiprocess
    directory (``PROMETHEUS_MULTIPROC_DIR``, else a fresh one), collects what its job processes record."""
    port = os.environ.get("LKPERSIST_PROMETHEUS_PORT", "").strip()
    if not port:
        return {}
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or tempfile.mkdtemp(prefix="lkpersist-prometheus-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory  # job processes inherit it: one directory for all
    return {"prometheus_port": int(port), "prometheus_multiproc_dir": directory}


server = AgentServer(**_prometheus_options())


@server.rtc_session(agent_name=WorkerConfig.from_env().agent_name)
async def entrypoint(ctx: JobContext) -> None:
    """One job: a voice agent whose sessions persist in the configured store."""
    config = WorkerConfig.from_env()
    store = open_store(config.store_url, ttl_policy=config.ttl_policy())
    log.info("job %s: sessions in %s", ctx.job.id, redact_url(resolve_store_url(config.store_url)))
    persistence = SessionPersistence(
        store,
        greetings=config.greetings(),
        store_timeout=config.store_timeout,
        ready_timeout=config.ready_timeout,
        heartbeat_interval=config.heartbeat_interval,
        fallback=config.uses_fallback(),
        greeting=None if config.greeting == "off" else config.greeting,  # type: ignore[arg-type]
        on_decision=_log_ungreeted if config.greeting == "off" else None,
        summaries=config.summary_policy(),  # written with the job's own LLM (--llm)
    )

    async def shutdown() -> None:
        try:
            await persistence.aclose()
        finally:
            await store.close()

    ctx.add_shutdown_callback(shutdown)
    session = build_session(config)
    await session.start(
        Agent(instructions=config.resolved_instructions()),
        room=ctx.room,
        room_options=room_io.RoomOptions(close_on_disconnect=False),
    )
    persistence.attach(session, ctx.room)


def _log_ungreeted(decision: GreetingDecision) -> None:
    """``--greeting off``: this bundled agent has no greeting of its own, so the visit's claim ends here."""
    if decision.greet:
        log.info("visit %d of %r: not greeted (--greeting off)", decision.visit, decision.identity)


def build_session(config: WorkerConfig) -> AgentSession[Any]:
    """The AgentSession for ``config``: LiveKit Inference model strings, or the offline scripted LLM."""
    if config.llm == SCRIPTED:
        from lkpersist.sim.scripted_llm import ScriptedLLM

        return AgentSession(stt=config.stt, llm=ScriptedLLM(), tts=config.tts)
    return AgentSession(stt=config.stt, llm=config.llm, tts=config.tts)


__all__ = ["build_session", "entrypoint", "server"]
