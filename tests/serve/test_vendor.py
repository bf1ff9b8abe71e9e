"""The vendored livekit-client is the pinned npm file, unmodified, shipped with its licences."""

from __future__ import annotations

import hashlib
import re

from lkpersist.serve.handlers import LIVEKIT_CLIENT_VERSION, STATIC_DIR

VENDOR = STATIC_DIR / "vendor"
UMD_SHA256 = "fb646f2260d84f91238d0a2dc10726c456631d6a26c7cafc43cfee5959b4d31d"  # npm livekit-client 2.23.0


def test_the_bundle_is_the_pinned_release() -> None:
    bundle = (VENDOR / "livekit-client.umd.js").read_bytes()
    assert hashlib.sha256(bundle).hexdigest() == UMD_SHA256
    assert f'"{LIVEKIT_CLIENT_VERSION}"'.encode() in bundle
    readme = (VENDOR / "README.md").read_text(encoding="utf-8")
    assert f"livekit-client {LIVEKIT_CLIENT_VERSION}" in readme and UMD_SHA256 in readme


def test_licences_ship_with_it() -> None:
    assert "Apache License" in (VENDOR / "LICENSE").read_text(encoding="utf-8")
    notices = (VENDOR / "THIRD-PARTY-NOTICES.txt").read_text(encoding="utf-8")
    for package in ("@livekit/protocol", "@livekit/mutex", "@bufbuild/protobuf", "jose", "loglevel", "events",
                    "webrtc-adapter", "sdp", "machina", "sdp-transform"):
        assert re.search(rf"^- {re.escape(package)} ", notices, re.MULTILINE), package
    assert notices.count("Permission is hereby granted") >= 5  # the MIT texts themselves
    assert "Redistribution and use in source and binary forms" in notices  # the BSD ones


def test_the_page_loads_only_files_that_exist() -> None:
    html = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    for path in re.findall(r'(?:src|href)="(static/[^"]+)"', html):
        assert (STATIC_DIR.parent / path).is_file(), path
    for module in re.findall(r"from '\./([^']+)'", (STATIC_DIR / "app.js").read_text(encoding="utf-8")):
        assert (STATIC_DIR / module).is_file(), module


def test_the_static_files_are_package_data() -> None:
    import tomllib
    from pathlib import Path

    pyproject = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = pyproject["tool"]["setuptools"]["package-data"]["lkpersist"]
    shipped = {path for pattern in patterns for path in (STATIC_DIR.parents[1]).glob(pattern) if path.is_file()}
    assert {path for path in STATIC_DIR.rglob("*") if path.is_file()} <= shipped
