"""The shape docs/architecture.md promises: no import cycles in src/agentstead, no module
over 400 lines, no class over 250, no function over 60 (tables of data excepted, by name).

Each check is a plain function over a directory, so the tests below also run it on a
small planted tree and see it fail: a shape test that cannot fail keeps nothing honest.
"""

from __future__ import annotations

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "agentstead"

MAX_MODULE, MAX_CLASS, MAX_FUNCTION = 400, 250, 60

# Modules excepted from the module-length limit only (their classes and functions are still
# checked), because most of their length is a table of data, not logic. Say why; keep it short.
TABLES = {
    # SETTINGS, the declarative table of every option (name, type, default, help, secret: ~170
    # lines, one row a setting) and the typed Settings record (~80 lines of fields). The value
    # parsers next to them (~260 lines) could move to a module of their own; not while several
    # branches add settings to this file.
    "settings.py",
}


def _modules(package: pathlib.Path) -> dict[str, pathlib.Path]:
    """Dotted name → file, for every module of the package (packages as their __init__)."""
    out = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _imported(name: str, path: pathlib.Path, modules: dict[str, pathlib.Path]) -> set[str]:
    """The package's modules that `name` imports, anywhere in the file (a function-level
    import still runs, and still ties the two modules together)."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[:len(base) - (node.level - 1)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            # `from pkg import sub` imports the module pkg.sub when there is one, else a name of pkg.
            targets = [f"{prefix}.{a.name}" if f"{prefix}.{a.name}" in modules else prefix for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in modules:   # `import a.b.c` of a name: the nearest module
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_cycles(package: pathlib.Path) -> list[list[str]]:
    """Every cycle of the import graph, one per strongly connected component (Tarjan)."""
    modules = _modules(package)
    graph = {name: sorted(_imported(name, path, modules)) for name, path in modules.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for name in graph:
        if name not in index:
            visit(name)
    return cycles


def oversized(package: pathlib.Path, tables: set[str] = frozenset()) -> list[str]:
    """'file: what (N lines)' for each module, class or function over its limit (a module
    in `tables` may be longer; its classes and functions may not)."""
    found = []
    for path in sorted(package.rglob("*.py")):
        relative = path.relative_to(package).as_posix()
        text = path.read_text()
        if len(text.splitlines()) > MAX_MODULE and relative not in tables:
            found.append(f"{relative}: module ({len(text.splitlines())} lines > {MAX_MODULE})")
        for node in ast.walk(ast.parse(text, str(path))):
            limit = (MAX_CLASS if isinstance(node, ast.ClassDef)
                     else MAX_FUNCTION if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) else None)
            if limit is not None and node.end_lineno - node.lineno + 1 > limit:
                kind = "class" if isinstance(node, ast.ClassDef) else "function"
                found.append(f"{relative}:{node.lineno}: {kind} {node.name} "
                             f"({node.end_lineno - node.lineno + 1} lines > {limit})")
    return found


def test_src_has_no_import_cycle():
    assert import_cycles(PACKAGE) == []


def test_src_has_no_oversized_module_class_or_function():
    assert oversized(PACKAGE, TABLES) == []


def test_every_table_excepted_exists():
    for relative in TABLES:
        assert (PACKAGE / relative).is_file(), f"{relative} is excepted but gone: drop it from TABLES"


def _plant(tmp_path: pathlib.Path, files: dict[str, str]) -> pathlib.Path:
    package = tmp_path / "planted"
    for relative, text in files.items():
        (package / relative).parent.mkdir(parents=True, exist_ok=True)
        (package / relative).write_text(text)
    return package


def test_a_planted_cycle_is_found_through_relative_and_function_level_imports(tmp_path):
    package = _plant(tmp_path, {
        "__init__.py": "",
        "a.py": "from .sub import b\n",
        "sub/__init__.py": "",
        "sub/b.py": "from . import c\n",
        "sub/c.py": "def late():\n    from ..a import thing\n",
        "d.py": "import planted.a\n",   # imports into the cycle, is not part of it
    })
    assert import_cycles(package) == [["planted.a", "planted.sub.b", "planted.sub.c"]]


def test_a_planted_tree_without_cycles_passes(tmp_path):
    package = _plant(tmp_path, {"__init__.py": "", "a.py": "from . import b\n", "b.py": "import os\n"})
    assert import_cycles(package) == []


def test_planted_oversized_module_class_and_function_are_found(tmp_path):
    long_function = "def f():\n" + "    x = 1\n" * MAX_FUNCTION
    long_class = "class C:\n" + "    y = 2\n" * MAX_CLASS
    package = _plant(tmp_path, {
        "__init__.py": "",
        "big.py": "z = 0\n" * (MAX_MODULE + 1),
        "parts.py": long_function + long_class,
        "table.py": "z = 0\n" * (MAX_MODULE + 1) + long_function.replace("def f", "def h"),
        "fine.py": "def g():\n" + "    x = 1\n" * (MAX_FUNCTION - 1),
    })
    assert oversized(package, {"table.py"}) == [
        f"big.py: module ({MAX_MODULE + 1} lines > {MAX_MODULE})",
        f"parts.py:1: function f ({MAX_FUNCTION + 1} lines > {MAX_FUNCTION})",
        f"parts.py:{MAX_FUNCTION + 2}: class C ({MAX_CLASS + 1} lines > {MAX_CLASS})",
        f"table.py:{MAX_MODULE + 2}: function h ({MAX_FUNCTION + 1} lines > {MAX_FUNCTION})",
    ]
