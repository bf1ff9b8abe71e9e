"""Encryption at rest: the Fernet codec, key ids, rotation, plaintext handling, failures, key parsing."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest

from lkpersist.crypto import ENV_IDENTITY_KEY
from lkpersist.crypto.codec import PLAIN_GUARD, is_encrypted_form
from lkpersist.crypto.config import codec_from_env
from lkpersist.crypto.fernet import FernetCodec
from lkpersist.crypto.identity import IdentityHasher
from lkpersist.crypto.keys import (
    ENV_KEY_FILE,
    ENV_KEYS,
    ENV_STRICT,
    generate_key,
    key_id,
    keys_from_env,
    parse_keys,
)
from lkpersist.exceptions import DecryptionError, InvalidInputError

OLD = generate_key()
NEW = generate_key()
SECRET_TEXT = "my card number is 4111 1111 1111 1111, and I live at 12 Rue des Lilas"
VALUES = ["", "en", "fr-CA", SECRET_TEXT, '{"role":"user","text":"héllo 👋\\n"}', "x" * 10_000, "enc:", "enc:v"]


def _assert_clean_error(exc: BaseException, *, keys: tuple[str, ...] = (OLD, NEW)) -> None:
    """One line, not empty, and neither a key nor the plaintext in it."""
    message = str(exc)
    assert message and "\n" not in message
    for key in keys:
        assert key not in message
    assert SECRET_TEXT not in message and "4111" not in message


# --- round trip and stored form ----------------------------------------------------------------


@pytest.mark.parametrize("value", VALUES)
def test_round_trip(value: str) -> None:
    codec = FernetCodec([NEW])
    stored = codec.encode(value)
    assert codec.decode(stored) == value


def test_stored_form_records_the_key_id_and_hides_the_plaintext() -> None:
    codec = FernetCodec([NEW, OLD])
    stored = codec.encode(SECRET_TEXT)
    assert re.fullmatch(r"enc:v1:[0-9a-f]{8}:gAAAAA[A-Za-z0-9_=-]+", stored)
    assert stored.split(":")[2] == key_id(NEW) == codec.primary_kid
    assert "4111" not in stored and "Lilas" not in stored and NEW not in stored
    assert codec.encode(SECRET_TEXT) != stored, "each encryption must use a fresh IV"


def test_key_id_is_stable_short_and_not_the_key() -> None:
    assert key_id(NEW) == key_id(NEW)
    assert key_id(NEW) != key_id(OLD)
    assert re.fullmatch(r"[0-9a-f]{8}", key_id(NEW))
    assert key_id(NEW) not in NEW and key_id(NEW) not in base64.urlsafe_b64decode(NEW).hex()


def test_repr_shows_key_ids_only() -> None:
    codec = FernetCodec([NEW, OLD])
    assert NEW not in repr(codec) and OLD not in repr(codec)
    assert key_id(NEW) in repr(codec)


# --- several keys and rotation -----------------------------------------------------------------


def test_old_key_decrypts_new_key_encrypts() -> None:
    written_before = FernetCodec([OLD]).encode(SECRET_TEXT)
    rotated = FernetCodec([NEW, OLD])
    assert rotated.decode(written_before) == SECRET_TEXT
    assert rotated.encode("hi").split(":")[2] == key_id(NEW)
    assert rotated.key_ids == (key_id(NEW), key_id(OLD))


def test_reencrypt_moves_values_to_the_first_key_and_is_idempotent() -> None:
    codec = FernetCodec([NEW, OLD])
    under_old = FernetCodec([OLD]).encode(SECRET_TEXT)
    assert codec.needs_rotation(under_old)
    once = codec.reencrypt(under_old)
    assert codec.classify(once) == key_id(NEW)
    assert not codec.needs_rotation(once)
    assert codec.reencrypt(once) == once, "a second run must not rewrite the value"
    assert FernetCodec([NEW]).decode(once) == SECRET_TEXT, "the old key can be dropped after rotation"


def test_reencrypt_encrypts_plaintext_for_migration() -> None:
    codec = FernetCodec([NEW])
    assert codec.needs_rotation("en")
    migrated = codec.reencrypt("en")
    assert is_encrypted_form(migrated) and codec.decode(migrated) == "en"
    assert codec.reencrypt(migrated) == migrated


def test_classify_for_status() -> None:
    codec = FernetCodec([NEW, OLD])
    assert codec.classify("plain text") == "plaintext"
    assert codec.classify(FernetCodec([OLD]).encode("a")) == key_id(OLD)
    assert codec.classify(codec.encode("a")) == key_id(NEW)
    assert codec.classify(FernetCodec([generate_key()]).encode("a")) == "undecryptable"
    assert codec.classify(codec.encode("a")[:-5]) == "undecryptable"


def test_needs_rotation_refuses_undecryptable_values() -> None:
    codec = FernetCodec([NEW])
    with pytest.raises(DecryptionError):
        codec.needs_rotation(FernetCodec([OLD]).encode("a"))


def test_identical_keys_are_one_key() -> None:
    codec = FernetCodec([NEW, NEW, OLD])
    assert codec.key_ids == (key_id(NEW), key_id(OLD))


# --- plaintext during migration ------------------------------------------------------------------


def test_plaintext_passes_through_unless_strict() -> None:
    assert FernetCodec([NEW]).decode("en") == "en"
    with pytest.raises(DecryptionError, match="not encrypted") as caught:
        FernetCodec([NEW], strict=True).decode(SECRET_TEXT)
    _assert_clean_error(caught.value)


def test_strict_still_reads_encrypted_values() -> None:
    codec = FernetCodec([NEW], strict=True)
    assert codec.decode(codec.encode("en")) == "en"


# --- failures: wrong key, missing key, truncated, tampered --------------------------------------


def _flip_ciphertext_bit(stored: str) -> str:
    head, token = stored.rsplit(":", 1)
    raw = bytearray(base64.urlsafe_b64decode(token))
    raw[40] ^= 0x01  # inside the ciphertext, past version/timestamp/IV
    return f"{head}:{base64.urlsafe_b64encode(bytes(raw)).decode()}"


def _damaged_values() -> dict[str, str]:
    stored = FernetCodec([NEW]).encode(SECRET_TEXT)
    head, token = stored.rsplit(":", 1)
    return {
        "truncated half": stored[: len(stored) // 2],
        "truncated one char": stored[:-1],
        "token removed": f"{head}:",
        "bit flipped": _flip_ciphertext_bit(stored),
        "character changed": f"{head}:{token[:50]}{'A' if token[50] != 'A' else 'B'}{token[51:]}",
        "non-ascii in token": f"{head}:{token[:-3]}é==",
        "header damaged": stored.replace("enc:v1:", "enc:v1:zz", 1),
        "unknown version": stored.replace("enc:v1:", "enc:v9:", 1),
        "kid swapped": stored.replace(key_id(NEW), key_id(OLD), 1),
    }


@pytest.mark.parametrize("case", sorted(_damaged_values()))
def test_damaged_ciphertext_is_an_error_never_empty(case: str) -> None:
    damaged = _damaged_values()[case]
    codec = FernetCodec([NEW, OLD])
    with pytest.raises(DecryptionError) as caught:
        codec.decode(damaged)
    _assert_clean_error(caught.value)
    assert codec.classify(damaged) == "undecryptable"


def test_wrong_key_names_the_key_id() -> None:
    stored = FernetCodec([OLD]).encode(SECRET_TEXT)
    with pytest.raises(DecryptionError, match=f"key id {key_id(OLD)}.*not among the configured keys") as caught:
        FernetCodec([NEW]).decode(stored)
    _assert_clean_error(caught.value)


def test_missing_key_is_an_error_not_ciphertext_as_text() -> None:
    stored = FernetCodec([NEW]).encode(SECRET_TEXT)
    codec = codec_from_env({})
    assert codec is PLAIN_GUARD
    with pytest.raises(DecryptionError, match=f"no encryption key is configured.*{ENV_KEYS}") as caught:
        codec.decode(stored)
    _assert_clean_error(caught.value)
    assert codec.decode("en") == "en" and codec.encode("en") == "en"


# --- key configuration ---------------------------------------------------------------------------


def test_keys_from_env_keep_order_and_drop_duplicates() -> None:
    env = {ENV_KEYS: f" {NEW} ,{OLD},{NEW}, "}
    assert keys_from_env(env) == [NEW, OLD]


def test_parse_keys_accepts_commas_newlines_and_comments() -> None:
    assert parse_keys(f"{NEW}, # the new one\n# retired below\n{OLD}\n", "test") == [NEW, OLD]


def test_key_file_allows_comments_and_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text(f"# current key\n{NEW}\n\n  {OLD}   # retired 2026-01\n")
    assert keys_from_env({ENV_KEY_FILE: str(path)}) == [NEW, OLD]
    assert keys_from_env({}, key_file=path) == [NEW, OLD]


@pytest.mark.parametrize(
    "bad",
    ["not-a-key", NEW[:-2] + "=", NEW[:10] + "!" + NEW[11:], NEW + "AAAA", base64.urlsafe_b64encode(b"k" * 31).decode()],
)
def test_malformed_key_in_env_names_the_variable_not_the_value(bad: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        keys_from_env({ENV_KEYS: f"{NEW},{bad}"})
    message = str(caught.value)
    assert ENV_KEYS in message and "#2" in message
    assert bad not in message and NEW not in message and "\n" not in message


def test_malformed_key_in_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text("oops\n")
    with pytest.raises(InvalidInputError, match="key file") as caught:
        keys_from_env({ENV_KEY_FILE: str(path)})
    assert "oops" not in str(caught.value)


@pytest.mark.parametrize("content", ["", "# only a comment\n\n"])
def test_empty_key_file_is_refused(tmp_path: Path, content: str) -> None:
    path = tmp_path / "keys"
    path.write_text(content)
    with pytest.raises(InvalidInputError, match="contains no keys"):
        keys_from_env({ENV_KEY_FILE: str(path)})


def test_unreadable_key_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="cannot read key file"):
        keys_from_env({ENV_KEY_FILE: str(tmp_path / "absent")})


def test_keys_in_env_and_file_at_once_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text(NEW)
    with pytest.raises(InvalidInputError, match="not both"):
        keys_from_env({ENV_KEYS: OLD, ENV_KEY_FILE: str(path)})


def test_codec_from_env_builds_a_fernet_codec() -> None:
    codec = codec_from_env({ENV_KEYS: f"{NEW},{OLD}"})
    assert isinstance(codec, FernetCodec)
    assert codec.key_ids == (key_id(NEW), key_id(OLD)) and not codec.strict
    strict = codec_from_env({ENV_KEYS: NEW, ENV_STRICT: "1"})
    assert isinstance(strict, FernetCodec) and strict.strict


def test_strict_without_keys_is_a_configuration_error() -> None:
    with pytest.raises(InvalidInputError, match=ENV_STRICT):
        codec_from_env({ENV_STRICT: "true"})


def test_codec_needs_a_key() -> None:
    with pytest.raises(InvalidInputError):
        FernetCodec([])


# --- identity hashing ----------------------------------------------------------------------------


def test_identity_hash_is_keyed_stable_and_hides_the_identity() -> None:
    hasher = IdentityHasher("s" * 40)
    digest = hasher.digest("alice@example.com")
    assert re.fullmatch(r"[0-9a-f]{32}", digest)
    assert digest == IdentityHasher("s" * 40).digest("alice@example.com")
    assert digest != hasher.digest("alice@example.co")
    assert digest != IdentityHasher("t" * 40).digest("alice@example.com")
    assert "alice" not in digest and "s" * 40 not in repr(hasher)


def test_identity_hash_handles_any_unicode() -> None:
    hasher = IdentityHasher.from_encryption_key(NEW)
    assert len({hasher.digest(i) for i in ["{a}", "a b\n", "日本", "*?[]:", "a"]}) == 5


def test_identity_key_comes_from_env_or_is_derived_from_the_first_key() -> None:
    codec = FernetCodec([NEW, OLD])
    derived = codec.identity_hasher({}).digest("alice")
    assert derived == IdentityHasher.from_encryption_key(NEW).digest("alice")
    assert derived != IdentityHasher(NEW).digest("alice"), "the key itself must not be the HMAC key"
    separate = codec.identity_hasher({ENV_IDENTITY_KEY: "i" * 32}).digest("alice")
    assert separate == IdentityHasher("i" * 32).digest("alice") != derived


def test_short_identity_key_is_refused_without_echoing_it() -> None:
    with pytest.raises(InvalidInputError, match=ENV_IDENTITY_KEY) as caught:
        IdentityHasher("short-secret")
    assert "short-secret" not in str(caught.value)
