"""The ``lkpersist`` command: a thin Typer layer over the library.

Each noun is a sub-app in its own module (``sessions``, ``simulate``, ...), composed here. Commands parse,
call one library function and render; errors from the library are turned into one line on stderr and
the documented exit code by :func:`lkpersist.cli._runner.run_with_store`.

Exit codes: 0 ok; 1 the thing asked for did not hold; 2 usage error; 3 store unreachable or unusable.
"""

from __future__ import annotations

from typing import Annotated

import typer

from lkpersist import __version__
from lkpersist.cli import encrypt, run, sessions, simulate, token
from lkpersist.cli._runner import CLIState
from lkpersist.stores import ENV_STORE

app = typer.Typer(
    name="lkpersist",
    help="Session persistence for LiveKit voice agents: inspect, purge and simulate sessions.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(sessions.app, name="sessions")
app.add_typer(encrypt.app, name="encrypt")
app.command("token")(token.token)
app.add_typer(simulate.app, name="simulate")
app.command("run", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(run.run)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"lkpersist {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    store: Annotated[
        str | None,
        typer.Option(
            "--store",
            envvar=ENV_STORE,
            help="Store URL: sqlite:///path.db, redis://host:port/db, rediss://, redis+sentinel://, "
            "redis+cluster://, memory://. Default: a SQLite file in the user's state directory.",
            show_envvar=True,
        ),
    ] = None,
    key_file: Annotated[
        str | None,
        typer.Option(
            "--key-file",
            envvar="LKPERSIST_ENCRYPTION_KEY_FILE",
            help="Encryption keys, one per line, the encrypting key first (instead of LKPERSIST_ENCRYPTION_KEYS).",
            show_envvar=True,
        ),
    ] = None,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    """Session persistence for LiveKit voice agents."""
    ctx.obj = CLIState(store_url=store, key_file=key_file)


def main() -> None:
    """Console-script entry point."""
    app()
