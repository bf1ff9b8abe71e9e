"""The public surface: ``lkpersist.__all__`` is sorted and every name in it imports."""

from __future__ import annotations

import importlib

import lkpersist


def _isort_style(name: str) -> tuple[int, str]:
    """Ruff's RUF022 order: CONSTANTS, then Classes, then everything else; alphabetical within each."""
    if name.isupper():
        return 0, name
    return (1 if name[:1].isupper() else 2), name


def test_all_is_sorted_and_unique() -> None:
    names = list(lkpersist.__all__)
    assert len(names) == len(set(names)), "duplicate names in lkpersist.__all__"
    assert names == sorted(names, key=_isort_style)


def test_every_public_name_imports() -> None:
    module = importlib.reload(lkpersist)
    missing = [name for name in module.__all__ if getattr(module, name, None) is None]
    assert missing == []


def test_star_import_gives_every_public_name() -> None:
    namespace: dict[str, object] = {}
    exec("from lkpersist import *", namespace)  # noqa: S102 - the star import is what is tested
    assert set(lkpersist.__all__) <= namespace.keys()
