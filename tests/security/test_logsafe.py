"""Log hygiene: keys, secrets and tokens are masked; conversation text never reaches INFO and above."""

from __future__ import annotations

import logging
import uuid

import pytest

from lkpersist.crypto.fernet import FernetCodec
from lkpersist.crypto.keys import generate_key
from lkpersist.logsafe import MASK, PERSONAL, WITHHELD, get_logger, install, redact, register_secret
from lkpersist.tokens import mint_token

KEY = generate_key()
API_SECRET = "livekit-secret-" + uuid.uuid4().hex


def _jwt() -> str:
    return mint_token("room", "alice", api_key="APIkey", api_secret=API_SECRET).jwt


def _secrets() -> dict[str, str]:
    return {
        "fernet key": KEY,
        "fernet token": FernetCodec([KEY]).encode("hello").rsplit(":", 1)[1],
        "jwt": _jwt(),
    }


@pytest.mark.parametrize("name", sorted(_secrets()))
def test_patterns_mask_keys_tokens_and_jwts(name: str) -> None:
    secret = _secrets()[name]
    masked = redact(f"oops: {secret} leaked")
    assert secret not in masked and masked == f"oops: {MASK} leaked"


def test_encrypted_value_keeps_its_key_id_but_not_its_token() -> None:
    stored = FernetCodec([KEY]).encode("hello")
    head = stored.rsplit(":", 1)[0]
    assert redact(f"value {stored}") == f"value {head}:{MASK}"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("redis://app:hunter2pass@10.0.0.1:6379/0", "redis://app:***@10.0.0.1:6379/0"),
        ("rediss://:hunter2pass@cache:6380", "rediss://:***@cache:6380"),
        ("LIVEKIT_API_SECRET=abcdef123", "LIVEKIT_API_SECRET=***"),
        ("api_secret: 'abcdef123'", "api_secret: '***'"),
        ('{"password": "pw-123456"}', '{"password": "***"}'),
        ("Authorization: Bearer abc.def.ghi", "Authorization: ***"),
        ("token=xyz&room=r", "token=***&room=r"),
    ],
)
def test_patterns_mask_credentials_in_urls_and_pairs(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "session not found: 'p_alice'",
        "value was encrypted with key id 1a2b3c4d, which is not among the configured keys",
        "purged 12 sessions older than 5m",
        "redis://127.0.0.1:6379/0",
        "connect took 1.2 ms for identity user-42",
    ],
)
def test_ordinary_messages_are_left_alone(text: str) -> None:
    assert redact(text) == text


def test_registered_secret_is_masked_anywhere() -> None:
    secret = "plain-looking-" + uuid.uuid4().hex[:8]
    assert redact(f"x{secret}y") == f"x{secret}y"
    register_secret(secret)
    assert redact(f"x{secret}y") == f"x{MASK}y"


def test_logger_masks_arguments_and_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    log = get_logger(f"lkpersist.test.{uuid.uuid4().hex}")
    with caplog.at_level(logging.DEBUG):
        log.warning("loaded key %s", KEY)
        try:
            raise RuntimeError(f"cannot use {KEY}")
        except RuntimeError:
            log.exception("failed")
    assert KEY not in caplog.text
    assert "loaded key ***" in caplog.text and "RuntimeError: cannot use ***" in caplog.text


def test_conversation_text_is_withheld_at_info_and_kept_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    log = get_logger(f"lkpersist.test.{uuid.uuid4().hex}")
    with caplog.at_level(logging.DEBUG):
        log.info("user said %s", "my secret diagnosis", extra=PERSONAL)
        log.debug("user said %s", "my debug-only words", extra=PERSONAL)
    assert "my secret diagnosis" not in caplog.text and WITHHELD in caplog.text
    assert "user said my debug-only words" in caplog.text


def test_get_logger_attaches_one_filter() -> None:
    name = f"lkpersist.test.{uuid.uuid4().hex}"
    get_logger(name)
    get_logger(name)
    assert len(logging.getLogger(name).filters) == 1


def test_install_covers_third_party_records(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger(f"thirdparty.{uuid.uuid4().hex}")
    logger.propagate = False
    handler = caplog.handler
    logger.addHandler(handler)
    try:
        install(logger)
        with caplog.at_level(logging.INFO, logger=logger.name):
            logger.info("connecting with %s", _jwt())
    finally:
        logger.removeHandler(handler)
        handler.filters.clear()
    assert "eyJ" not in caplog.text and "connecting with ***" in caplog.text


def test_object_reprs_are_cut_from_error_text() -> None:
    """redis-py's MasterNotFoundError text embeds the reprs of its clients: 1,500 characters of noise."""
    from lkpersist.logsafe import without_object_reprs

    noisy = ("No master found for 'm' : <redis.asyncio.client.Redis(<redis.asyncio.connection.ConnectionPool("
             "<redis.asyncio.connection.Connection(db=0,username=<REDACTED>,retry=<redis.asyncio.retry.Retry "
             "object at 0x7fceb57b9350>)>)>)> - ConnectionError('refused'), <Foo object at 0x1234> done")
    assert without_object_reprs(noisy) == "No master found for 'm' : <…> - ConnectionError('refused'), <…> done"
    kept = "the HELLO AUTH <user> <pass> option; a < b > c"
    assert without_object_reprs(kept) == kept
