"""What the lock files and pyproject.toml say, and which distribution a module of src/ comes from."""

from __future__ import annotations

import ast
import importlib.metadata
import pathlib
import re
import sys
import tomllib
from functools import lru_cache

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = pathlib.Path(__file__).resolve().parents[2]
SRC = ROOT / "src"


def pins(path: pathlib.Path) -> dict[str, str]:
    """name (canonical) -> version of every `name==version` line of a pip lock file."""
    found = re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", path.read_text(), re.M)
    return {canonicalize_name(name): version for name, version in found}


def hashes(path: pathlib.Path) -> dict[str, set[str]]:
    """name (canonical) -> the sha256 hashes a hash-locked requirements file lists for it."""
    found = re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==\S+((?:\s*\\\n\s*--hash=sha256:[0-9a-f]{64})+)",
                       path.read_text(), re.M)
    return {canonicalize_name(name): set(re.findall(r"[0-9a-f]{64}", block)) for name, block in found}


def runtime_pins() -> dict[str, str]:
    return pins(ROOT / "requirements.txt")


def project() -> dict:
    """[project] of pyproject.toml."""
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def dependencies() -> dict[str, Requirement]:
    """[project].dependencies of pyproject.toml, by canonical name."""
    return {canonicalize_name(r.name): r for r in map(Requirement, project()["dependencies"])}


def imported_modules(src: pathlib.Path = SRC) -> dict[str, set[str]]:
    """Absolute imports outside the standard library and the package itself: module -> files."""
    own = {p.name for p in src.iterdir() if p.is_dir()}
    found: dict[str, set[str]] = {}
    for path in sorted(src.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                # `from a.b import c`: c may be a module of its own distribution (namespace packages).
                names = [f"{node.module}.{alias.name}" for alias in node.names]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in own and top not in sys.stdlib_module_names:
                    found.setdefault(name, set()).add(str(path.relative_to(src.parent)))
    return found


@lru_cache(maxsize=1)
def _files() -> dict[str, str]:
    """Installed file (as in RECORD, e.g. langgraph/checkpoint/sqlite/utils.py) -> its distribution."""
    owner = {}
    for dist in importlib.metadata.distributions():
        name = canonicalize_name(dist.metadata["Name"])
        for file in dist.files or ():
            path = file.as_posix()
            owner.setdefault(path, name)
            if path.endswith((".so", ".pyd")):  # an extension module: a/b.cpython-311-x86_64-linux-gnu.so
                owner.setdefault(path.split(".", 1)[0] + ".py", name)
    return owner


def distribution_of(module: str) -> str | None:
    """The installed distribution that holds the module (or, for `a.b.name`, the nearest package)."""
    files = _files()
    parts = module.split(".")
    while parts:
        base = "/".join(parts)
        for candidate in (f"{base}.py", f"{base}/__init__.py"):
            if candidate in files:
                return files[candidate]
        parts.pop()
    return None


def undeclared(src: pathlib.Path, declared: set[str], locked: set[str]) -> list[str]:
    """One line per import of src/ whose distribution is not a declared dependency in the lock."""
    problems = []
    for module, where in sorted(imported_modules(src).items()):
        dist = distribution_of(module)
        if dist is None:
            problems.append(f"{module} (imported in {', '.join(sorted(where))}) is not installed")
        elif dist not in declared or dist not in locked:
            missing = " and ".join(what for what, names in (("[project].dependencies", declared),
                                                            ("requirements.txt", locked)) if dist not in names)
            problems.append(f"{module} (imported in {', '.join(sorted(where))}) comes from {dist}, "
                            f"which {missing} does not list")
    return problems
