"""The alert rules and the dashboard against a real Prometheus (Debian's), scraping a
running `agentstead serve` with Litestream replicating to an S3 server, Caddy in front
(tls internal) and the blackbox exporter probing /readyz and the HTTPS site, with
alerts going to a real Alertmanager and on to a webhook.

The configuration is the shipped one (monitoring/prometheus.yml, blackbox.yml, the
rules unchanged, with their real `for` durations), pointed at these processes and
scraping every second. Each test breaks something real and waits for the matching
alert to go pending (its expression holds on live data) or firing, then mends it.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import json
import os
import pathlib
import shutil
import subprocess
import threading
import time

import aiohttp
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from ..support.caddy import Caddy, build_spa
from ..support.llm_server import Fault, LLMServer
from ..support.procs import VENV_BIN, Server, clean_env, free_port, login_link
from ..support.prom import MONITORING, Alertmanager, Blackbox, Prometheus, binary, wait_for
from ..support.promql import EXAMPLE_VALUES, dashboard_queries, metric_names, with_values
from ..support.s3 import S3Server
from .test_backup import unit_command

pytestmark = pytest.mark.timeout(180)

AGENTSTEAD = str(VENV_BIN / "agentstead")
ORIGIN = "http://localhost:47294"
MIN_FREE = 48 * 1024 * 1024
TMPFS_SIZE = "160m"


# ---- the stack --------------------------------------------------------------------

class Webhook:
    """Alertmanager's webhook receiver: remembers every notification posted to it."""

    def __init__(self):
        self.received: list[dict] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.received.append(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def alerts(self, name: str, status: str) -> list[dict]:
        return [a for note in self.received for a in note["alerts"]
                if a["labels"]["alertname"] == name and a["status"] == status]

    def stop(self):
        self.server.shutdown()


class LLMThread:
    """The tests' OpenAI-compatible server on an event loop of its own thread."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        self.server = LLMServer(api_key="sk-test", models=("gpt-test",))
        self.run(self.server.start())

    def run(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    def stop(self):
        self.run(self.server.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)


def _mount_tmpfs(path: pathlib.Path) -> bool:
    """A small tmpfs for the state directory, so that the test can fill it. Root only."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE},mode=0700", "tmpfs", str(path)],
                          capture_output=True, text=True)
    return done.returncode == 0


