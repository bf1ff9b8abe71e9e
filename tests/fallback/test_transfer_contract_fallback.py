"""The export/import and census contract once more, on Redis behind a healthy FallbackStore."""

from __future__ import annotations

from tests.fallback.test_contract_fallback import backend, store  # noqa: F401 -- the fixtures
from tests.stores.test_transfer_contract import *  # the contract's tests, run with them
