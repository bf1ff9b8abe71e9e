"""Where CLI commands meet the library: open the store, run the coroutine, map errors to exit codes."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, NoReturn, TypeVar

import typer
from rich.console import Console

from lkpersist.crypto.config import codec_from_env
from lkpersist.exceptions import LkPersistError
from lkpersist.stores import open_store
from lkpersist.stores.base import SessionStore

T = TypeVar("T")

err_console = Console(stderr=True, highlight=False, soft_wrap=True)


@dataclass
class CLIState:
    """What the root callback hands to sub-commands."""

    store_url: str | None = None
    key_file: str | None = None


def store_url_of(ctx: typer.Context) -> str | None:
    state = ctx.find_root().obj
    return state.store_url if isinstance(state, CLIState) else None


def fail(message: str, code: int) -> NoReturn:
    """Print one line to stderr and exit with ``code``."""
    err_console.print(f"error: {message}", markup=False)
    raise typer.Exit(code)


def run_with_store(
    ctx: typer.Context, work: Callable[[SessionStore], Awaitable[T]], **store_options: Any
) -> T:
    """Open the configured store, run ``work`` on it, close it; LkPersistError becomes exit 1/2/3."""

    async def _run() -> T:
        state = ctx.find_root().obj
        if isinstance(state, CLIState) and state.key_file and "codec" not in store_options:
            store_options["codec"] = codec_from_env(key_file=state.key_file)
        store = open_store(store_url_of(ctx), **store_options)
        try:
            return await work(store)
        finally:
            await store.close()

    try:
        return asyncio.run(_run())
    except LkPersistError as exc:
        fail(_one_line(str(exc)), exc.exit_code)


def _one_line(text: str) -> str:
    return " ".join(text.split()) or "unknown error"
