"""Moving sessions between stores and out of lkpersist: the library half of ``sessions export|import``.

- :mod:`~lkpersist.transfer.format`: the versioned NDJSON format (a header line, then one session with
  its turns per line) and the ``chat-ctx`` document livekit-agents' ``ChatContext.from_dict`` loads.
- :mod:`~lkpersist.transfer.export`: stream a store's records into a file, page by page.
- :mod:`~lkpersist.transfer.import_`: stream a file into a store, in batches, under a conflict rule.

Any two backends work together: both halves only use the store contract (``iter_records``,
``import_records``), and memory stays bounded by one page or batch, whatever the number of sessions.
"""
