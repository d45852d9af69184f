"""services.agentstead.monitoring (nixos/monitoring.nix), evaluated with nixpkgs' lib and
stubs of the services.prometheus and services.grafana options it sets (their names,
types and defaults as in nixpkgs): the scrape jobs are the ones monitoring/prometheus.yml
and the alert rules expect, pointed at this host; the rules, the blackbox modules and the
dashboard are the repository's files."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from ..support.nix import NIX_INSTANTIATE, NIXPKGS_LIB, REPO, SECRET_KEY, STUBS, needs_lib

MODULE = REPO / "nixos" / "module.nix"

REPO = Path(__file__).resolve().parents[2]
MONITORING = REPO / "monitoring"

GENERIC = """    services.prometheus = lib.mkOption { type = t.attrsOf t.anything; default = { }; };
    services.grafana = lib.mkOption { type = t.attrsOf t.anything; default = { }; };
"""
TYPED = r"""    services.prometheus = {
      enable = lib.mkOption { type = t.bool; default = false; };
      listenAddress = lib.mkOption { type = t.str; default = "0.0.0.0"; };
      port = lib.mkOption { type = t.port; default = 9090; };
      globalConfig.evaluation_interval = lib.mkOption { type = t.str; default = "1m"; };
      scrapeConfigs = lib.mkOption { type = t.listOf (t.attrsOf t.anything); default = [ ]; };
      ruleFiles = lib.mkOption { type = t.listOf t.path; default = [ ]; };
      exporters.blackbox = {
        enable = lib.mkOption { type = t.bool; default = false; };
        listenAddress = lib.mkOption { type = t.str; default = "0.0.0.0"; };
        port = lib.mkOption { type = t.port; default = 9115; };
        configFile = lib.mkOption { type = t.path; };
      };
    };
    services.grafana = {
      enable = lib.mkOption { type = t.bool; default = false; };
      provision.enable = lib.mkOption { type = t.bool; default = false; };
      provision.dashboards.settings = lib.mkOption { type = t.attrsOf t.anything; default = { }; };
      provision.datasources.settings = lib.mkOption { type = t.attrsOf t.anything; default = { }; };
    };
