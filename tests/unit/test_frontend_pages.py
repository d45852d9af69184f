"""The frontend's own test modules (frontend/tests/test_*.py) under CPython, next to
their run under the real MicroPython WebAssembly runtime (test_frontend_wasm.py).

The SPA's modules have short top-level names (app, chat, runtime, ...). They are
imported with frontend/src on sys.path, then moved in sys.modules under `spa.<name>`
so they never shadow or collide with other modules of the test session."""

from __future__ import annotations

import pathlib
import sys
import types

import pytest

FRONTEND = pathlib.Path(__file__).resolve().parents[2] / "frontend"
SRC, TESTS = FRONTEND / "src", FRONTEND / "tests"


def load_spa() -> types.SimpleNamespace:
    """Every SPA module and frontend test module, imported once, under unique names."""
    cached = sys.modules.get("spa")
    if cached is not None:
        return cached.loaded
    names = sorted(p.stem for p in SRC.glob("*.py")) + sorted(p.stem for p in TESTS.glob("*.py"))
    saved = {n: sys.modules.pop(n) for n in names if n in sys.modules}
    sys.path[:0] = [str(SRC), str(TESTS)]
    loaded = {}
    try:
        for n in names:
            loaded[n] = __import__(n)
    finally:
        del sys.path[:2]
        for n in names:
            module = sys.modules.pop(n, None)
            if module is not None:
                sys.modules["spa." + n] = module
        sys.modules.update(saved)
    # app imports page modules on first use by their short names; hand it the renamed ones
    loaded["app"]._modules.update({n: loaded[n] for n in loaded["app"].PAGE_NAMES})
    package = types.ModuleType("spa")
    package.loaded = types.SimpleNamespace(**loaded)
    sys.modules["spa"] = package
    return package.loaded


def _cases():
    spa = load_spa()
    out = []
    for name in sorted(vars(spa)):
        if name.startswith("test_"):
            module = getattr(spa, name)
            out += [pytest.param(getattr(module, f), id=f"{name}.{f}") for f in sorted(dir(module))
                    if f.startswith("test_")]
    return out


@pytest.mark.parametrize("case", _cases())
def test_frontend_module_under_cpython(case):
    case()


def test_spa_names_do_not_leak_into_sys_modules():
    load_spa()
    for name in ("app", "chat", "runtime", "kit", "admin"):
        assert name not in sys.modules or not str(getattr(sys.modules[name], "__file__", "")).startswith(str(FRONTEND))
