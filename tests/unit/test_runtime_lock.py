"""The runtime lock (requirements.txt) is complete: every distribution src/ imports is a
declared dependency (pyproject.toml) in the lock, each floor is met by the locked
version, and the suite runs with the lock's versions. tests/system/test_runtime_lock.py
serves the app from a venv of the runtime lock alone."""

from __future__ import annotations

import importlib.metadata
import pathlib

from packaging.utils import canonicalize_name

from ..support import locks


def test_every_distribution_src_imports_is_declared_and_locked():
    problems = locks.undeclared(locks.SRC, set(locks.dependencies()), set(locks.runtime_pins()))
    assert not problems, "\n".join(problems)


def test_the_check_names_an_import_the_runtime_lock_lacks(tmp_path):
    """A module importing a dev-only distribution (pytest) and a transitive one (multidict) fails."""
    package = tmp_path / "src" / "pkg"
    package.mkdir(parents=True)
    (package / "mod.py").write_text("import json\nimport yaml\nimport pytest\nfrom multidict import CIMultiDict\n"
                                    "from . import other\nfrom pkg import other\n")
    problems = locks.undeclared(tmp_path / "src", set(locks.dependencies()), set(locks.runtime_pins()))
    assert len(problems) == 2, problems
    assert problems[0].startswith("multidict.CIMultiDict (imported in src/pkg/mod.py) comes from multidict, "
                                  "which [project].dependencies does not list"), problems
    assert problems[1] == ("pytest (imported in src/pkg/mod.py) comes from pytest, which [project].dependencies "
                           "and requirements.txt does not list"), problems


def test_namespace_packages_resolve_to_the_distribution_that_holds_the_module():
    assert locks.distribution_of("langgraph.checkpoint.sqlite.utils.load_pending_writes") == \
        "langgraph-checkpoint-sqlite"
    assert locks.distribution_of("langgraph.checkpoint.base.Checkpoint") == "langgraph-checkpoint"
    assert locks.distribution_of("langgraph.graph.StateGraph") == "langgraph"
    assert locks.distribution_of("yaml") == "pyyaml"
    assert locks.distribution_of("no_such_module_anywhere") is None


def test_every_floor_in_pyproject_is_met_by_the_runtime_lock():
    pins = locks.runtime_pins()
    for name, requirement in locks.dependencies().items():
        assert name in pins, f"{name} is a dependency the runtime lock does not pin"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"requirements.txt pins {name}=={pins[name]}, outside pyproject.toml's {requirement}")


def test_the_suite_runs_with_the_runtime_locks_versions():
    """The dev lock (this venv) holds every runtime distribution at the runtime lock's version."""
    installed = {canonicalize_name(d.metadata["Name"]): d.version for d in importlib.metadata.distributions()}
    differ = {name: (version, installed.get(name)) for name, version in locks.runtime_pins().items()
              if installed.get(name) != version}
    assert not differ, f"requirements.txt vs this venv (name: (locked, installed)): {differ}"


def test_no_lock_file_names_an_address():
    """Lock files carry names, versions and hashes only: no registry host, no funding or
    repository link (the build fetches by hash from whatever index the machine is given)."""
    root = pathlib.Path(__file__).resolve().parents[2]
    for name in ("requirements.txt", "requirements-dev.txt", "frontend/package-lock.json",
                 "nixos/python-lock.json"):
        text = (root / name).read_text()
        assert "://" not in text, f"{name} names an address"
