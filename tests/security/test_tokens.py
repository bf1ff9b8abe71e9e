"""``lkpersist token`` and unguessable identities, checked with livekit-api's own verifier."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import jwt as pyjwt
import pytest
from livekit.api import TokenVerifier
from livekit.api.access_token import Claims
from typer.testing import CliRunner, Result

from lkpersist.cli import app
from lkpersist.exceptions import InvalidInputError
from lkpersist.tokens import ENV_API_KEY, ENV_API_SECRET, IDENTITY_PREFIX, mint_token, new_identity

API_KEY = "APItestkey"
API_SECRET = "test-secret-that-is-long-enough-for-hs256-0123456789"
CREDENTIALS = {ENV_API_KEY: API_KEY, ENV_API_SECRET: API_SECRET}


def _verify(token: str, secret: str = API_SECRET) -> Claims:
    return TokenVerifier(API_KEY, secret).verify(token)


# --- library -------------------------------------------------------------------------------------


def test_token_verifies_and_carries_identity_and_room_grant() -> None:
    minted = mint_token("support-room", "p_alice", ttl=120, name="Alice", environ=CREDENTIALS)
    claims = _verify(minted.jwt)
    assert claims.identity == "p_alice" and claims.name == "Alice"
    assert claims.video is not None and claims.video.room_join is True and claims.video.room == "support-room"
    exp = pyjwt.decode(minted.jwt, options={"verify_signature": False})["exp"]
    assert abs(exp - (time.time() + 120)) < 5 and abs(minted.expires_at - exp) <= 1


@pytest.mark.parametrize("options", [
    {},
    {"name": "Alice", "metadata": '{"plan":"pro"}', "attributes": {"language": "es-MX"}},
    {"agent_name": "support-agent", "publish_sources": ["microphone"]},
])
def test_the_claims_are_the_ones_livekit_api_writes(options: dict[str, Any]) -> None:
    """mint_token builds the claims itself (for speed); they must be exactly what AccessToken signs."""
    from datetime import timedelta

    from livekit import api

    minted = mint_token("support-room", "p_alice", ttl=600, environ=CREDENTIALS, **options)
    grants = api.VideoGrants(room_join=True, room="support-room")
    if "publish_sources" in options:
        grants.can_publish_sources = options["publish_sources"]
    token = api.AccessToken(API_KEY, API_SECRET).with_identity("p_alice").with_grants(grants)
    token = token.with_ttl(timedelta(seconds=600))
    if "name" in options:
        token = token.with_name(options["name"]).with_metadata(options["metadata"])
        token = token.with_attributes(options["attributes"])
    if "agent_name" in options:
        dispatch = api.RoomAgentDispatch(agent_name=options["agent_name"])
        token = token.with_room_config(api.RoomConfiguration(agents=[dispatch]))
    ours, theirs = (pyjwt.decode(t, options={"verify_signature": False}) for t in (minted.jwt, token.to_jwt()))
    for claims in (ours, theirs):
        assert claims.pop("exp") - claims.pop("nbf") == 600
    assert ours == theirs
    assert pyjwt.get_unverified_header(minted.jwt) == pyjwt.get_unverified_header(token.to_jwt())


def test_token_signed_with_another_secret_does_not_verify() -> None:
    minted = mint_token("r", "p_alice", environ=CREDENTIALS)
    with pytest.raises(pyjwt.InvalidSignatureError):
        _verify(minted.jwt, secret="another-secret-of-sufficient-length-0123456789")


@pytest.mark.parametrize("missing", [ENV_API_KEY, ENV_API_SECRET])
def test_missing_credentials_name_the_variable(missing: str) -> None:
    env = {k: v for k, v in CREDENTIALS.items() if k != missing}
    with pytest.raises(InvalidInputError, match=missing) as caught:
        mint_token("r", "p_alice", environ=env)
    assert API_SECRET not in str(caught.value)


@pytest.mark.parametrize(("room", "identity", "ttl"), [("", "p_a", 60), ("r", "", 60), ("r", "p_a", 0)])
def test_bad_arguments_are_refused(room: str, identity: str, ttl: float) -> None:
    with pytest.raises(InvalidInputError):
        mint_token(room, identity, ttl=ttl, environ=CREDENTIALS)


def test_repr_of_a_minted_token_hides_the_jwt() -> None:
    minted = mint_token("r", "p_alice", environ=CREDENTIALS)
    assert minted.jwt not in repr(minted)


# --- identities ----------------------------------------------------------------------------------

_URLSAFE = re.compile(r"[A-Za-z0-9_-]+")


def test_new_identity_carries_at_least_128_random_bits() -> None:
    identity = new_identity()
    assert identity.startswith(IDENTITY_PREFIX)
    random_part = identity[len(IDENTITY_PREFIX):]
    assert _URLSAFE.fullmatch(random_part), "base64url alphabet: 6 bits per character"
    assert len(random_part) * 6 >= 128
    assert len(random_part) == 32  # secrets.token_urlsafe(24): 192 bits


def test_new_identities_are_unique_and_varied() -> None:
    identities = [new_identity() for _ in range(20_000)]
    assert len(set(identities)) == len(identities)
    # every position of the random part takes many values: no fixed or timestamp-like segment
    random_parts = [i[len(IDENTITY_PREFIX):] for i in identities]
    for position in range(32):
        assert len({part[position] for part in random_parts}) > 50


# --- the command ---------------------------------------------------------------------------------


def _run(*args: str, env: dict[str, str | None] | None = None) -> Result:
    return CliRunner().invoke(app, ["token", *args], env={**CREDENTIALS, **(env or {})})


def test_command_prints_the_jwt_alone() -> None:
    result = _run("--room", "lobby", "--identity", "p_bob", "--ttl", "5m")
    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    assert result.stdout == token + "\n" and result.stderr == ""
    claims = _verify(token)
    assert claims.identity == "p_bob" and claims.video is not None and claims.video.room == "lobby"


def test_command_new_identity_goes_to_stderr_and_into_the_token() -> None:
    result = _run("--room", "lobby", "--new-identity")
    assert result.exit_code == 0, result.output
    identity = result.stderr.strip().removeprefix("identity: ")
    assert identity.startswith(IDENTITY_PREFIX) and len(identity) == 34
    assert _verify(result.stdout.strip()).identity == identity


def test_command_agent_name_dispatches_the_agent() -> None:
    result = _run("--room", "r", "--identity", "p_alice", "--agent-name", "support")
    assert result.exit_code == 0, result.output
    claims = _verify(result.stdout.strip())
    assert claims.room_config is not None and [a.agent_name for a in claims.room_config.agents] == ["support"]


def test_command_json_output() -> None:
    result = _run("--room", "lobby", "--new-identity", "--name", "Guest", "-o", "json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert set(document) == {"token", "identity", "room", "expires_at"}
    claims = _verify(document["token"])
    assert claims.identity == document["identity"] and claims.name == "Guest" and document["room"] == "lobby"


@pytest.mark.parametrize(
    "args",
    [
        ["--room", "r"],
        ["--room", "r", "--identity", "p_a", "--new-identity"],
        ["--room", "r", "--identity", "p_a", "--ttl", "soon"],
        ["--room", "r", "--identity", "p_a", "-o", "yaml"],
        ["--identity", "p_a"],
    ],
)
def test_command_usage_errors_exit_2(args: list[str]) -> None:
    result = _run(*args)
    assert result.exit_code == 2, result.output
    assert result.stdout == ""


def test_command_missing_secret_exits_2_naming_it() -> None:
    result = _run("--room", "r", "--identity", "p_a", env={ENV_API_SECRET: ""})
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert result.stderr.strip() == (
        f"error: {ENV_API_SECRET} is not set: export the API key and secret of your LiveKit project"
    )


def test_command_substitution_in_a_real_shell() -> None:
    """``TOKEN=$(lkpersist token ...)`` gets exactly the JWT."""
    lkpersist = Path(sys.executable).with_name("lkpersist")
    script = f'TOKEN=$("{lkpersist}" token --room lobby --identity p_sh) && printf %s "$TOKEN"'
    done = subprocess.run(
        ["sh", "-c", script], env={**os.environ, **CREDENTIALS}, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert _verify(done.stdout).identity == "p_sh"


def test_token_and_crypto_modules_do_not_import_livekit() -> None:
    code = (
        "import sys, lkpersist.tokens, lkpersist.crypto, lkpersist.logsafe, lkpersist.cli.token,"
        " lkpersist.cli.encrypt; print(sorted(m for m in sys.modules if m.startswith('livekit')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("identity", "why"),
    [
        ("", "identity is empty"),  # --identity "$KNOWN_ID" with KNOWN_ID unset
        ("   ", "identity is empty"),
        ("p_a\nb", "identity contains control characters"),
        ("p_\x1b[31m", "identity contains control characters"),
        ("p" * 257, "identity is 257 bytes; LiveKit accepts at most 256"),
        ("é" * 129, "identity is 258 bytes; LiveKit accepts at most 256"),
    ],
    ids=["empty", "blank", "newline", "escape", "too-long", "too-long-utf8"],
)
def test_command_refuses_an_identity_livekit_would_not_take(identity: str, why: str) -> None:
    """Never a token for a brand-new random identity in place of the one asked for: one line, exit 2."""
    result = _run("--room", "support", "--identity", identity)
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert result.stderr == f"error: {why}\n"


def test_command_accepts_an_identity_at_livekit_s_limit() -> None:
    result = _run("--room", "support", "--identity", "p" * 256)
    assert result.exit_code == 0, result.output
    assert _verify(result.stdout.strip()).identity == "p" * 256


@pytest.mark.parametrize("room", ["", "  ", "r" * 257, "a\tb"])
def test_command_refuses_a_room_livekit_would_not_take(room: str) -> None:
    result = _run("--room", room, "--identity", "p_a")
    assert result.exit_code == 2, result.output
    assert result.stdout == "" and result.stderr.startswith("error: room name ")


def test_the_readme_example_with_an_unset_variable_fails_in_a_real_shell() -> None:
    """The README's ``lkpersist token --room support --identity "$KNOWN_ID"`` with KNOWN_ID unset."""
    lkpersist = Path(sys.executable).with_name("lkpersist")
    env = {k: v for k, v in {**os.environ, **CREDENTIALS}.items() if k != "KNOWN_ID"}
    done = subprocess.run(["sh", "-c", f'"{lkpersist}" token --room support --identity "$KNOWN_ID"'], env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2 and done.stdout == "", done
    assert done.stderr == "error: identity is empty\n"


def test_control_characters_are_refused_alike_in_ascii_and_beyond() -> None:
    """check_livekit_name has an ASCII fast path; it must refuse exactly what the general rule refuses."""
    import unicodedata

    from lkpersist.tokens import check_livekit_name

    for char in [chr(code) for code in range(128)] + ["\u200b", "\u2028", "\u2029", "\x85", "é", "中"]:
        refused = unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp")
        for value in (f"room{char}", f"rööm{char}"):
            if refused:
                with pytest.raises(InvalidInputError, match="control characters"):
                    check_livekit_name(value, "room")
            else:
                assert check_livekit_name(value, "room") == value
