"""Build frontend/dist from frontend/src and the MicroPython npm package.

dist/index.html (served no-cache) names content-hashed, immutable assets:
  assets/micropython.<hash>.mjs / .wasm   the runtime from node_modules
  assets/app.<hash>.json                  every frontend/src/*.py, bundled
  assets/app.<hash>.css, assets/boot.<hash>.mjs
and every text-like file gets .br and .gz siblings for Caddy's precompressed serving.
Run through scripts/build-frontend (it runs npm ci first when needed)."""

from __future__ import annotations

import gzip
import hashlib
import json
import pathlib
import shutil
import sys

import brotli

HERE = pathlib.Path(__file__).resolve().parent
SRC = HERE / "src"
PKG = HERE / "node_modules" / "@micropython" / "micropython-webassembly-pyscript"
COMPRESS = (".html", ".mjs", ".wasm", ".json", ".css")


def hashed(name: str, body: bytes) -> str:
    stem, dot, ext = name.partition(".")
    return f"{stem}.{hashlib.sha256(body).hexdigest()[:16]}.{ext}"


def write(path: pathlib.Path, body: bytes) -> None:
    path.write_bytes(body)
    if path.suffix in COMPRESS:
        path.with_name(path.name + ".br").write_bytes(brotli.compress(body, quality=11))
        path.with_name(path.name + ".gz").write_bytes(gzip.compress(body, compresslevel=9, mtime=0))


def build(out: pathlib.Path) -> dict[str, str]:
    if not (PKG / "micropython.mjs").is_file():
        sys.exit(f"build-frontend: {PKG} is missing; run npm ci in {HERE}")
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "assets").mkdir(parents=True)
    names: dict[str, str] = {}

    def asset(key: str, name: str, body: bytes) -> None:
        names[key] = hashed(name, body)
        write(tmp / "assets" / names[key], body)

    asset("MICROPYTHON_MJS", "micropython.mjs", (PKG / "micropython.mjs").read_bytes())
    asset("MICROPYTHON_WASM", "micropython.wasm", (PKG / "micropython.wasm").read_bytes())
    files = {p.name: p.read_text() for p in sorted(SRC.glob("*.py"))}
    asset("APP_BUNDLE", "app.json", json.dumps({"files": files}, sort_keys=True, separators=(",", ":")).encode())
    asset("APP_CSS", "app.css", (SRC / "app.css").read_bytes())
    asset("BOOT_MJS", "boot.mjs", fill((SRC / "boot.mjs").read_text(), names).encode())
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
    names = build(out.resolve())
    sizes = sum((out / "assets" / n).with_name(n + ".gz").stat().st_size for n in names.values())
    index_gz = (out / "index.html.gz").stat().st_size
    print(f"build-frontend: {out} ({len(names)} assets, {(sizes + index_gz) / 1024:.0f} KiB gzipped)")


if __name__ == "__main__":
    main()
