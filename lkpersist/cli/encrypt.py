"""``lkpersist encrypt``: keys for encryption at rest.

Only ``keygen`` exists so far; ``status``, ``migrate`` and ``rotate`` need per-backend iteration over
stored values and arrive with them.
"""

from __future__ import annotations

import typer

from lkpersist.crypto import generate_key

app = typer.Typer(help="Encryption at rest: keys (status, migrate and rotate come later).", no_args_is_help=True)


@app.command()
def keygen() -> None:
    """Print a new random encryption key (Fernet); put it first in LKPERSIST_ENCRYPTION_KEYS to use it."""
    typer.echo(generate_key())

