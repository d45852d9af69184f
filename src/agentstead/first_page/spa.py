"""The SPA's Python modules (the built SPA's ssr/ directory: frontend/src as source) imported into
the app under private names, so they never shadow or meet the app's own modules."""

from __future__ import annotations

import pathlib
import sys
import threading
import types

PREFIX = "agentstead_spa."
_loading = threading.Lock()


def load(*directories: pathlib.Path, prefix: str = PREFIX) -> types.SimpleNamespace:
    """Every module of `directories` (the SPA's first), imported fresh, as a namespace of modules
    by their short names. The SPA's modules import each other by short names (`import runtime`):
    they are imported with the directories first on sys.path, then moved in sys.modules under
    `prefix`, and whatever held a short name before is put back. (The frontend's CPython tests load
    the SPA and their own modules together this way: tests/unit/test_frontend_pages.py.)"""
    names = [p.stem for d in directories for p in sorted(d.glob("*.py"))]
    if "app" not in names:
        raise FileNotFoundError(f"{directories[0]} holds no app.py: not the built SPA's ssr/ directory")
    with _loading:
        saved = {n: sys.modules.pop(n) for n in names if n in sys.modules}
        sys.path[:0] = [str(d) for d in directories]
        loaded = {}
        try:
            for n in names:
                loaded[n] = __import__(n)
        finally:
            del sys.path[:len(directories)]
            for n in names:
                module = sys.modules.pop(n, None)
                if module is not None:
                    sys.modules[prefix + n] = module
            sys.modules.update(saved)
    app = loaded["app"]
    # app imports a page's module when first shown, by its short name: hand it the loaded ones
    app._modules.update({n: loaded[n] for n in app.PAGE_NAMES if n in loaded})
    return types.SimpleNamespace(**loaded)