"""

HARNESS = r"""
{ libPath, stubsPath, modulePath, host }:
let
  lib = import libPath;
  fake = name: { type = "derivation"; inherit name; outPath = "/nix/store/00000000000000000000000000000000-${name}"; };
  pkgs = { callPackage = _: _: fake "agentstead-0.1.0" // { frontend = fake "agentstead-frontend-0.1.0"; };
           litestream = fake "litestream-0.5.15"; };
  config = (lib.evalModules { modules = [ (import stubsPath { inherit lib pkgs; }) modulePath host ]; }).config;
  prometheus = config.services.prometheus;
  grafana = config.services.grafana;
  # toString: the paths as written, not copied into a store.
  providers = map (p: p // { options.path = toString p.options.path; }) (grafana.provision.dashboards.settings.providers or [ ]);
in
{
  prometheus = {
    inherit (prometheus) enable listenAddress scrapeConfigs;
    evaluationInterval = prometheus.globalConfig.evaluation_interval;
    ruleFiles = map toString prometheus.ruleFiles;
  };
  blackbox = with prometheus.exporters.blackbox;
    if enable then { inherit enable listenAddress port; configFile = toString configFile; } else { inherit enable; };
  grafana = {
    inherit (grafana) enable;
    provision = { inherit (grafana.provision) enable; inherit providers;
                  datasources = grafana.provision.datasources.settings.datasources or [ ]; };
  };
  failedAssertions = map (a: a.message) (lib.filter (a: !a.assertion) config.assertions);
}
"""


@pytest.fixture(scope="module")
def nix_dir(tmp_path_factory) -> Path:
    assert GENERIC in STUBS, "test_nix.STUBS changed: update the stubs replaced here"
    path = tmp_path_factory.mktemp("nix-monitoring")
    (path / "stubs.nix").write_text(STUBS.replace(GENERIC, TYPED))
    (path / "harness.nix").write_text(HARNESS)
    return path


@pytest.fixture
def evaluate(nix_dir):
    def run(extra: str) -> dict:
        host = f"{{ services.agentstead = {{ enable = true; secretKeyFile = {SECRET_KEY}; {extra} }}; }}"
        done = subprocess.run([NIX_INSTANTIATE, "--eval", "--strict", "--json", str(nix_dir / "harness.nix"),
                               "--arg", "libPath", str(NIXPKGS_LIB), "--arg", "stubsPath", str(nix_dir / "stubs.nix"),
                               "--arg", "modulePath", str(MODULE), "--arg", "host", host],
                              capture_output=True, text=True, timeout=120, cwd=nix_dir)
        assert done.returncode == 0, done.stderr
        out = json.loads(done.stdout)
        assert out["failedAssertions"] == []
        return out
    return run


def jobs(out: dict) -> dict[str, dict]:
    return {job["job_name"]: job for job in out["prometheus"]["scrapeConfigs"]}


@needs_lib
def test_off_by_default(evaluate):
    out = evaluate('domain = "agents.example.org";')
    assert out["prometheus"]["enable"] is False and out["prometheus"]["scrapeConfigs"] == []
    assert out["blackbox"] == {"enable": False} and out["grafana"]["enable"] is False


@needs_lib
def test_the_jobs_are_the_example_configurations_pointed_at_this_host(evaluate):
    out = evaluate('domain = "agents.example.org"; monitoring.enable = true;')
    assert out["prometheus"]["enable"] is True
    assert out["prometheus"]["listenAddress"] == "127.0.0.1"   # the UI is not public
    assert out["prometheus"]["evaluationInterval"] == "15s"     # not NixOS' 1m: alerts on time
    assert out["prometheus"]["ruleFiles"] == [str(MONITORING / "agentstead.rules.yml")]
    assert out["blackbox"] == {"enable": True, "listenAddress": "127.0.0.1", "port": 9115,
                               "configFile": str(MONITORING / "blackbox.yml")}
    example = {job["job_name"]: job for job in yaml.safe_load((MONITORING / "prometheus.yml").read_text())["scrape_configs"]}
    got = jobs(out)
    assert set(got) == set(example)
    targets = {"agentstead": "127.0.0.1:47293", "caddy": "127.0.0.1:2019",
               "agentstead-readyz": "http://127.0.0.1:47293/readyz",
               "agentstead-site": "https://agents.example.org/healthz"}
    for name, job in got.items():
        assert job["static_configs"] == [{"targets": [targets[name]]}]
        assert job["scrape_interval"] == "15s"
        want = example[name]
        assert job.get("metrics_path", "/metrics") == want.get("metrics_path", "/metrics")
        assert job.get("params", {}) == want.get("params", {})
        assert job.get("relabel_configs", []) == want.get("relabel_configs", []), name   # the blackbox pattern


@needs_lib
def test_without_a_domain_there_is_no_site_probe_and_addresses_follow_the_app(evaluate):
    out = evaluate('listenAddress = "::1"; port = 8123; monitoring = { enable = true; scrapeInterval = "30s"; '
                   'caddyAdmin = "127.0.0.1:2020"; };')
    got = jobs(out)
    assert set(got) == {"agentstead", "caddy", "agentstead-readyz"}
    assert got["agentstead"]["static_configs"] == [{"targets": ["[::1]:8123"]}]
    assert got["agentstead-readyz"]["static_configs"] == [{"targets": ["http://[::1]:8123/readyz"]}]
    assert got["caddy"]["static_configs"] == [{"targets": ["127.0.0.1:2020"]}]
    assert {job["scrape_interval"] for job in got.values()} == {"30s"}
    # A site probe can be named without a domain (e.g. a name Caddy gets from elsewhere).
    out = evaluate('monitoring = { enable = true; siteUrl = "https://agents.internal/healthz"; };')
    assert jobs(out)["agentstead-site"]["static_configs"] == [{"targets": ["https://agents.internal/healthz"]}]


@needs_lib
def test_grafana_gets_the_dashboard_and_a_datasource_when_asked(evaluate):
    assert evaluate("monitoring.enable = true;")["grafana"]["enable"] is False
    out = evaluate("monitoring = { enable = true; grafana.enable = true; };")
    grafana = out["grafana"]
    assert grafana["enable"] is True and grafana["provision"]["enable"] is True
    [provider] = grafana["provision"]["providers"]
    assert provider["options"]["path"] == str(MONITORING / "grafana")
    assert (MONITORING / "grafana" / "agentstead.json").is_file()
    [source] = grafana["provision"]["datasources"]
    assert source["type"] == "prometheus" and source["url"] == "http://127.0.0.1:9090"


VM_HARNESS = r"""
{ libPath, stubsPath, modulePath, testPath }:
let
  lib = import libPath;
  fake = name: { type = "derivation"; inherit name; outPath = "/nix/store/00000000000000000000000000000000-${name}"; };
  pkgs = { callPackage = _: _: fake "agentstead-0.1.0" // { frontend = fake "agentstead-frontend-0.1.0"; };
           litestream = fake "litestream-0.5.15"; curl = fake "curl"; };
  test = import testPath { agentsteadModule = modulePath; };
  config = (lib.evalModules { modules = [ (import stubsPath { inherit lib pkgs; }) test.nodes.machine ]; }).config;
in
{
  inherit (test) name;
  jobs = map (j: j.job_name) config.services.prometheus.scrapeConfigs;
  intervals = lib.unique (map (j: j.scrape_interval) config.services.prometheus.scrapeConfigs);
  grafana = config.services.grafana.enable;
  failedAssertions = map (a: a.message) (lib.filter (a: !a.assertion) config.assertions);
}
"""


@needs_lib
def test_the_vm_tests_node_evaluates(nix_dir):
    (nix_dir / "vm-harness.nix").write_text(VM_HARNESS)
    done = subprocess.run([NIX_INSTANTIATE, "--eval", "--strict", "--json", str(nix_dir / "vm-harness.nix"),
                           "--arg", "libPath", str(NIXPKGS_LIB), "--arg", "stubsPath", str(nix_dir / "stubs.nix"),
                           "--arg", "modulePath", str(MODULE),
                           "--arg", "testPath", str(REPO / "nixos" / "tests" / "monitoring.nix")],
                          capture_output=True, text=True, timeout=120, cwd=nix_dir)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out == {"name": "agentstead-monitoring", "jobs": ["agentstead", "caddy", "agentstead-readyz"],
                   "intervals": ["2s"], "grafana": True, "failedAssertions": []}
