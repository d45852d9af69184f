"""frontend/build.py's own steps: what it ships of our JS (script), and the built boot.mjs
naming every asset it loads."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from .test_frontend_wasm import FRONTEND, _build_module


def test_script_drops_whole_line_comments_only(tmp_path):
    js = tmp_path / "a.js"
    js.write_text('// about a\nconst url = "https://example.org/x"; // kept: code on the line\n'
                  '  // indented comment\nlet t = `a // b`;\n')
    assert _build_module().script(js) == 'const url = "https://example.org/x"; // kept: code on the line\nlet t = `a // b`;\n'


def test_script_refuses_a_template_literal_over_several_lines(tmp_path):
    js = tmp_path / "a.js"
    js.write_text("const t = `first\n// not a comment here\n`;\n")
    with pytest.raises(SystemExit) as stop:
        _build_module().script(js)
    assert "a.js:1" in str(stop.value)


def test_built_boot_names_its_assets_and_keeps_its_code(tmp_path):
    """The shipped boot.mjs: every placeholder filled, no comment lines, and still the boot
    (Node parses it as a module: nothing was cut mid-statement)."""
    build = _build_module()
    names = build.build(tmp_path / "dist", None)
    boot = (tmp_path / "dist" / "assets" / names["BOOT_MJS"]).read_text()
    assert not re.findall(r"__[A-Z_]+__", boot)
    assert not [line for line in boot.splitlines() if line.lstrip().startswith("//")]
    for name in ("MICROPYTHON_MJS", "MICROPYTHON_WASM", "APP_BUNDLE", "MARKDOWN_JS", "LAZY_BUNDLE"):
        assert names[name] in boot
    assert "agentsteadFirstFrame" in boot and "agentsteadEarly" in boot
    # the runtime's loader asks V8 to compile it whole while it streams in (first line, as V8 reads it)
    loader = (tmp_path / "dist" / "assets" / names["MICROPYTHON_MJS"]).read_bytes()
    assert loader.startswith(b"//# allFunctionsCalledOnLoad\n") and b"loadMicroPython" in loader
    node = shutil.which("node")
    if node is None:
        print("not parsing the built boot.mjs: node is not installed (Node >= 20)")
        pytest.skip("node is not installed (Node >= 20 parses the built boot.mjs)")
    checked = subprocess.run([node, "--check", "--input-type=module"], input=boot, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
