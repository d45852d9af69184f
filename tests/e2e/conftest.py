"""The single-page app built once for every end-to-end module (scripts/build-frontend): each
module used to build its own, the same bytes four times over."""

from __future__ import annotations

import pathlib
import subprocess

import pytest

from ..support.needs import require
from .appliance import ROOT, missing


@pytest.fixture(scope="session")
def dist(tmp_path_factory) -> pathlib.Path:
    require(missing())
    out = tmp_path_factory.mktemp("spa") / "dist"
    subprocess.run([str(ROOT / "scripts" / "build-frontend"), str(out)], check=True, timeout=600)
    return out