class Stack:
    def __init__(self, tmp: pathlib.Path):
        self.tmp = tmp
        self.state = tmp / "state"
        self.tmpfs = False
        self.closers: list = []

    def start(self) -> "Stack":
        for name in ("prometheus", "prometheus-alertmanager", "prometheus-blackbox-exporter", "promtool"):
            binary(name)
        self.tmpfs = _mount_tmpfs(self.state)
        if self.tmpfs:
            self.closers.append(lambda: subprocess.run(["umount", "-l", str(self.state)], capture_output=True))
        self.s3 = S3Server(self.tmp / "s3").start()
        self.closers.append(self.s3.stop)
        self.llm = LLMThread()
        self.closers.append(self.llm.stop)
        key = self.tmp / "llm_key"
        key.write_text("sk-test")
        providers = [{"name": "local", "base_url": self.llm.server.base_url, "models": ["gpt-test"],
                      "api_key_file": str(key)}]
        self.settings_env = {
            **self.s3.settings_env("agentstead", self.tmp / "creds"),
            "AGENTSTEAD_BACKUP_MAX_LAG": "3s",
            "AGENTSTEAD_MIN_FREE_DISK": str(MIN_FREE),
            "AGENTSTEAD_LLM_PROVIDERS": json.dumps(providers),
            "AGENTSTEAD_LLM_MAX_RETRIES": "0",
        }
        self.env = clean_env(AGENTSTEAD_STATE_DIR=str(self.state), **self.settings_env)
        self.app = Server(self.state, **self.settings_env)
        self.app.log_path = self.tmp / "serve.log"   # not on the tmpfs the test fills
        self.app.start()
        self.closers.append(self.app.stop)
        self.start_litestream()
        spa = self.tmp / "spa"
        build_spa(spa)
        self.caddy = Caddy(self.tmp / "caddy", upstream=f"127.0.0.1:{self.app.port}", frontend_root=spa,
                           tls=True).start()
        self.closers.append(self.caddy.stop)
        self.webhook = Webhook()
        self.closers.append(self.webhook.stop)
        self.alertmanager = Alertmanager(self.tmp / "alertmanager", {
            "route": {"receiver": "webhook", "group_by": ["alertname"], "group_wait": "1s",
                      "group_interval": "1s", "repeat_interval": "1h"},
            "receivers": [{"name": "webhook", "webhook_configs": [{"url": self.webhook.url, "send_resolved": True}]}],
        }).start()
        self.closers.append(self.alertmanager.stop)
        self.blackbox = Blackbox(self.tmp / "blackbox", self.blackbox_config()).start()
        self.closers.append(self.blackbox.stop)
        self.prometheus = Prometheus(self.tmp / "prometheus", self.prometheus_config()).start()
        self.closers.append(self.prometheus.stop)
        return self

    # The shipped configurations, pointed at this stack.

    def blackbox_config(self) -> str:
        config = yaml.safe_load((MONITORING / "blackbox.yml").read_text())
        # Trust Caddy's local CA (tls internal), as a browser of the test would.
        config["modules"]["agentstead_site"]["http"]["tls_config"] = {"ca_file": str(self.caddy.root_ca)}
        return yaml.safe_dump(config)

    def prometheus_config(self) -> dict:
        config = yaml.safe_load((MONITORING / "prometheus.yml").read_text())
        config["global"] = {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"}
        config["rule_files"] = [str(MONITORING / "agentstead.rules.yml")]
        config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] = [f"127.0.0.1:{self.alertmanager.port}"]
        targets = {
            "agentstead": f"127.0.0.1:{self.app.port}",
            "caddy": self.caddy.admin,
            "agentstead-readyz": f"http://127.0.0.1:{self.app.port}/readyz",
            "agentstead-site": f"{self.caddy.url}/healthz",
        }
        jobs = {job["job_name"]: job for job in config["scrape_configs"]}
        assert set(jobs) == set(targets), "monitoring/prometheus.yml has other jobs than the rules expect"
        for name, job in jobs.items():
            job["static_configs"] = [{"targets": [targets[name]]}]
            for relabel in job.get("relabel_configs", []):
                if relabel.get("target_label") == "__address__":
                    relabel["replacement"] = f"127.0.0.1:{self.blackbox.port}"
        return config

    def start_litestream(self) -> None:
        log = open(self.tmp / "litestream.log", "ab")
        self.litestream = subprocess.Popen(unit_command("agentstead-litestream.service"), env=self.env,
                                           stdout=log, stderr=subprocess.STDOUT)
        log.close()
        wait_for(lambda: (check := self.readyz()["checks"].get("backup", {}))
                 .get("litestream") == "replicating" and check.get("last_sync_at"), 60, 0.2, "litestream replicating")

    def stop_litestream(self) -> None:
        if self.litestream.poll() is None:
            self.litestream.terminate()
            try:
                self.litestream.wait(10)
            except subprocess.TimeoutExpired:
                self.litestream.kill()
                self.litestream.wait()

    def readyz(self) -> dict:
        import urllib.error
        import urllib.request
        try:
            with urllib.request.urlopen(self.app.url + "/readyz", timeout=10) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return json.loads(exc.read())

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([AGENTSTEAD, *args], env=self.env, capture_output=True, text=True, timeout=120)

    # Alerts as Prometheus sees them.

    def alert(self, name: str, **labels) -> dict | None:
        """The active (pending or firing) alert of that name whose labels include `labels`."""
        for alert in self.prometheus.alerts():
            if alert["labels"]["alertname"] == name and labels.items() <= alert["labels"].items():
                return alert
        return None

    def wait_alert(self, name: str, states=("pending", "firing"), timeout: float = 45, **labels) -> dict:
        return wait_for(lambda: (a := self.alert(name, **labels)) and a["state"] in states and a, timeout, 0.5,
                        f"{name} {'/'.join(states)} ({self.active()})")

    def wait_quiet(self, name: str, timeout: float = 45) -> None:
        wait_for(lambda: self.alert(name) is None, timeout, 0.5, f"{name} no longer active ({self.active()})")

    def active(self) -> list[str]:
        return sorted(f'{a["labels"]["alertname"]}:{a["state"]}' for a in self.prometheus.alerts())

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.stop_litestream()
        for close in reversed(self.closers):
            with contextlib.suppress(Exception):
                close()


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    s = Stack(tmp_path_factory.mktemp("prometheus"))
    try:
        s.start()
        yield s
    finally:
        s.stop()


def _families(text: str) -> set[str]:
    """Every name a query may use for what this exposition holds."""
    names = set()
    suffixes = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count", "_created"),
                "summary": ("_sum", "_count", "_created")}
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        names.update(family.name + s for s in suffixes.get(family.type, ()))
        names.update(sample.name for sample in family.samples)
    return names


