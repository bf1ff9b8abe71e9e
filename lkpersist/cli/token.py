"""``lkpersist token``: mint a LiveKit access token for a participant.

stdout carries the JWT alone, so ``TOKEN=$(lkpersist token --room r --identity id)`` works. With
``--new-identity`` the generated identity goes to stderr as ``identity: <id>`` (or use ``-o json`` to get
token, identity, room and expiry as one JSON document on stdout).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer

from lkpersist.cli._options import duration_seconds
from lkpersist.cli._runner import fail

if TYPE_CHECKING:
    from lkpersist.tokens import MintedToken

_OUTPUTS = ("text", "json")

app = typer.Typer()


@app.command("token")
def token(
    room: Annotated[str, typer.Option("--room", help="Room the participant may join.")],
    identity: Annotated[
        str | None, typer.Option("--identity", help="Identity the token is for (one your server issued).")
    ] = None,
    fresh: Annotated[
        bool,
        typer.Option("--new-identity", help="Generate an unguessable identity (printed to stderr, or in -o json)."),
    ] = False,
    ttl: Annotated[str, typer.Option("--ttl", help="Token lifetime: 300, 90s, 5m, 2h, 1d.")] = "1h",
    name: Annotated[str | None, typer.Option("--name", help="Display name shown to other participants.")] = None,
    agent_name: Annotated[
        str | None, typer.Option("--agent-name", help="Dispatch this agent when the room is created.")
    ] = None,
    output: Annotated[str, typer.Option("-o", "--output", help="text (the JWT alone) or json.")] = "text",
) -> None:
    """Mint a LiveKit access token; prints the JWT alone. Reads LIVEKIT_API_KEY and LIVEKIT_API_SECRET.

    An empty --identity (an unset variable) is an error, never a new identity: use --new-identity for one.
    Exit codes: 0 ok, 2 usage or a bad identity/room. No livekit package is needed.
    """
    from lkpersist.exceptions import LkPersistError
    from lkpersist.tokens import mint_token, new_identity

    if (identity is None) == (not fresh):
        fail("give exactly one of --identity ID or --new-identity", 2)
    if output not in _OUTPUTS:
        fail(f"--output must be one of {', '.join(_OUTPUTS)}, not {output!r}", 2)
    try:
        chosen = new_identity() if fresh else identity
        assert chosen is not None  # exactly one of the two was given
        minted = mint_token(room, chosen, ttl=duration_seconds(ttl), name=name, agent_name=agent_name)
    except LkPersistError as exc:
        fail(str(exc), exc.exit_code)
    _render(minted, output, show_identity=fresh)


def _render(minted: MintedToken, output: str, *, show_identity: bool) -> None:
    if output == "json":
        typer.echo(json.dumps(minted.to_dict(), ensure_ascii=False))
        return
    if show_identity:
        typer.echo(f"identity: {minted.identity}", err=True)
    typer.echo(minted.jwt)
