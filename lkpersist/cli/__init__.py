"""The ``lkpersist`` command: a thin Typer layer over the library.

Each noun is a sub-app in its own module (``sessions``, ``simulate``, ...). Commands parse, call one
library function and render; errors from the library are turned into one line on stderr and the
documented exit code by :func:`lkpersist.cli._runner.run_with_store`.

Adding a command (the pattern every sub-command follows, so completion and ``--help`` stay instant):

1. Write ``lkpersist/cli/<noun>.py`` defining ``app = typer.Typer(...)``: sub-commands with
   ``@app.command("verb")``, or a single command (``@app.command("noun")`` and no callback). Import at
   module level only what its option types need (typer, enums); import the library, rich and asyncio
   inside the command functions.
2. Register it in :data:`COMMANDS` below: name → ``LazyCommand(module, one-line summary)``. The module is
   imported only when the command line names it (:class:`lkpersist.cli._lazy.LazyGroup`); listings show
   the summary, which must be the first sentence of the module's own help (a test checks).
3. Do not declare ``--store`` or ``--key-file``: the root declares them once and every registered
   command gets them (before or after the sub-command); read them with ``run_with_store`` or
   :func:`lkpersist.cli._runner.cli_state`.
4. Regenerate the completions (``python -m lkpersist.cli._completions``) and document the command.

Exit codes: 0 ok; 1 the thing asked for did not hold; 2 usage error; 3 store unreachable or unusable;
4 a missing optional dependency (the ``agent`` extra).
"""

from __future__ import annotations

from typing import Annotated

import typer

from lkpersist.cli._lazy import LazyCommand, LazyGroup
from lkpersist.cli._runner import CLIState
from lkpersist.crypto import ENV_KEY_FILE
from lkpersist.stores import ENV_STORE

COMMANDS = {
    "sessions": LazyCommand("lkpersist.cli.sessions", "Inspect and clean up stored sessions."),
    "encrypt": LazyCommand("lkpersist.cli.encrypt", "Encryption at rest: make keys, see what is encrypted, "
                           "encrypt a store, rotate keys."),
    "token": LazyCommand("lkpersist.cli.token", "Mint a LiveKit access token; prints the JWT alone."),
    "simulate": LazyCommand("lkpersist.cli.simulate", "Simulate participants against the real agent-side "
                            "controller."),
    "run": LazyCommand("lkpersist.cli.run", "Run the bundled persistence-enabled agent (livekit modes: dev, "
                       "start, console, connect, download-files)."),
    "serve": LazyCommand("lkpersist.cli.serve", "Serve the token endpoint and the page: POST /api/token, GET "
                         "/api/history, GET /."),
    "doctor": LazyCommand("lkpersist.cli.doctor", "Check that lkpersist can work here; each line ✓, or ✗ with the fix."),
    "stats": LazyCommand("lkpersist.cli.stats", "Show daily analytics: active identities, connections, returns, "
                         "new sessions and turns per day."),
    "metrics": LazyCommand("lkpersist.cli.metrics", "Serve Prometheus metrics about the store: sessions by status, "
                           "turns stored, purge backlog, store up and ping."),
    "audit": LazyCommand("lkpersist.cli.audit", "Show who accessed which sessions' personal data, when, and with what "
                         "outcome."),
}
"""Every sub-command, in the order ``lkpersist --help`` lists them (see "Adding a command" above)."""


class RootGroup(LazyGroup):
    lazy_commands = COMMANDS


app = typer.Typer(
    name="lkpersist",
    cls=RootGroup,
    help="Session persistence for LiveKit voice agents: inspect, purge and simulate sessions.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    # Plain help: rich help formatting imports ~100 ms of modules on every --help and every Tab press.
    rich_markup_mode=None,
    suggest_commands=False,  # LazyGroup suggests among every registered command, loaded or not
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _print_version(value: bool) -> None:
    if value:
        from lkpersist import __version__

        typer.echo(f"lkpersist {__version__}")
        raise typer.Exit()


StoreOption = Annotated[
    str | None,
    typer.Option(
        "--store",
        envvar=ENV_STORE,
        metavar="URL",
        help="Store URL: sqlite:///path.db, redis://host:port/db, rediss://, redis+sentinel://, "
        "redis+cluster://, memory://. Default: a SQLite file in the user's state directory. "
        "Before or after the sub-command.",
        show_envvar=True,
    ),
]
KeyFileOption = Annotated[
    str | None,
    typer.Option(
        "--key-file",
        envvar=ENV_KEY_FILE,
        metavar="PATH",
        help="Encryption keys, one per line, the encrypting key first (instead of LKPERSIST_ENCRYPTION_KEYS). "
        "Before or after the sub-command.",
        show_envvar=True,
    ),
]


@app.callback()
def root(
    ctx: typer.Context,
    store: StoreOption = None,
    key_file: KeyFileOption = None,
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


__all__ = ["COMMANDS", "app", "main"]
