"""Real subprocesses for system tests: agentstead serve and friends."""

from __future__ import annotations

import contextlib
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

VENV_BIN = pathlib.Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env(**extra: str) -> dict[str, str]:
    """The current environment without AGENTSTEAD_* (tests set what they mean)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTSTEAD_")}
    env.update(extra)
    return env


def login_link(state_dir: pathlib.Path, email: str, role: str | None = None, **env: str) -> str:
    """A real single-use sign-in link (its path, /auth/link/<token>) from the CLI, as an admin
    without an identity provider gets one; the person is created first unless they exist."""
    env = clean_env(AGENTSTEAD_STATE_DIR=str(state_dir), **env)
    subprocess.run([str(VENV_BIN / "agentstead"), "admin", "create-user", "--email", email]
                   + (["--role", role] if role else []), env=env, capture_output=True)
    out = subprocess.run([str(VENV_BIN / "agentstead"), "admin", "login-link", "--email", email],
                         env=env, check=True, capture_output=True, text=True).stdout
    return "/auth/link/" + out.split()[0].rsplit("/", 1)[1]


def wait_http(url: str, timeout: float = 20.0, proc: subprocess.Popen | None = None, *,
              context=None, detail=lambda: "") -> None:
    """Poll until the URL answers (any status below 500, or any HTTP error page).
    `context` builds the TLS context per try (a local CA may appear only once the server runs)."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before {url} answered\n{detail()}")
        try:
            with urllib.request.urlopen(url, timeout=2, context=context() if context else None) as resp:
                if resp.status < 500:
                    return
        except urllib.error.HTTPError:
            return  # it answered
        except Exception as exc:  # not listening yet, or no certificate yet
            last = exc
        time.sleep(0.05)
    raise TimeoutError(f"{url} did not answer within {timeout}s: {last}\n{detail()}")


class Server:
    """`agentstead serve` as a child process on a free port."""

    def __init__(self, state_dir: pathlib.Path, port: int | None = None, *, bin_dir: pathlib.Path = VENV_BIN,
                 wrapper: tuple[str, ...] = (), **env: str):
        self.state_dir = pathlib.Path(state_dir)
        self.bin_dir = pathlib.Path(bin_dir)  # another venv's bin/ (the runtime lock's)
        self.wrapper = tuple(wrapper)   # e.g. ("fiu-run", "-x"): the server runs under it (same pid: it execs)
        self.port = port or free_port()
        self.env = clean_env(AGENTSTEAD_STATE_DIR=str(self.state_dir), AGENTSTEAD_PORT=str(self.port),
                             AGENTSTEAD_LOG_FORMAT="json", **env)
        self.proc: subprocess.Popen | None = None
        self.log_path = self.state_dir.parent / f"serve-{self.port}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> "Server":
        self.state_dir.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([*self.wrapper, str(self.bin_dir / "agentstead"), "serve"], env=self.env,
                                     stdout=log, stderr=subprocess.STDOUT)
        log.close()
        wait_http(self.url + "/healthz", timeout, self.proc)
        return self

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 30.0) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

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

    def __enter__(self) -> "Server":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
