"""The house rules of the package layout: no import circles, small modules, one folder per backend."""

from __future__ import annotations

import importlib

from tests._import_graph import ROOT, circles, import_graph, module_files

MAX_MODULE_LINES = 400
BACKENDS = {"memory": "MemoryStore", "sqlite": "SQLiteStore", "redis": "RedisStore", "fallback": "FallbackStore"}


def test_no_import_circle_among_lkpersist_modules() -> None:
    assert circles(import_graph()) == []


def test_the_checker_finds_a_circle_through_a_lazy_or_type_only_import(tmp_path) -> None:
    package = tmp_path / "lkpersist"
    (package / "stores").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "stores" / "__init__.py").write_text("def f():\n    from lkpersist.stores import b\n")
    (package / "stores" / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from lkpersist.stores import f\n"
    )
    assert circles(import_graph(package)) == [["lkpersist.stores", "lkpersist.stores.b"]]


def test_no_module_is_over_the_size_limit() -> None:
    sizes = {name: len(path.read_text(encoding="utf-8").splitlines()) for name, path in module_files().items()}
    assert {name: lines for name, lines in sizes.items() if lines > MAX_MODULE_LINES} == {}


def test_stores_show_one_package_per_backend_beside_the_contract() -> None:
    stores = ROOT / "stores"
    packages = {path.parent.name for path in stores.glob("*/__init__.py")}
    assert packages == set(BACKENDS)
    assert not [path.name for path in stores.glob("_*.py") if path.name != "__init__.py"]
    for backend, class_name in BACKENDS.items():
        module = importlib.import_module(f"lkpersist.stores.{backend}")
        assert class_name in module.__all__ and getattr(module, class_name).__module__ == module.__name__


def test_backends_name_the_same_concern_alike() -> None:
    """A reader who knows one backend finds the same concern under the same file name in another."""
    files = {backend: {path.stem for path in (ROOT / "stores" / backend).glob("*.py")} for backend in BACKENDS}
    assert {"events", "locks", "raw"} <= files["memory"]
    assert {"events", "locks", "raw", "reconcile", "url", "errors", "rows", "schema"} <= files["sqlite"]
    assert {"events", "locks", "raw", "reconcile", "url", "errors", "records", "keys", "lua"} <= files["redis"]
    assert {"journal", "local"} <= files["fallback"]