def _get(url: str) -> str:
    import urllib.request
    with urllib.request.urlopen(url, timeout=10) as resp:
        return resp.read().decode()


# ---- the tests ----------------------------------------------------------------------

def test_every_target_is_up_every_rule_evaluates_and_only_the_certificate_alerts(stack):
    wait_for(lambda: (ts := stack.prometheus.targets()) and len(ts) == 4 and all(t["health"] == "up" for t in ts),
             30, 0.5, "all four targets up")
    for job in ("agentstead-readyz", "agentstead-site"):
        wait_for(lambda: [r for r in stack.prometheus.query(f'probe_success{{job="{job}"}}') if r["value"][1] == "1"],
                 30, 0.5, f"{job} probe succeeding")
    wait_for(lambda: stack.prometheus.query("agentstead_backup_max_lag_seconds"), 10, 0.5, "backup gauges")
    groups = wait_for(lambda: (g := stack.prometheus.get("/api/v1/rules")["data"]["groups"])
                      and all(r.get("lastEvaluation", "").startswith("20") for r in g[0]["rules"]) and g,
                      30, 0.5, "every rule evaluated once")
    rules = groups[0]["rules"]
    assert len(rules) == 17
    assert [r["name"] for r in rules if r["health"] != "ok"] == [], [r.get("lastError") for r in rules]
    # Caddy's internal CA issues 12-hour certificates: the expiry alert is right to fire.
    cert = stack.wait_alert("AgentsteadCertificateExpiring", timeout=20)
    assert 0 < float(cert["value"]) < 86400
    # Nothing else, but what a loaded test machine may cause on its own.
    load = {"AgentsteadCertificateExpiring", "AgentsteadEventLoopLag", "AgentsteadSlowRequests"}
    assert {a["labels"]["alertname"] for a in stack.prometheus.alerts()} <= load, stack.active()


def test_a_failed_drill_fires_and_reaches_alertmanager_then_a_good_one_clears_it(stack):
    assert stack.alert("AgentsteadRestoreDrillFailed") is None
    stack.stop_litestream()
    stack.wait_alert("AgentsteadLitestreamDown", timeout=20)
    drill = stack.cli("backup", "drill", "--json")
    assert drill.returncode == 1 and "litestream" in json.loads(drill.stdout)["reason"], drill.stdout
    fired = stack.wait_alert("AgentsteadRestoreDrillFailed", states=("firing",), timeout=20)
    assert fired["labels"]["severity"] == "critical"
    wait_for(lambda: stack.webhook.alerts("AgentsteadRestoreDrillFailed", "firing"), 30, 0.5,
             "the failed drill's notification at the webhook")
    note = stack.webhook.alerts("AgentsteadRestoreDrillFailed", "firing")[0]
    assert note["annotations"]["runbook_url"].endswith("#agentsteadrestoredrillfailed")

    stack.start_litestream()
    drill = stack.cli("backup", "drill", "--json")
    assert drill.returncode == 0, drill.stdout + drill.stderr
    stack.wait_quiet("AgentsteadRestoreDrillFailed")
    stack.wait_quiet("AgentsteadLitestreamDown")
    wait_for(lambda: stack.webhook.alerts("AgentsteadRestoreDrillFailed", "resolved"), 30, 0.5,
             "the resolved notification at the webhook")


def test_storage_outage_makes_the_backup_lag_alert_pending(stack):
    assert stack.alert("AgentsteadBackupLagging") is None
    stack.s3.stop()
    try:
        lagging = stack.wait_alert("AgentsteadBackupLagging", timeout=30)
        assert float(lagging["value"]) > 3
        assert stack.readyz()["status"] == "degraded"   # the app serves on
        assert stack.alert("AgentsteadNotReady") is None
    finally:
        stack.s3.start()
    stack.wait_quiet("AgentsteadBackupLagging", timeout=120)


