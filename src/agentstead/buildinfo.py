"""What build is running: version, commit, build time. Read once at startup.

A packaged build (Nix) writes `_buildinfo.json` next to this file; a source
checkout asks git; otherwise the fields say "unknown".
"""

from __future__ import annotations

import dataclasses
import json
import platform
import subprocess
from pathlib import Path

from . import __version__


@dataclasses.dataclass(frozen=True)
class BuildInfo:
    version: str
    commit: str
    build_time: str
    python: str


def _from_git(root: Path) -> tuple[str, str] | None:
    try:
        out = subprocess.run(["git", "-C", str(root), "log", "-1", "--format=%H %cI"],
                             capture_output=True, text=True, timeout=5, check=True).stdout.split()
    except (OSError, subprocess.SubprocessError):
        return None
    return (out[0], out[1]) if len(out) == 2 else None


def load() -> BuildInfo:
    here = Path(__file__).resolve().parent
    commit, built = "unknown", "unknown"
    stamp = here / "_buildinfo.json"
    if stamp.is_file():
        data = json.loads(stamp.read_text())
        commit, built = data.get("commit", commit), data.get("build_time", built)
    elif (found := _from_git(here)) is not None:
        commit, built = found
    return BuildInfo(__version__, commit, built, platform.python_version())
