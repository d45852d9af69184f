"""A part a test needs and this machine lacks: outside CI the test skips and says why; in CI
(CI=true) it fails, because nothing CI needs may be skipped there (.ci/run installs it all)."""

from __future__ import annotations

import os

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"


def require(missing: str | None, *, module: bool = False) -> None:
    """Nothing when `missing` is None; else skip (the whole module with module=True) saying
    why, or fail under CI."""
    if missing is None:
        return
    if IN_CI:
        pytest.fail(f"CI=true, and {missing}", pytrace=False)
    print(f"skipping: {missing}")
    pytest.skip(missing, allow_module_level=module)
