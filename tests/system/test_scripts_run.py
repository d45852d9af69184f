"""`scripts/run` started in the background, as a newcomer's script or CI would (`scripts/run &`
in a shell without job control, which starts it with SIGINT ignored): SIGINT and SIGTERM
each stop everything it started (the app, Caddy, Litestream), and the banner names the replica."""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import time

import pytest

from ..support.procs import clean_env, free_port, wait_http

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _children(pid: int) -> set[int]:
    """Every live descendant of pid (from /proc)."""
    parents: dict[int, list[int]] = {}
    for entry in pathlib.Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            parents.setdefault(ppid, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _name(pid: int) -> str:
    try:
        return pathlib.Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _gone(pid: int) -> bool:
    try:
        state = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state == "Z"   # exited; its parent (init, once the script is gone) reaps it


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_background_scripts_run_stops_everything_it_started(tmp_path, sig):
    app_port, site_port = free_port(), free_port()
    env = clean_env(AGENTSTEAD_STATE_DIR=str(tmp_path / "var"), AGENTSTEAD_PORT=str(app_port),
                    CADDY_SITE_ADDRESS=f"http://localhost:{site_port}")
    env.pop("AWS_CA_BUNDLE", None)   # Litestream's S3 client breaks with it (and needs none here)
    env.pop("_AGENTSTEAD_RUN_SIGNALS", None)
    log = tmp_path / "run.log"
    # `&` in a non-interactive bash: the job starts with SIGINT and SIGQUIT ignored.
    shell = subprocess.Popen(["bash", "-c", f'scripts/run >"{log}" 2>&1 & echo $!; wait'],
                             cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        run_pid = int(shell.stdout.readline())
        wait_http(f"http://127.0.0.1:{app_port}/healthz", 120, detail=lambda: log.read_text())
        deadline = time.monotonic() + 60
        while "Agentstead is running" not in log.read_text():   # Caddy and Litestream are up too
            assert time.monotonic() < deadline and shell.poll() is None, log.read_text()
            time.sleep(0.1)
        wanted = {"agentstead serve", "caddy run", "litestream replicate"}   # (backup replicate execs litestream)
        while True:
            started = {pid: _name(pid) for pid in _children(run_pid)}
            kinds = {kind for kind in wanted if any(kind in cmd for cmd in started.values())}
            if kinds == wanted or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert kinds == wanted, started
        banner = log.read_text()
        assert f"backups: Litestream replicating to {tmp_path / 'var' / 'replica'}" in banner, banner
        assert "(true;" not in banner

        os.kill(run_pid, sig)
        assert shell.wait(60) == 0   # the shell's `wait` returns once scripts/run has exited
        deadline = time.monotonic() + 30
        while not all(_gone(pid) for pid in started) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert [cmd for pid, cmd in started.items() if not _gone(pid)] == [], log.read_text()
        assert _gone(run_pid)
    finally:
        if shell.poll() is None:
            os.killpg(shell.pid, signal.SIGKILL)
            shell.wait()
