"""``lkpersist run MODE …``: the bundled agent, through livekit-agents' own CLI.

MODE is one of livekit's: ``dev``, ``start``, ``console``, ``connect``, ``download-files`` (a choice, so
the usage line lists them and completion offers them). Options this command knows (store, TTLs, models,
instructions, greetings) are turned into ``LKPERSIST_*`` variables for the job processes; everything
after the mode that this command does not know — livekit's own options such as ``--url`` or
``--log-level`` — is passed to livekit's CLI unchanged, and ``lkpersist run MODE --help`` shows livekit's
help for that mode. livekit is imported only when the command runs, so the rest of the CLI starts fast;
without it, one line naming the ``agent`` extra, exit 4.
"""

from __future__ import annotations

import os
import sys
import warnings
from dataclasses import replace
from enum import Enum
from typing import Annotated, Any

import typer
from typer.core import TyperCommand

from lkpersist.agent.config import (
    DEFAULT_LLM,
    DEFAULT_STT,
    DEFAULT_TTS,
    ENV,
    WorkerConfig,
    missing_environment,
)
from lkpersist.cli._options import duration_seconds
from lkpersist.cli._runner import fail, store_url_of
from lkpersist.exceptions import LkPersistError

_DEFAULTS = WorkerConfig()


class Greeting(str, Enum):
    """``--greeting``: the choices of :data:`lkpersist.agent.config.GREETING_CHOICES`."""

    template = "template"
    llm = "llm"
    off = "off"



class Mode(str, Enum):
    """livekit-agents' CLI modes, as ``lkpersist run`` passes them on."""

    dev = "dev"
    start = "start"
    console = "console"
    connect = "connect"
    download_files = "download-files"


MODES_HELP = f"{' | '.join(mode.value for mode in Mode)}, then livekit's own options (e.g. --log-level debug)"
_LIVEKIT_HELP = "lkpersist.run.livekit_help"
_HELP_OPTIONS = ("--help", "-h")


class RunCommand(TyperCommand):
    """``run``: livekit's options pass through, and ``run MODE --help`` is livekit's help for MODE."""

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        return [*super().collect_usage_pieces(ctx), "[LIVEKIT OPTIONS]..."]

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        modes = {mode.value for mode in Mode}
        position = next((i for i, arg in enumerate(args) if arg in modes), None)
        if position is not None and any(arg in _HELP_OPTIONS for arg in args[position + 1:]):
            ctx.meta[_LIVEKIT_HELP] = True
            args = [*args[: position + 1], *(arg for arg in args[position + 1:] if arg not in _HELP_OPTIONS)]
        return super().parse_args(ctx, args)


PROMETHEUS_PORT_ENV = "LKPERSIST_PROMETHEUS_PORT"

app = typer.Typer()


