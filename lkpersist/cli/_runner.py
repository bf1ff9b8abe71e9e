"""Where CLI commands meet the library: the global options, the store, the coroutine, errors → exit codes.

Kept light on purpose: every command imports this module, and completion and ``--help`` must not pay
for asyncio, rich, the stores or cryptography, so those are imported only when a command runs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from lkpersist.stores.base import SessionStore

T = TypeVar("T")


@dataclass
class CLIState:
    """The global options (``--store``, ``--key-file``), given before or after the sub-command."""

    store_url: str | None = None
    key_file: str | None = None


def cli_state(ctx: typer.Context) -> CLIState:
    """The root context's CLIState, created when a context has none yet (e.g. while completing)."""
    root = ctx.find_root()
    if not isinstance(root.obj, CLIState):
        root.obj = CLIState()
    return root.obj


def store_url_of(ctx: typer.Context) -> str | None:
    return cli_state(ctx).store_url


def fail(message: str, code: int) -> NoReturn:
    """Print one line to stderr and exit with ``code``."""
    typer.echo(f"error: {one_line(message)}", err=True)
    raise typer.Exit(code)


def run_with_store(
    ctx: typer.Context, work: Callable[[SessionStore], Awaitable[T]], **store_options: Any
) -> T:
    """Open the configured store, run ``work`` on it, close it; LkPersistError becomes exit 1/2/3/4.

    ``create=False`` (read-only commands) never creates a missing SQLite file: one line naming it, exit 3.
    """
    import asyncio

    from lkpersist.exceptions import LkPersistError, StoreNotFoundError
    from lkpersist.stores import configured_store_url, open_store

    state = cli_state(ctx)

    async def _run() -> T:
        if state.key_file and "codec" not in store_options:
            from lkpersist.crypto.config import codec_from_env

            store_options["codec"] = codec_from_env(key_file=state.key_file)
        store = open_store(state.store_url, **store_options)
        try:
            return await work(store)
        finally:
            await store.close()

    try:
        return asyncio.run(_run())
    except StoreNotFoundError as exc:
        if configured_store_url(state.store_url) is None:
            fail(f"no store yet: {exc.path} does not exist, and nothing was created (the agent, `lkpersist "
                 "simulate` or another writing command creates it; or give --store / LKPERSIST_STORE)", 3)
        fail(str(exc), exc.exit_code)
    except LkPersistError as exc:
        fail(str(exc), exc.exit_code)


def one_line(text: str) -> str:
    """``text`` as one line, without embedded object reprs (a library's exception text can carry them)."""
    from lkpersist.logsafe import without_object_reprs

    return without_object_reprs(" ".join(text.split())) or "unknown error"


def stderr_console() -> Console:
    """The one rich console on stderr (progress bars, notices), created on first use."""
    global _stderr_console
    if _stderr_console is None:
        from rich.console import Console

        _stderr_console = Console(stderr=True, highlight=False, soft_wrap=True)
    return _stderr_console


_stderr_console: Console | None = None


def __getattr__(name: str) -> Any:
    # ``err_console`` was a module attribute; it is created on first use now, so importing this module
    # stays free of rich.
    if name == "err_console":
        return stderr_console()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
