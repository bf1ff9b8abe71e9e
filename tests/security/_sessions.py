"""The sessions the encryption migration tests write, and the CLI as they call it."""

from __future__ import annotations

from typing import Any

from typer.testing import CliRunner, Result

from lkpersist.cli import app
from lkpersist.crypto.codec import PLAIN
from lkpersist.crypto.keys import generate_key
from lkpersist.model.session import Turn
from lkpersist.stores import open_store

KEY, NEW_KEY = generate_key(), generate_key()
SESSIONS = 7
TURNS = 4


def person(n: int) -> dict[str, Any]:
    """Session ``n``'s personal data: every value is unique so a leak names its source."""
    return {
        "identity": f"caller-{n}",
        "language": f"lang-secret-{n}",
        "metadata": {"email": f"person{n}@private.example", "plan": f"plan-secret-{n}"},
        "context": {"summary": f"discussed diagnosis number {n}"},
        "turns": [f"turn {t} of caller {n}: my card ends in {n}{t}{n}{t}" for t in range(TURNS)],
    }


def plaintexts() -> list[str]:
    texts = []
    for n in range(SESSIONS):
        data = person(n)
        texts += [data["language"], *data["metadata"].values(), data["context"]["summary"], *data["turns"]]
    return texts


async def write_plain(url: str, sessions: range = range(SESSIONS)) -> None:
    async with open_store(url, codec=PLAIN) as store:
        for n in sessions:
            data = person(n)
            await store.connect(data["identity"])
            await store.update(data["identity"], language=data["language"], metadata=data["metadata"],
                               context=data["context"])
            for t, text in enumerate(data["turns"]):
                await store.append_turn(data["identity"], Turn("user", text, 1.0 + t, item_id=f"i{t}"))


def cli(url: str, *args: str, keys: list[str] | None = None) -> Result:
    env = {"LKPERSIST_ENCRYPTION_KEYS": ",".join(keys) if keys else ""}
    return CliRunner().invoke(app, ["--store", url, *args], env=env)


