"""Debian's Prometheus, Alertmanager and blackbox exporter for the tests, on loopback
ports with their data in a temp dir; promtool and amtool for the checks.

.ci/run installs them (apt-get install prometheus prometheus-alertmanager
prometheus-blackbox-exporter). Without them a test skips and says why; under
CI (CI=true) it fails instead: nothing CI needs is skipped there.
"""

from __future__ import annotations

import contextlib
import json
import pathlib
import shutil
import signal
import subprocess
import time
import urllib.parse
import urllib.request


from .needs import require
from .procs import clean_env, free_port

ROOT = pathlib.Path(__file__).resolve().parents[2]
MONITORING = ROOT / "monitoring"
PACKAGES = "apt-get install prometheus prometheus-alertmanager prometheus-blackbox-exporter"


def binary(name: str) -> str:
    """The path of a Debian monitoring binary; skips (fails under CI) when it is missing."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} not found ({PACKAGES}; .ci/run installs them)"
        require(message)
    return path


class Daemon:
    """One long-running binary on a loopback port, its output in a log file."""

    name = ""
    ready_path = "/-/ready"

    def __init__(self, workdir: pathlib.Path):
        self.workdir = pathlib.Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.log_path = self.workdir / f"{self.name}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def argv(self) -> list[str]:
        raise NotImplementedError

    def start(self, timeout: float = 30.0):
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.argv(), cwd=self.workdir, env=clean_env(), stdout=log,
                                     stderr=subprocess.STDOUT)
        log.close()
        wait_for(self._ready, timeout, 0.1, f"{self.name} ready at {self.url}{self.ready_path}")
        return self

    def _ready(self) -> bool:
        """200 from the ready path (Prometheus answers 503 while it loads)."""
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.proc.returncode}: {self.logs()[-3000:]}")
        try:
            with urllib.request.urlopen(self.url + self.ready_path, timeout=2) as resp:
                return resp.status == 200
        except OSError:   # refused, or an HTTP error while it starts
            return False

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

    def get(self, path: str, **params) -> dict:
        query = ("?" + urllib.parse.urlencode(params)) if params else ""
        with urllib.request.urlopen(self.url + path + query, timeout=10) as resp:
            return json.loads(resp.read())

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class Prometheus(Daemon):
    name = "prometheus"

    def __init__(self, workdir: pathlib.Path, config: dict):
        super().__init__(workdir)
        self.config_path = self.workdir / "prometheus.yml"
        self.config_path.write_text(json.dumps(config, indent=2))   # JSON is YAML

    def argv(self) -> list[str]:
        return [binary("prometheus"), f"--config.file={self.config_path}",
                f"--storage.tsdb.path={self.workdir / 'data'}", f"--web.listen-address=127.0.0.1:{self.port}",
                "--web.enable-lifecycle", "--log.level=warn"]

    def query(self, expr: str) -> list[dict]:
        """An instant query's result vector (raises on a PromQL error)."""
        body = self.get("/api/v1/query", query=expr)
        assert body["status"] == "success", body
        return body["data"]["result"]

    def alerts(self) -> list[dict]:
        """Active alerts: pending and firing, with their labels."""
        return self.get("/api/v1/alerts")["data"]["alerts"]

    def targets(self) -> list[dict]:
        return self.get("/api/v1/targets")["data"]["activeTargets"]


class Alertmanager(Daemon):
    name = "alertmanager"

    def __init__(self, workdir: pathlib.Path, config: dict):
        super().__init__(workdir)
        self.config_path = self.workdir / "alertmanager.yml"
        self.config_path.write_text(json.dumps(config, indent=2))
        self.cluster_port = free_port()

    def argv(self) -> list[str]:
        return [binary("prometheus-alertmanager"), f"--config.file={self.config_path}",
                f"--storage.path={self.workdir / 'data'}", f"--web.listen-address=127.0.0.1:{self.port}",
                # One instance: no gossip (it would listen on every interface by default).
                "--cluster.listen-address=", "--log.level=warn"]


class Blackbox(Daemon):
    name = "blackbox"
    ready_path = "/"

    def __init__(self, workdir: pathlib.Path, config_text: str):
        super().__init__(workdir)
        self.config_path = self.workdir / "blackbox.yml"
        self.config_path.write_text(config_text)

    def argv(self) -> list[str]:
        return [binary("prometheus-blackbox-exporter"), f"--config.file={self.config_path}",
                f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"]


def wait_for(predicate, timeout: float, interval: float = 0.5, what: str = "condition"):
    """The predicate's first truthy value, polled; TimeoutError naming `what` and the last value."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise TimeoutError(f"{what} not reached within {timeout}s (last: {last!r})")
