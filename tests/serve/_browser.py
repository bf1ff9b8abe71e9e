"""Headless Chromium for the page tests: Debian's ``chromium`` driven by the ``playwright`` package.

Playwright's own browser download is never used (``executable_path`` points at the system browser), so
nothing is fetched from the network. A missing browser is a test failure with an install hint, as a
missing redis-server is. A developer without Chromium may skip these tests explicitly with
``LKPERSIST_SKIP_BROWSER_TESTS=1``; CI sets ``LKPERSIST_REQUIRE_BROWSER_TESTS=1``, which makes them
fail whatever else is set.
"""

from __future__ import annotations

import os
import shutil
from typing import Any, NoReturn

import pytest

CHROMIUM_ENV = "LKPERSIST_TEST_CHROMIUM"
SKIP_ENV = "LKPERSIST_SKIP_BROWSER_TESTS"
REQUIRE_ENV = "LKPERSIST_REQUIRE_BROWSER_TESTS"
CHROMIUM_ARGS = [
    "--no-sandbox",  # Playwright passes it anyway; the container runs as root, where the sandbox cannot start
    "--disable-gpu",
    "--disable-quic",
    "--use-fake-ui-for-media-stream",  # grant the microphone without a prompt ...
    "--use-fake-device-for-media-stream",  # ... and give it a fake device
]


def missing(what: str) -> NoReturn:
    if os.environ.get(SKIP_ENV) == "1" and os.environ.get(REQUIRE_ENV) != "1":
        pytest.skip(f"{what}; browser tests skipped because {SKIP_ENV}=1")
    pytest.fail(
        f"{what}: install it (Debian/Ubuntu: apt-get install chromium; playwright comes with "
        f"pip install -e '.[test]') or set {CHROMIUM_ENV}=/path/to/chromium. To skip the browser tests on "
        f"this machine only, set {SKIP_ENV}=1.",
        pytrace=False,
    )


def chromium_executable() -> str:
    path = os.environ.get(CHROMIUM_ENV) or shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None or not os.access(path, os.X_OK):
        missing("chromium not found")
    return path


def sync_playwright() -> Any:
    try:
        from playwright.sync_api import sync_playwright as start
    except ImportError:
        missing("the playwright package is not installed")
    return start()
