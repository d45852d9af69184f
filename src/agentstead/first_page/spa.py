"""The SPA's Python modules (the built SPA's ssr/ directory: frontend/src as source) imported into
the app under private names, so they never shadow or meet the app's own modules."""

from __future__ import annotations

import pathlib
import sys
import threading
import types

PREFIX = "agentstead_spa."
_loading = threading.Lock()


def load(directory: pathlib.Path) -> types.SimpleNamespace:
    """Every module of `directory`, imported fresh, as a namespace of modules by their short names.
    The SPA's modules import each other by short names (`import runtime`): they are imported with
    the directory first on sys.path, then moved in sys.modules under PREFIX, and whatever held a
    short name before is put back."""
    names = sorted(p.stem for p in directory.glob("*.py"))
    if "app" not in names:
        raise FileNotFoundError(f"{directory} holds no app.py: not the built SPA's ssr/ directory")
    with _loading:
        saved = {n: sys.modules.pop(n) for n in names if n in sys.modules}
        sys.path.insert(0, str(directory))
        loaded = {}
        try:
            for n in names:
                loaded[n] = __import__(n)
        finally:
            sys.path.remove(str(directory))
            for n in names:
                module = sys.modules.pop(n, None)
                if module is not None:
                    sys.modules[PREFIX + n] = module
            sys.modules.update(saved)
    app = loaded["app"]
    # app imports a page's module when first shown, by its short name: hand it the loaded ones
    app._modules.update({n: loaded[n] for n in app.PAGE_NAMES if n in loaded})
    return types.SimpleNamespace(**loaded)
