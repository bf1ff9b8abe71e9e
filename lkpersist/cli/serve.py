"""``lkpersist serve``: the token endpoint and the page (see :mod:`lkpersist.serve`).

The command parses options, builds a :class:`~lkpersist.serve.config.ServeConfig` and runs the server on
the configured store. Like every sub-command it imports the library only when it runs; aiohttp (the
``agent`` extra) is needed then, and its absence is one line and exit 4. Tokens are signed without any
livekit package.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer

from lkpersist.cli._runner import cli_state, fail, run_with_store

if TYPE_CHECKING:
    from lkpersist.serve.config import ServeConfig
    from lkpersist.serve.ratelimit import RateLimit
    from lkpersist.stores.base import SessionStore

DEMO_AGENT_NAME = "lkpersist-demo"
DEFAULT_ROOM_PREFIX = "lkpersist-"  # lkpersist.serve.config.DEFAULT_ROOM_PREFIX (checked by a test)
AGENT_NAME_ENV = "LKPERSIST_AGENT_NAME"  # lkpersist.agent.config.ENV["agent_name"] (checked by a test)

app = typer.Typer()


@app.command("serve")
def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (0: any free port).")] = 8080,
    agent_name: Annotated[
        str | None, typer.Option(envvar=AGENT_NAME_ENV, help="Agent the tokens dispatch (explicit dispatch).")
    ] = None,
    room: Annotated[
        str | None, typer.Option(help="One room for everybody (default: a room per identity).")
    ] = None,
    room_prefix: Annotated[
        str | None, typer.Option(help=f"Prefix of the per-identity rooms (default: {DEFAULT_ROOM_PREFIX}).")
    ] = None,
    token_ttl: Annotated[str, typer.Option(help="LiveKit token lifetime.")] = "15m",
    resume_ttl: Annotated[
        str, typer.Option(help="How long a browser is remembered after its last visit.")
    ] = "30d",
    allow_origin: Annotated[
        list[str] | None,
        typer.Option(metavar="ORIGIN", help="Origin allowed to call the API from elsewhere (repeatable, or *)."),
    ] = None,
    rate_limit: Annotated[
        str, typer.Option(help="API requests per client address: REQUESTS/PERIOD, or off.")
    ] = "60/1m",
    connect_timeout: Annotated[
        str, typer.Option(help="How long the page waits for LiveKit before saying it cannot be reached.")
    ] = "10s",
    history_turns: Annotated[int, typer.Option(help="Earlier turns the page shows after a refresh.")] = 20,
    access_log: Annotated[
        bool, typer.Option("--access-log/--no-access-log", help="One line per request on stderr.")
    ] = True,
    demo: Annotated[
        bool, typer.Option("--demo", help=f"Also run the bundled agent worker (agent {DEMO_AGENT_NAME!r}).")
    ] = False,
) -> None:
    """Serve the token endpoint and the page: POST /api/token, GET /api/history, GET /.

    Needs LIVEKIT_URL, LIVEKIT_API_KEY and LIVEKIT_API_SECRET. Resume credentials are signed with a key derived from LKPERSIST_RESUME_SECRET (older secrets in LKPERSIST_RESUME_SECRET_OLD), or from LIVEKIT_API_SECRET when it is unset.

    With --demo the bundled agent worker (lkpersist run dev) runs beside it: open the page and talk. Exit codes: 0 stopped by SIGTERM or Ctrl-C, 1 cannot listen (or the demo worker died), 2 usage or configuration, 3 store unusable, 4 aiohttp not installed (the agent extra).
    """
    _require_aiohttp()
    if room is not None and room_prefix is not None:
        fail("give at most one of --room and --room-prefix", 2)
    config = _config(
        ctx,
        host=host,
        port=port,
        agent_name=(agent_name or DEMO_AGENT_NAME) if demo else agent_name or None,
        room=room,
        room_prefix=DEFAULT_ROOM_PREFIX if room_prefix is None else room_prefix,
        token_ttl=token_ttl,
        resume_ttl=resume_ttl,
        allow_origins=tuple(allow_origin or ()),
        rate_limit=rate_limit,
        connect_timeout=connect_timeout,
        history_turns=history_turns,
        access_log=access_log,
        demo=demo,
    )
    raise typer.Exit(_run(ctx, config, demo))


def _require_aiohttp() -> None:
    from lkpersist.exceptions import MissingDependencyError
    from lkpersist.optional import import_agent_side

    try:
        import_agent_side("aiohttp", "lkpersist serve")
    except MissingDependencyError as exc:
        fail(str(exc), exc.exit_code)


def _config(ctx: typer.Context, *, token_ttl: str, resume_ttl: str, rate_limit: str, connect_timeout: str,
            demo: bool, **options: object) -> ServeConfig:
    """The checked configuration; a bad value is one line and exit 2."""
    import os

    from lkpersist.agent.config import WorkerConfig
    from lkpersist.cli._options import duration_seconds
    from lkpersist.exceptions import LkPersistError
    from lkpersist.serve.config import ServeConfig

    try:
        config = ServeConfig.from_environment(
            os.environ,
            token_ttl=duration_seconds(token_ttl),
            resume_ttl=duration_seconds(resume_ttl),
            rate_limit=_rate_limit(rate_limit),
            connect_timeout=duration_seconds(connect_timeout),
            store_url=cli_state(ctx).store_url,
            **options,
        )
        if demo:
            WorkerConfig.from_env(os.environ)  # the worker's own settings: wrong ones fail here, not in it
    except LkPersistError as exc:
        fail(str(exc), exc.exit_code)
    return config


def _rate_limit(text: str) -> RateLimit | None:
    from lkpersist.serve.ratelimit import RateLimit

    return RateLimit.parse(text)


def _run(ctx: typer.Context, config: ServeConfig, demo: bool) -> int:
    """Serve on the configured store (with the CLI's --key-file), opened and closed around the server."""
    from lkpersist.serve.server import serve as run_server

    key_file = cli_state(ctx).key_file

    async def work(store: SessionStore) -> int:
        return await run_server(config, store=store, announce=_announce, demo=demo, key_file=key_file)

    with _logging_to_stderr():
        return run_with_store(ctx, work, create=False)  # the server only reads; the agent creates the store


@contextmanager
def _logging_to_stderr() -> Iterator[None]:
    """lkpersist's INFO records (the access log) on stderr while serving; as it was afterwards."""
    import logging
    import sys

    logger = logging.getLogger("lkpersist")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s: %(message)s"))
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def _announce(line: str) -> None:
    typer.echo(line, err=True)


__all__ = ["app", "serve"]
