"""The single-page app built once for every end-to-end module (scripts/build-frontend): each
module used to build its own, the same bytes four times over."""

from __future__ import annotations

import pathlib
import subprocess

import pytest

from .test_spa import ROOT, _missing


@pytest.fixture(scope="session")
def dist(tmp_path_factory) -> pathlib.Path:
    reason = _missing()
    if reason:
        print(f"skipping the end-to-end tests: {reason}")
        pytest.skip(reason)
    out = tmp_path_factory.mktemp("spa") / "dist"
    subprocess.run([str(ROOT / "scripts" / "build-frontend"), str(out)], check=True, timeout=600)
    return out
