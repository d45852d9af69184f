"""A built SPA as the app reads it for first pages (AGENTSTEAD_FRONTEND_DIR): index.html and ssr/
(frontend/build.py writes both; this copies them from frontend/src without building the assets,
which the app never reads)."""

from __future__ import annotations

import pathlib
import shutil

FRONTEND_SRC = pathlib.Path(__file__).resolve().parents[2] / "frontend" / "src"


def spa_for_first_pages(root: pathlib.Path) -> pathlib.Path:
    (root / "ssr").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(FRONTEND_SRC / "index.html", root / "index.html")
    for p in FRONTEND_SRC.glob("*.py"):
        shutil.copyfile(p, root / "ssr" / p.name)
    return root
