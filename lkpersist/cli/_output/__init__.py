"""Rendering for the CLI, by what it renders: rich tables for people, JSON for scripts.

Human output shows times as ISO-8601 UTC (``2027-01-15T08:00:00Z``) with a relative age beside them;
JSON keeps epoch seconds exactly as :meth:`lkpersist.model.session.Session.to_dict` gives them, so a
script never parses a display format. Identities are untrusted text: in tables every control character
(and the backslash) is escaped and long ones are cut with an ellipsis; JSON carries them exactly.

- :mod:`~lkpersist.cli._output.formats`: the ``-o`` choices of each command.
- :mod:`~lkpersist.cli._output.text`: times, ages, escaping, statuses (the pieces every view uses).
- :mod:`~lkpersist.cli._output.console`: stdout, tables without trailing padding, JSON, broken pipes.
- :mod:`~lkpersist.cli._output.listing`: ``sessions ls``, streamed.
- :mod:`~lkpersist.cli._output.session`: ``sessions show``.
- :mod:`~lkpersist.cli._output.summaries`: one-line results (``purge``).
- :mod:`~lkpersist.cli._output.events`: ``sessions watch`` lines.
- :mod:`~lkpersist.cli._output.simulation`: ``simulate reconnect`` and ``simulate load``.
- :mod:`~lkpersist.cli._output.encryption`: ``encrypt status`` and the migration summaries.
- :mod:`~lkpersist.cli._output.progress`: progress bars on stderr, only on a terminal.
"""