async def _chat_runs(stack: Stack, n: int) -> list[dict]:
    """n chat runs through the API as a signed-in person would, one scrape apart, each to its end."""
    link = login_link(stack.state, f"ops{time.monotonic_ns()}@example.org", **stack.settings_env)
    async with aiohttp.ClientSession(base_url=stack.app.url, cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        assert (await http.get(link, allow_redirects=False)).status == 302
        me = await (await http.get("/api/me")).json()
        unsafe = {"Origin": ORIGIN, "X-CSRF-Token": me["csrf_token"]}
        agent = await (await http.post("/api/agents", json={"name": "A", "tools": []}, headers=unsafe)).json()
        runs = []
        for i in range(n):
            thread = await (await http.post("/api/threads", json={"agent_id": agent["id"]}, headers=unsafe)).json()
            run = await (await http.post(f"/api/threads/{thread['id']}/messages", json={"content": f"q{i}"},
                                         headers=unsafe)).json()
            async with asyncio.timeout(30):
                while run["status"] not in ("succeeded", "failed", "cancelled"):
                    await asyncio.sleep(0.1)
                    run = await (await http.get(f"/api/runs/{run['id']}")).json()
            runs.append(run)
            await asyncio.sleep(1.2)   # a scrape apart: Prometheus sees the counter grow, not appear at n
        return runs


def test_a_failing_model_provider_makes_the_run_failure_alert_pending(stack):
    assert stack.alert("AgentsteadRunsFailing") is None
    stack.llm.server.faults = [Fault("status", status=500, message="upstream exploded")] * 5
    runs = asyncio.run(_chat_runs(stack, 5))
    assert [(r["status"], r["error"]["code"]) for r in runs] == [("failed", "provider_error")] * 5
    failing = stack.wait_alert("AgentsteadRunsFailing", timeout=30, code="provider_error")
    assert float(failing["value"]) == pytest.approx(1.0)


def test_every_dashboard_query_runs_and_names_only_exported_metrics(stack):
    exported = (_families(_get(stack.app.url + "/metrics")) | _families(_get(f"http://{stack.caddy.admin}/metrics"))
                | {"up"})
    for module, target in (("agentstead_readyz", stack.app.url + "/readyz"),
                           ("agentstead_site", stack.caddy.url + "/healthz")):
        exported |= _families(_get(f"{stack.blackbox.url}/probe?module={module}&target={target}"))
    rules = yaml.safe_load((MONITORING / "agentstead.rules.yml").read_text())["groups"][0]["rules"]
    named = {(where, name) for where, expr in dashboard_queries() for name in metric_names(expr)}
    named |= {(rule["alert"], name) for rule in rules for name in metric_names(rule["expr"])}
    assert {(where, name) for where, name in named if name not in exported} == set()
    assert len({name for _, name in named}) >= 25
    values = {**EXAMPLE_VALUES, "instance": f"127.0.0.1:{stack.app.port}"}
    # Every panel has data once there was a run that succeeded, one that failed, and a drill
    # (the tests above leave them; alone, this test makes its own).
    if stack.readyz()["checks"]["backup"]["last_drill"] is None:
        assert stack.cli("backup", "drill").returncode == 0
    if not stack.prometheus.query('agentstead_runs_finished_total{status="failed"}'):
        stack.llm.server.faults = [Fault("status", status=500)]
        asyncio.run(_chat_runs(stack, 2))   # the first fails, the second succeeds
        wait_for(lambda: stack.prometheus.query('agentstead_runs_finished_total{status="failed"}'), 10, 0.5,
                 "the failed run in Prometheus")
    empty = []
    for where, expr in dashboard_queries():
        if not stack.prometheus.query(with_values(expr, values)):   # raises on a PromQL error
            empty.append(where)
    assert empty == [], empty


def test_a_full_disk_makes_the_floor_and_readyz_alerts_pending(stack):
    if not stack.tmpfs:
        pytest.skip("cannot mount a tmpfs to fill (needs root); the floor alert is covered by promtool only")
    assert stack.alert("AgentsteadDiskBelowFloor") is None and stack.alert("AgentsteadNotReady") is None
    filler = stack.state / "filler"
    free = shutil.disk_usage(stack.state).free
    with open(filler, "wb") as fh:
        os.posix_fallocate(fh.fileno(), 0, free - MIN_FREE // 2)
    try:
        below = stack.wait_alert("AgentsteadDiskBelowFloor", timeout=30)
        assert float(below["value"]) < MIN_FREE
        stack.wait_alert("AgentsteadNotReady", timeout=30)
        assert stack.readyz()["failing"] == ["disk"]
    finally:
        filler.unlink()
    stack.wait_quiet("AgentsteadDiskBelowFloor")
    stack.wait_quiet("AgentsteadNotReady")


def test_stopping_the_app_makes_down_not_ready_and_site_down_pending(stack):
    assert stack.alert("AgentsteadDown") is None
    stack.stop_litestream()   # its drill and lag are the app's metrics: gone with it
    stack.app.stop()
    try:
        stack.wait_alert("AgentsteadDown", timeout=20)
        stack.wait_alert("AgentsteadNotReady", timeout=20)
        stack.wait_alert("AgentsteadSiteDown", timeout=30)   # Caddy answers 502 without the app
    finally:
        stack.app.start()
        stack.start_litestream()
    stack.wait_quiet("AgentsteadDown")
