"""The frontend's own test modules (frontend/tests/test_*.py) under CPython, next to
their run under the real MicroPython WebAssembly runtime (test_frontend_wasm.py).

The SPA's modules have short top-level names (app, chat, runtime, ...). They are
imported with frontend/src on sys.path, then moved in sys.modules under `spa.<name>`
so they never shadow or collide with other modules of the test session: by the loader the
app draws first pages with (agentstead/first_page/spa.py)."""

from __future__ import annotations

import importlib.util
import json
import pathlib
import shutil
import subprocess
import sys
import types

import pytest

from agentstead.first_page import spa as spa_loader

FRONTEND = pathlib.Path(__file__).resolve().parents[2] / "frontend"
SRC, TESTS = FRONTEND / "src", FRONTEND / "tests"


def load_spa() -> types.SimpleNamespace:
    """Every SPA module and frontend test module, imported once, under unique names (the app's own
    loader for the SPA it draws first pages with)."""
    cached = sys.modules.get("spa")
    if cached is not None:
        return cached.loaded
    loaded = spa_loader.load(SRC, TESTS, prefix="spa.")
    loaded.markdown.use_parser(markdown_parser())
    package = types.ModuleType("spa")
    package.loaded = loaded
    sys.modules["spa"] = package
    return package.loaded


def write_markdown_bundle() -> pathlib.Path:
    """The browser's Markdown bundle (frontend/build.py markdown_js: markdown-it, Prism,
    markdown-bridge.js) where frontend/tests/run.mjs and markdown_parse.mjs load it."""
    spec = importlib.util.spec_from_file_location("frontend_build", FRONTEND / "build.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    bundle = FRONTEND / "node_modules" / ".agentstead" / "markdown.js"
    bundle.parent.mkdir(parents=True, exist_ok=True)
    bundle.write_bytes(build.markdown_js())
    return bundle


def markdown_parser():
    """markdown.py's parser for the CPython run: the browser's bundle run by Node (the same
    markdown-it and Prism), or None without node (the Markdown cases then say so and skip)."""
    node = shutil.which("node")
    if node is None:
        return None
    bundle = write_markdown_bundle()
    cache: dict[str, list] = {}

    def parse(text: str) -> list:
        if text not in cache:
            out = subprocess.run([node, str(TESTS / "markdown_parse.mjs"), str(bundle)], input=json.dumps([text]),
                                 capture_output=True, text=True, timeout=60, check=True)
            cache[text] = json.loads(out.stdout)[0]
        return cache[text]
    return parse


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
    if case.__module__.endswith("test_markdown") and shutil.which("node") is None:
        print("skipping: the Markdown cases parse with markdown-it run by node, which is not installed")
        pytest.skip("node is not installed (it runs markdown-it for the Markdown cases)")
    case()


def test_spa_names_do_not_leak_into_sys_modules():
    load_spa()
    for name in ("app", "chat", "runtime", "kit", "admin"):
        assert name not in sys.modules or not str(getattr(sys.modules[name], "__file__", "")).startswith(str(FRONTEND))
