"""The CLI fixtures, for the doctor tests."""

from tests.cli.conftest import runner, sqlite_url  # noqa: F401 -- fixtures
