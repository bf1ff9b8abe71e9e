"""``lkpersist encrypt keygen``: prints one fresh key that the codec accepts."""

from __future__ import annotations

from typer.testing import CliRunner

from lkpersist.cli import app
from lkpersist.crypto.fernet import FernetCodec
from lkpersist.crypto.keys import parse_keys


def test_keygen_prints_one_new_usable_key() -> None:
    keys = []
    for _ in range(2):
        result = CliRunner().invoke(app, ["encrypt", "keygen"])
        assert result.exit_code == 0, result.output
        assert result.stdout.count("\n") == 1 and result.stderr == ""
        keys.append(result.stdout.strip())
    assert keys[0] != keys[1]
    assert parse_keys(",".join(keys), "keygen output") == keys
    codec = FernetCodec(keys)
    assert codec.decode(codec.encode("hello")) == "hello"
