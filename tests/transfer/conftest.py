"""The CLI fixtures (a runner, a SQLite store) for the export/import tests."""

from tests.cli.conftest import runner, sqlite_url  # noqa: F401 -- fixtures
