"""Raw value access for ``memory://``: it keeps Python objects, never an encoded form, so there is
nothing at rest to count, encrypt or rotate (see :mod:`lkpersist.stores.raw`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from lkpersist.stores.raw import Batch, StoredRecord


class NothingStored:
    """:class:`~lkpersist.stores.raw.StoredValues` of a store that holds nothing encoded."""

    async def pages(self, page_size: int) -> AsyncIterator[list[StoredRecord]]:
        for _ in ():
            yield []

    async def reread(self, identities: Sequence[str]) -> list[StoredRecord]:
        return []

    async def rewrite(self, batch: Batch) -> list[int]:
        return [0 for _ in batch]


__all__ = ["NothingStored"]
