"""A machine without Chromium fails the browser tests, unless a developer skips them explicitly outside CI."""

from __future__ import annotations

import pytest

from tests.serve._browser import CHROMIUM_ENV, REQUIRE_ENV, SKIP_ENV, chromium_executable


@pytest.fixture
def no_chromium(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.setenv(CHROMIUM_ENV, "/nonexistent/chromium")
    monkeypatch.delenv(SKIP_ENV, raising=False)
    monkeypatch.delenv(REQUIRE_ENV, raising=False)
    return monkeypatch


def test_a_missing_browser_fails_with_an_install_hint(no_chromium: pytest.MonkeyPatch) -> None:
    with pytest.raises(pytest.fail.Exception, match="apt-get install chromium"):
        chromium_executable()


def test_a_developer_may_skip_explicitly(no_chromium: pytest.MonkeyPatch) -> None:
    no_chromium.setenv(SKIP_ENV, "1")
    with pytest.raises(pytest.skip.Exception, match=f"{SKIP_ENV}=1"):
        chromium_executable()


def test_ci_forbids_the_skip(no_chromium: pytest.MonkeyPatch) -> None:
    no_chromium.setenv(SKIP_ENV, "1")
    no_chromium.setenv(REQUIRE_ENV, "1")
    with pytest.raises(pytest.fail.Exception):
        chromium_executable()
