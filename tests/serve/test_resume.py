"""Resume credentials: only ours verify, nothing says why one does not, rotation and expiry work."""

from __future__ import annotations

import base64
import hashlib
import hmac
import struct

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from lkpersist.clock import VirtualClock
from lkpersist.exceptions import InvalidInputError
from lkpersist.serve.resume import (
    ENV_RESUME_SECRET,
    ENV_RESUME_SECRET_OLD,
    MAX_CREDENTIAL_CHARS,
    ResumeSigner,
    resume_secrets,
)
from lkpersist.tokens import new_identity
from tests.conftest import T0

SECRET = "a-resume-secret-of-at-least-32-characters"
OTHER = "another-server-secret-of-32-characters-or-more"
DAY = 86400.0


def signer(*secrets: str, ttl: float = 30 * DAY, clock: VirtualClock | None = None) -> ResumeSigner:
    return ResumeSigner(secrets or (SECRET,), ttl=ttl, clock=clock or VirtualClock(T0))


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_a_credential_names_its_identity() -> None:
    identity = new_identity()
    assert signer().verify(signer().issue(identity)) == identity


def test_the_format_is_the_documented_one() -> None:
    """Anyone can check a credential from the docstring alone: HKDF key, HMAC-SHA256 over the payload."""
    clock = VirtualClock(T0)
    credential = signer(clock=clock).issue("p_alice")
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"lkpersist resume credential v1").derive(
        SECRET.encode())
    payload = struct.pack(">BQ", 1, int(T0 + 30 * DAY)) + b"p_alice"
    assert credential == f"{b64(payload)}.{b64(hmac.new(key, payload, hashlib.sha256).digest())}"


def test_every_changed_character_is_refused() -> None:
    credential = signer().issue(new_identity())
    for position, char in enumerate(credential):
        if char == ".":
            continue
        for replacement in {"A", "B", "-"} - {char}:
            tampered = credential[:position] + replacement + credential[position + 1:]
            assert signer().verify(tampered) is None, (position, replacement)


def test_a_payload_re_signed_for_someone_else_is_refused() -> None:
    """Swapping in another identity (keeping the signature) never yields that identity."""
    mine = signer().issue("p_mallory")
    mac = mine.split(".")[1]
    forged_payload = struct.pack(">BQ", 1, int(T0 + DAY)) + b"p_alice"
    assert signer().verify(f"{b64(forged_payload)}.{mac}") is None


def test_another_servers_credential_is_refused() -> None:
    assert signer(SECRET).verify(signer(OTHER).issue("p_alice")) is None


def test_expiry() -> None:
    clock = VirtualClock(T0)
    credential = signer(ttl=DAY, clock=clock).issue("p_alice")
    clock.advance(DAY - 1)
    assert signer(ttl=DAY, clock=clock).verify(credential) == "p_alice"
    clock.advance(1)
    assert signer(ttl=DAY, clock=clock).verify(credential) is None


def test_rotation_accepts_the_old_secret_and_signs_with_the_new_one() -> None:
    old_credential = signer(OTHER).issue("p_alice")
    rotated = signer(SECRET, OTHER)
    assert rotated.verify(old_credential) == "p_alice"
    fresh = rotated.issue("p_alice")
    assert signer(SECRET).verify(fresh) == "p_alice"
    assert signer(OTHER).verify(fresh) is None


@pytest.mark.parametrize("garbage", [
    None, 42, b"bytes", "", ".", "..", "a.b.c", "abc", "AQ.", ".AQ", "AQ==.AQ==", "A+/B.CD",
    "x" * (MAX_CREDENTIAL_CHARS + 1), "ü.ü", "AQ\n.AQ", "*.*",
])
def test_garbage_is_refused_without_an_error(garbage: object) -> None:
    assert signer().verify(garbage) is None


def test_a_signed_payload_without_identity_or_with_another_version_is_refused() -> None:
    key_holder = signer()
    for payload in (struct.pack(">BQ", 1, int(T0 + DAY)), struct.pack(">BQ", 2, int(T0 + DAY)) + b"p_alice",
                    struct.pack(">BQ", 1, int(T0 + DAY)) + b"\xff\xfe"):
        mac = hmac.new(key_holder._keys[0], payload, hashlib.sha256).digest()
        assert key_holder.verify(f"{b64(payload)}.{b64(mac)}") is None


def test_identities_livekit_would_refuse_get_no_credential() -> None:
    with pytest.raises(InvalidInputError):
        signer().issue("x" * 257)


def test_secrets_from_the_environment() -> None:
    assert resume_secrets({}, "livekit-api-secret") == ("livekit-api-secret",)
    assert resume_secrets({ENV_RESUME_SECRET: SECRET}, "ignored") == (SECRET,)
    env = {ENV_RESUME_SECRET: SECRET, ENV_RESUME_SECRET_OLD: f" {OTHER} , older-one ,"}
    assert resume_secrets(env, "ignored") == (SECRET, OTHER, "older-one")


def test_a_short_resume_secret_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="shorter than 32 characters"):
        resume_secrets({ENV_RESUME_SECRET: "short"}, "x")


def test_a_signer_needs_a_secret_and_a_lifetime() -> None:
    with pytest.raises(InvalidInputError):
        ResumeSigner([], ttl=DAY)
    with pytest.raises(InvalidInputError):
        ResumeSigner([SECRET], ttl=0)
