"""The browser half: ``lkpersist serve``, a token endpoint that keeps identities safe, and a page.

- :mod:`~lkpersist.serve.resume`   signed resume credentials (who the browser was last time)
- :mod:`~lkpersist.serve.issuer`   the token rules, framework-free (:class:`TokenIssuer`)
- :mod:`~lkpersist.serve.request`  the TokenSource request body
- :mod:`~lkpersist.serve.limits`   what LiveKit refuses (room names, identities, attributes)
- :mod:`~lkpersist.serve.rooms`    the room a participant joins (the server's choice)
- :mod:`~lkpersist.serve.ratelimit` per-address rate limits
- :mod:`~lkpersist.serve.app`      the aiohttp application (``build_app``); ``handlers``, ``middleware``
- :mod:`~lkpersist.serve.server`   running it (signals, the ``--demo`` agent worker)
- ``static/``                      the page, and livekit-client vendored from npm (``static/vendor/``)

This package imports no aiohttp and no livekit: the modules that need them (``app``, ``handlers``,
``middleware``, ``server``) import them, and nothing imports those but ``lkpersist serve``.
"""

from __future__ import annotations

from lkpersist.serve.config import ServeConfig
from lkpersist.serve.issuer import TokenIssuer, TokenResponse
from lkpersist.serve.request import RefusedRequest, TokenRequest, parse_token_request
from lkpersist.serve.resume import ResumeSigner

__all__ = [
    "RefusedRequest",
    "ResumeSigner",
    "ServeConfig",
    "TokenIssuer",
    "TokenRequest",
    "TokenResponse",
    "parse_token_request",
]
