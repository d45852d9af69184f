"""`agentstead serve` as a real process: graceful SIGTERM, systemd notify,
Unix socket, readiness on a full disk, CLI exit codes."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import threading
import time
import urllib.error
import urllib.request

import pytest

from ..support.procs import VENV_BIN, Server, clean_env

AGENTSTEAD = str(VENV_BIN / "agentstead")


def get(url: str, timeout: float = 30.0) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_sigterm_lets_the_in_flight_request_finish_then_exits_0(tmp_path):
    with Server(tmp_path / "state") as server:
        # Hold the write lock from another connection: /readyz's write probe waits for it.
        blocker = sqlite3.connect(server.state_dir / "agentstead.db", isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        result: dict = {}
        worker = threading.Thread(target=lambda: result.update(zip(("status", "body"), get(server.url + "/readyz"))))
        worker.start()
        time.sleep(0.5)  # the request is in the handler, waiting on the lock
        assert worker.is_alive()
        server.signal(signal.SIGTERM)
        time.sleep(0.5)
        # Stopped accepting: a new connection is refused while the old request is still running.
        with pytest.raises(OSError):
            urllib.request.urlopen(server.url + "/healthz", timeout=2)
        assert server.proc.poll() is None
        blocker.execute("COMMIT")
        blocker.close()
        worker.join(15)
        assert result.get("status") == 200, (result, server.logs())
        assert server.wait(15) == 0
        logs = server.logs()
        assert '"msg": "stopping"' in logs and '"msg": "stopped"' in logs


def test_systemd_notify_ready_watchdog_stopping(tmp_path):
    sock_path = str(tmp_path / "notify.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(sock_path)
    listener.settimeout(20)
    server = Server(tmp_path / "state", NOTIFY_SOCKET=sock_path, WATCHDOG_USEC="400000")
    with server:
        messages = []
        while not any("WATCHDOG=1" in m for m in messages) or not any("READY=1" in m for m in messages):
            messages.append(listener.recv(4096).decode())
        server.signal(signal.SIGTERM)
        while not any("STOPPING=1" in m for m in messages):
            messages.append(listener.recv(4096).decode())
        assert server.wait(15) == 0
    listener.close()
    ready = next(i for i, m in enumerate(messages) if "READY=1" in m)
    stopping = next(i for i, m in enumerate(messages) if "STOPPING=1" in m)
    assert ready < stopping


def test_serves_on_a_unix_socket(tmp_path):
    path = tmp_path / "agentstead.sock"
    env = clean_env(AGENTSTEAD_STATE_DIR=str(tmp_path / "state"))
    proc = subprocess.Popen([AGENTSTEAD, "serve", "--unix-socket", str(path)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while not path.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(str(path))
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            reply = b""
            while chunk := s.recv(65536):
                reply += chunk
        assert reply.startswith(b"HTTP/1.1 200")  # a Unix socket peer is local
        assert b"agentstead_http_requests_in_flight" in reply
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0


def test_bad_configuration_exits_2_with_one_line(tmp_path):
    env = clean_env(AGENTSTEAD_STATE_DIR=str(tmp_path), AGENTSTEAD_MAX_BODY_SIZE="huge")
    for argv in (["config", "check"], ["serve"]):
        out = subprocess.run([AGENTSTEAD, *argv], env=env, capture_output=True, text=True, timeout=30)
        assert out.returncode == 2, out
        assert out.stderr.count("\n") == 1 and "AGENTSTEAD_MAX_BODY_SIZE" in out.stderr
    assert not (tmp_path / "agentstead.db").exists()  # nothing was created


def test_production_without_a_key_refuses_to_start(tmp_path):
    env = clean_env(AGENTSTEAD_STATE_DIR=str(tmp_path), AGENTSTEAD_ENV="production",
                    AGENTSTEAD_PUBLIC_URL="https://agents.example.org")
    out = subprocess.run([AGENTSTEAD, "serve"], env=env, capture_output=True, text=True, timeout=30)
    assert out.returncode == 2 and "AGENTSTEAD_SECRET_KEY: is missing" in out.stderr


def test_newer_schema_is_refused_at_startup(tmp_path):
    db = tmp_path / "agentstead.db"
    env = clean_env(AGENTSTEAD_STATE_DIR=str(tmp_path))
    assert subprocess.run([AGENTSTEAD, "migrate"], env=env, capture_output=True, timeout=30).returncode == 0
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA user_version = 99")
    for argv in (["migrate"], ["serve"]):
        out = subprocess.run([AGENTSTEAD, *argv], env=env, capture_output=True, text=True, timeout=30)
        assert out.returncode == 1, out
        assert "schema version 99, newer than this Agentstead knows" in out.stderr


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 4 MiB tmpfs: a real full disk. Needs root (CI runs as root)."""
    mnt = tmp_path / "tmpfs"
    mnt.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root; CI runs as root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_readyz_fails_on_a_full_disk_and_recovers(small_tmpfs):
    state = small_tmpfs / "state"
    with Server(state, AGENTSTEAD_MIN_FREE_DISK="256KiB") as server:
        status, body = get(server.url + "/readyz")
        assert status == 200, body
        filler = small_tmpfs / "filler"
        with open(filler, "wb") as fh:
            try:
                while True:
                    fh.write(b"\0" * 65536)
                    fh.flush()
            except OSError:
                pass  # ENOSPC: the disk is full
        status, body = get(server.url + "/readyz")
        assert status == 503, body
        assert "disk" in body["failing"]
        assert get(server.url + "/healthz")[0] == 200  # still alive, just not ready
        filler.unlink()
        status, body = get(server.url + "/readyz")
        assert status == 200, body
