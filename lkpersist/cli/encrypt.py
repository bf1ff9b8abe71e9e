"""``lkpersist encrypt``: keys, status, migration and rotation of encryption at rest.

Keys come from ``LKPERSIST_ENCRYPTION_KEYS`` (comma-separated, the encrypting key first) or a key file
(``--key-file`` / ``LKPERSIST_ENCRYPTION_KEY_FILE``). The work is in :mod:`lkpersist.crypto.migrate`; these
commands parse, call it and render. Exit codes: 0 done; 1 some sessions kept changing and need another
run; 2 usage (no key); 3 the store is unusable, or a value cannot be decrypted (the line names the session).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from lkpersist.cli._output.formats import SummaryFormat
from lkpersist.cli._runner import fail, run_with_store

if TYPE_CHECKING:
    from lkpersist.crypto.migrate import EncryptionStatus, MigrationResult
    from lkpersist.stores.base import SessionStore

app = typer.Typer(
    help="Encryption at rest: make keys, see what is encrypted, encrypt a store, rotate keys.",
    no_args_is_help=True,
)

OutputOption = Annotated[SummaryFormat, typer.Option("--output", "-o", help="text or json.")]
DryRunOption = Annotated[bool, typer.Option("--dry-run", help="Count what would be rewritten; write nothing.")]
BatchOption = Annotated[
    int | None,
    typer.Option("--batch", min=1, help="Sessions read and rewritten per step (bounds memory; default 100)."),
]


@app.command()
def keygen() -> None:
    """Print a new random encryption key (Fernet); put it first in LKPERSIST_ENCRYPTION_KEYS to use it."""
    from lkpersist.crypto.keys import generate_key

    typer.echo(generate_key())


@app.command()
def status(ctx: typer.Context, output: OutputOption = SummaryFormat.text) -> None:
    """Count stored personal values: plaintext, encrypted per key id, undecryptable (then exit 3)."""
    from lkpersist.cli._output.console import echo_json
    from lkpersist.cli._output.encryption import encryption_progress, print_status
    from lkpersist.cli._output.text import quoted
    from lkpersist.crypto.migrate import encryption_status

    async def work(store: SessionStore) -> tuple[EncryptionStatus, list[str]]:
        with encryption_progress(await store.count("all"), "checking") as (advance,):
            found = await encryption_status(store, progress=advance)
        return found, list(getattr(store.codec, "key_ids", ()))

    found, key_ids = run_with_store(ctx, work, create=False)
    if output == SummaryFormat.json:
        echo_json({**found.to_dict(), "configured_key_ids": key_ids})
    else:
        print_status(found, key_ids)
    if found.undecryptable:
        names = ", ".join(quoted(name) for name in found.undecryptable_sessions)
        fail(f"{found.undecryptable} values cannot be decrypted with the configured keys (sessions: {names})", 3)


@app.command("migrate")
def migrate_command(
    ctx: typer.Context,
    dry_run: DryRunOption = False,
    batch: BatchOption = None,
    output: OutputOption = SummaryFormat.text,
) -> None:
    """Encrypt every plaintext session value and turn in place, under the first key.

    Safe while agents run; idempotent, so an interrupted run is finished by running it again. Refuses to start (exit 3, naming the session) when any stored value cannot be decrypted with the keys.
    """
    _run_migration(ctx, rotate=False, dry_run=dry_run, batch=batch, output=output)


@app.command()
def rotate(
    ctx: typer.Context,
    dry_run: DryRunOption = False,
    batch: BatchOption = None,
    output: OutputOption = SummaryFormat.text,
) -> None:
    """Re-encrypt every value under the first key (plaintext too), so the older keys can be dropped."""
    _run_migration(ctx, rotate=True, dry_run=dry_run, batch=batch, output=output)


def _run_migration(
    ctx: typer.Context, *, rotate: bool, dry_run: bool, batch: int | None, output: SummaryFormat
) -> None:
    from lkpersist.cli._output.console import echo_json
    from lkpersist.cli._output.encryption import encryption_progress, migration_summary
    from lkpersist.crypto.migrate import DEFAULT_PAGE_SIZE, migrate

    async def work(store: SessionStore) -> MigrationResult:
        labels = ("verifying", "rotating" if rotate else "encrypting")
        with encryption_progress(await store.count("all"), *labels) as (verified, advance):
            return await migrate(
                store, rotate=rotate, dry_run=dry_run, page_size=batch or DEFAULT_PAGE_SIZE, progress=advance,
                verified=verified,
            )

    from lkpersist.cli._audit import audited

    action = "encrypt rotate" if rotate else "encrypt migrate"
    with audited(ctx, action, selection={"dry_run": dry_run}) as audit:
        result = run_with_store(ctx, work, create=not dry_run)
        audit.counts = {"sessions": result.sessions, "rewritten": result.rewritten}
    if output == SummaryFormat.json:
        echo_json(result.to_dict())
    else:
        typer.echo(migration_summary(result))
    if result.unfinished:
        fail(f"{len(result.unfinished)} sessions changed during every attempt; run the command again", 1)