@app.command(
    "run", cls=RunCommand, context_settings={"allow_extra_args": True, "ignore_unknown_options": True}
)
def run(
    ctx: typer.Context,
    mode: Annotated[
        Mode | None,
        typer.Argument(
            metavar="{" + "|".join(m.value for m in Mode) + "}",
            help="livekit's mode: dev (reloads), start (production), console (local audio), connect (one room), "
            "download-files (model files).",
            show_default=False,
        ),
    ] = None,
    stt: Annotated[
        str, typer.Option(envvar=ENV["stt"], help="Speech-to-text model (LiveKit Inference).")
    ] = DEFAULT_STT,
    llm: Annotated[
        str, typer.Option(envvar=ENV["llm"], help="LLM (LiveKit Inference), or 'scripted'.")
    ] = DEFAULT_LLM,
    tts: Annotated[
        str, typer.Option(envvar=ENV["tts"], help="Text-to-speech model (LiveKit Inference).")
    ] = DEFAULT_TTS,
    instructions: Annotated[
        str | None,
        typer.Option(envvar=ENV["instructions"], help="Agent instructions, or @file to read them."),
    ] = None,
    greetings: Annotated[
        str | None,
        typer.Option(envvar=ENV["greetings_file"], help="Greeting templates file (.json or .toml)."),
    ] = None,
    agent_name: Annotated[
        str, typer.Option(envvar=ENV["agent_name"], help="Name for explicit dispatch.")
    ] = "",
    ttl_first: Annotated[
        str | None, typer.Option(envvar=ENV["ttl_first"], help="TTL after a first visit.")
    ] = None,
    ttl_returning: Annotated[
        str | None, typer.Option(envvar=ENV["ttl_returning"], help="TTL once the participant came back.")
    ] = None,
    ttl_frequent: Annotated[
        str | None, typer.Option(envvar=ENV["ttl_frequent"], help="TTL for frequent returners.")
    ] = None,
    store_timeout: Annotated[
        str | None, typer.Option(envvar=ENV["store_timeout"], help="Store time budget before greeting.")
    ] = None,
    ready_timeout: Annotated[
        str | None,
        typer.Option(envvar=ENV["ready_timeout"], help="Longest wait for the participant to hear."),
    ] = None,
    heartbeat: Annotated[
        str | None, typer.Option(envvar=ENV["heartbeat_interval"], help="Session refresh interval.")
    ] = None,
    fallback: Annotated[
        bool | None,
        typer.Option(
            "--fallback/--no-fallback",
            envvar=ENV["fallback"],
            help="Keep going from memory while the store is unreachable; merge back later. Default: on for Redis.",
        ),
    ] = None,
    greeting: Annotated[
        Greeting,
        typer.Option(
            envvar=ENV["greeting"],
            help="Who greets: lkpersist's templates, the LLM in its own words, or off (lkpersist does not greet).",
        ),
    ] = Greeting.template,
    summaries: Annotated[
        bool,
        typer.Option(
            "--summaries/--no-summaries",
            envvar=ENV["summaries"],
            help="Summarise the oldest turns with the agent's LLM once more than --summary-cap are stored.",
        ),
    ] = True,
    summary_cap: Annotated[
        int, typer.Option(envvar=ENV["summary_cap"], min=2, help="Summarise past this many stored turns.")
    ] = _DEFAULTS.summary_cap,
    summary_keep: Annotated[
        int, typer.Option(envvar=ENV["summary_keep"], min=0, help="Newest turns kept verbatim by a summary.")
    ] = _DEFAULTS.summary_keep,
    summary_words: Annotated[
        int, typer.Option(envvar=ENV["summary_words"], min=10, help="Length of the summary, in words.")
    ] = _DEFAULTS.summary_words,
    prometheus_port: Annotated[
        int | None,
        typer.Option(envvar=PROMETHEUS_PORT_ENV, min=1, max=65535, metavar="PORT",
                     help="Serve Prometheus metrics (livekit's and lkpersist's, from every job process) on PORT."),
    ] = None,
) -> None:
    """Run the bundled persistence-enabled agent (livekit modes: dev, start, console, connect, download-files).

    Needs LIVEKIT_URL, LIVEKIT_API_KEY and LIVEKIT_API_SECRET (or livekit's --url/--api-key/--api-secret) for dev/start/connect; the models use LiveKit Inference with the same key and secret.

    The AgentSession keeps running when the participant's browser refreshes (RoomOptions close_on_disconnect=False); with a Redis store the agent keeps going from memory while Redis is down (--no-fallback to disable).

    lkpersist run MODE --help shows livekit's own options for MODE. Needs the agent extra (exit 4 without it).
    """
    if mode is None:
        typer.echo(ctx.get_help())
        fail(f"missing MODE: {MODES_HELP}", 2)
    livekit_args = [mode.value, *ctx.args]
    if ctx.meta.get(_LIVEKIT_HELP):
        _launch(None, [*livekit_args, "--help"])
        return
    try:
        _require_livekit()
        config = _config(
            store_url_of(ctx),
            fallback=fallback,
            stt=stt,
            llm=llm,
            tts=tts,
            instructions=instructions,
            greetings=greetings,
            agent_name=agent_name,
            ttl_first=ttl_first,
            ttl_returning=ttl_returning,
            ttl_frequent=ttl_frequent,
            store_timeout=store_timeout,
            ready_timeout=ready_timeout,
            heartbeat=heartbeat,
        )
        config = replace(
            config, greeting=greeting.value, summaries=summaries,
            summary_cap=summary_cap, summary_keep=summary_keep, summary_words=summary_words,
        )
        _check_store(config)
    except LkPersistError as exc:
        fail(str(exc), exc.exit_code)
    missing = missing_environment(config, mode.value, ctx.args, os.environ)
    if missing:
        fail(
            f"{', '.join(missing)} not set: export {'it' if len(missing) == 1 else 'them'} (or pass livekit's --url/--api-key/--api-secret)",
            2,
        )
    if prometheus_port is not None:  # read by lkpersist.agent.worker when it builds the AgentServer
        os.environ[PROMETHEUS_PORT_ENV] = str(prometheus_port)
    _launch(config, livekit_args)


def _require_livekit() -> None:
    """MissingDependencyError (exit 4) before anything is configured, checked or created."""
    from lkpersist.optional import import_agent_side

    import_agent_side("livekit.agents", "lkpersist run")


def _config(store_url: str | None, fallback: bool | None = None, **options: str | None) -> WorkerConfig:
    """Options → configuration; an option left out keeps the WorkerConfig default."""
    values: dict[str, object] = {"store_url": store_url, "fallback": fallback}
    for name in ("stt", "llm", "tts", "instructions", "agent_name"):
        if options[name]:
            values[name] = options[name]
    if options["greetings"]:
        values["greetings_file"] = options["greetings"]
    renamed = {"heartbeat": "heartbeat_interval"}
    for name in ("ttl_first", "ttl_returning", "ttl_frequent", "store_timeout", "ready_timeout", "heartbeat"):
        seconds = duration_seconds(options[name])
        if seconds is not None:
            values[renamed.get(name, name)] = seconds
    config = WorkerConfig(**values)  # type: ignore[arg-type]
    config.greetings()
    config.resolved_instructions()
    return config


def _check_store(config: WorkerConfig) -> None:
    """Fail now on a store URL we cannot use, rather than in every job process later."""
    import asyncio

    from lkpersist.stores import open_store

    store = open_store(config.store_url, ttl_policy=config.ttl_policy())
    try:
        if (policy := config.summary_policy()) is not None:
            policy.check_store(store)
    finally:
        asyncio.run(store.close())


def _launch(config: WorkerConfig | None, args: list[str]) -> None:
    """Hand over to livekit's CLI with ``args`` (``config`` None: only livekit's help is wanted)."""
    from lkpersist.exceptions import MissingDependencyError
    from lkpersist.optional import import_agent_side

    try:
        cli = import_agent_side("livekit.agents.cli", "lkpersist run")
        worker = import_agent_side("lkpersist.agent.worker", "lkpersist run")
    except MissingDependencyError as exc:
        fail(str(exc), exc.exit_code)
    if config is not None:
        os.environ.update(config.to_env())
    sys.argv = ["lkpersist run", *args]

    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="the built-in Python CLI is deprecated", category=DeprecationWarning
        )
        cli.run_app(worker.server)


__all__ = ["Mode", "app", "run"]
