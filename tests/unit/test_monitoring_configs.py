"""The example configurations in monitoring/ are accepted by the tools that read them."""

from __future__ import annotations

import subprocess

import yaml

from ..support.prom import MONITORING, binary


def run(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=MONITORING, capture_output=True, text=True, timeout=60)


def test_prometheus_accepts_the_example_configuration_and_its_rules():
    done = run(binary("promtool"), "check", "config", "prometheus.yml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 1 rule files found" in done.stdout


def test_the_jobs_are_the_ones_the_rules_name():
    jobs = {job["job_name"] for job in yaml.safe_load((MONITORING / "prometheus.yml").read_text())["scrape_configs"]}
    rules = (MONITORING / "agentstead.rules.yml").read_text()
    assert jobs == {"agentstead", "caddy", "agentstead-readyz", "agentstead-site"}
    for job in jobs:
        assert f'job="{job}"' in rules


def test_alertmanager_accepts_the_example():
    done = run(binary("amtool"), "check-config", "alertmanager.yml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_the_blackbox_exporter_accepts_its_modules():
    done = run(binary("prometheus-blackbox-exporter"), "--config.check", "--config.file", "blackbox.yml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Config file is ok" in done.stderr and "deprecated" not in done.stderr
    modules = yaml.safe_load((MONITORING / "blackbox.yml").read_text())["modules"]
    assert set(modules) == {"agentstead_readyz", "agentstead_site"}
