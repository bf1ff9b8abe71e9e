"""``lkpersist metrics``: a Prometheus exporter for a session store, as redis_exporter is for Redis.

Independent of any agent: it reads the store's census (counts from indexes, never loading a session,
:meth:`~lkpersist.stores.base.SessionStore.census`) and times a probe read, at most once per interval
whatever the number of scrapes (:mod:`~lkpersist.exporter.snapshot`), and renders the series listed once
in :mod:`~lkpersist.exporter.series`. Serving uses ``prometheus_client`` (the ``metrics`` extra, also
installed by the ``agent`` extra): :mod:`~lkpersist.exporter.server`.
"""
