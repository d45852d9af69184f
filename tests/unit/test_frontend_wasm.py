"""The frontend's unit tests under the real MicroPython WebAssembly runtime, in Node
(frontend/tests/run.mjs): every page's update and view and the runtime's diff/patch,
run by the interpreter the browser loads (the vendored runtime, frontend/vendor/).
Skips, saying why, only without node."""

from __future__ import annotations

import importlib.util
import pathlib
import shutil
import subprocess

import pytest

FRONTEND = pathlib.Path(__file__).resolve().parents[2] / "frontend"


def _build_module():
    spec = importlib.util.spec_from_file_location("frontend_build", FRONTEND / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _node() -> str:
    """node, with the vendored runtime unpacked where run.mjs imports it (frontend/node_modules)."""
    node = shutil.which("node")
    if node is None:
        print("skipping the MicroPython-WebAssembly frontend tests: node is not installed (Node >= 20)")
        pytest.skip("node is not installed (Node >= 20 runs the frontend's tests)")
    build = _build_module()
    build.unpack_runtime(FRONTEND / "node_modules")
    bundle = FRONTEND / "node_modules" / ".agentstead" / "markdown.js"     # run.mjs loads it: markdown-it, Prism
    bundle.parent.mkdir(parents=True, exist_ok=True)
    bundle.write_bytes(build.markdown_js())
    return node


def test_frontend_tests_pass_under_micropython_wasm():
    out = subprocess.run([_node(), str(FRONTEND / "tests" / "run.mjs")], capture_output=True, text=True, timeout=300)
    summary = [line for line in out.stdout.splitlines() if line.startswith("SUMMARY ")]
    failures = [line for line in out.stdout.splitlines() if line.startswith("FAIL ")]
    assert out.returncode == 0 and summary, f"{out.stdout[-6000:]}\n{out.stderr[-3000:]}"
    assert "JS with Emscripten" in summary[0], summary      # really the WebAssembly build
    assert not failures
    print(summary[0])


def test_runner_reports_a_failing_test(tmp_path):
    """The runner exits non-zero when a test fails (a runner that cannot fail tests nothing)."""
    node = _node()
    copy = tmp_path / "frontend"
    (copy / "tests").mkdir(parents=True)
    shutil.copytree(FRONTEND / "src", copy / "src")
    (copy / "node_modules").symlink_to(FRONTEND / "node_modules")
    shutil.copy(FRONTEND / "tests" / "run.mjs", copy / "tests" / "run.mjs")
    (copy / "tests" / "test_broken.py").write_text("def test_fails():\n    assert 1 == 2\n\ndef test_ok():\n    pass\n")
    out = subprocess.run([node, str(copy / "tests" / "run.mjs")], capture_output=True, text=True, timeout=120)
    assert out.returncode == 1, out.stdout
    assert "FAIL test_broken.test_fails" in out.stdout and "SUMMARY 1 passed, 1 failed" in out.stdout
