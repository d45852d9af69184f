"""Evaluating the repository's Nix files in tests: nix-instantiate (Debian nix-bin) and
nixpkgs' lib (NIXPKGS_LIB_PATH, else ../shared/nixpkgs-lib next to the checkout). Tests
that need them skip saying why, except in CI (CI=true), where a missing one fails."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
# Next to the checkout, as CI lays it out (the checkout and shared/ side by side).
DEFAULT_LIB_CHECKOUT = SHARED / "nixpkgs-lib"
IN_CI = os.environ.get("CI", "").lower() == "true"

NIX_INSTANTIATE = shutil.which("nix-instantiate")


def _nixpkgs_lib() -> Path | None:
    """The directory holding nixpkgs' lib/default.nix, or None."""
    configured = os.environ.get("NIXPKGS_LIB_PATH")
    for base in ([Path(configured)] if configured else []) + [DEFAULT_LIB_CHECKOUT]:
        for candidate in (base / "lib", base):
            if (candidate / "default.nix").is_file() and (candidate / "modules.nix").is_file():
                return candidate
    return None


NIXPKGS_LIB = _nixpkgs_lib()
_NO_NIX = "nix-instantiate not found (apt-get install nix-bin)"
_NO_LIB = ("nixpkgs lib not found; set NIXPKGS_LIB_PATH to a copy of github.com/nix-community/nixpkgs.lib "
           f"(looked in {DEFAULT_LIB_CHECKOUT})")


def _requires(reason: str | None):
    """Runs the test when reason is None; else skips saying why, or in CI (CI=true) fails:
    CI must parse and evaluate the Nix files on every run."""
    if reason is None:
        return lambda test: test
    if IN_CI:
        return pytest.mark.usefixtures("_nix_in_ci")
    return pytest.mark.skip(reason=reason)


MISSING = _NO_NIX if NIX_INSTANTIATE is None else None if NIXPKGS_LIB else _NO_LIB
needs_nix = _requires(_NO_NIX + "; .nix files not checked" if NIX_INSTANTIATE is None else None)
needs_lib = _requires(MISSING)


@pytest.fixture
def _nix_in_ci():
    """Import it into a test module that uses needs_nix/needs_lib."""
    pytest.fail(f"CI=true, and {MISSING}: the Nix files must be checked in CI", pytrace=False)


def nix_eval(harness: Path, cwd: Path, **args: str) -> subprocess.CompletedProcess:
    """nix-instantiate --eval --strict --json <harness> with libPath and **args as --arg."""
    argv = [NIX_INSTANTIATE, "--eval", "--strict", "--json", str(harness), "--arg", "libPath", str(NIXPKGS_LIB)]
    for name, value in args.items():
        argv += ["--arg", name, value]
    # cwd: a path literal in an argument (./secret) is relative to it.
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=cwd)


# Just enough of NixOS for the options the module sets, with their real merge
# behaviour where it matters (lists of ports, unit options that are lists).
# Anything else a host sets (boot, fileSystems, ...) is accepted unchecked.
STUBS = r"""
{ lib, pkgs }:
let
  t = lib.types;
  # As nixos/lib/systemd-unit-options.nix: lists (repeated lines) concatenate,
  # single values must agree, a mix is an error.
  unitOption = lib.mkOptionType {
    name = "systemd option";
    merge = loc: defs:
      let defs' = lib.filterOverrides defs; in
      if lib.isList (lib.head defs').value
      then lib.concatMap (def:
        if lib.isList def.value then def.value
        else throw "${lib.showOption loc}: a mix of list and non-list definitions") defs'
      else lib.mergeEqualOption loc defs';
  };
  unit = extra: t.submodule {
    freeformType = t.attrsOf t.anything;
    options = {
      wantedBy = lib.mkOption { type = t.listOf t.str; default = [ ]; };
      requiredBy = lib.mkOption { type = t.listOf t.str; default = [ ]; };
    } // extra;
  };
in
{
  config._module.freeformType = t.attrsOf t.anything;
  config._module.args.pkgs = pkgs;
  options = {
    assertions = lib.mkOption { type = t.listOf t.unspecified; default = [ ]; };
    services.caddy.enable = lib.mkOption { type = t.bool; default = false; };
    services.caddy.email = lib.mkOption { type = t.nullOr t.str; default = null; };
    # As nixos/modules/services/web-servers/caddy/vhost-options.nix.
    services.caddy.virtualHosts = lib.mkOption {
      default = { };
      type = t.attrsOf (t.submodule ({ name, config, ... }: {
        options = {
          hostName = lib.mkOption { type = t.str; default = name; };
          serverAliases = lib.mkOption { type = t.listOf t.str; default = [ ]; };
          listenAddresses = lib.mkOption { type = t.listOf t.str; default = [ ]; };
          useACMEHost = lib.mkOption { type = t.nullOr t.str; default = null; };
          logFormat = lib.mkOption {
            type = t.nullOr t.lines;
            default = "output file /var/log/caddy/access-${config.hostName}.log\n";
          };
          extraConfig = lib.mkOption { type = t.lines; default = ""; };
        };
      }));
    };
    environment.systemPackages = lib.mkOption { type = t.listOf t.package; default = [ ]; };
    # Set by nixos/monitoring.nix (tests/unit/test_nix_monitoring.py evaluates them in detail).
    services.prometheus = lib.mkOption { type = t.attrsOf t.anything; default = { }; };
    services.grafana = lib.mkOption { type = t.attrsOf t.anything; default = { }; };
    # Set when services.agentstead.instances > 1 (nixpkgs' services.nats: enable, port, settings).
    services.nats = lib.mkOption { type = t.attrsOf t.anything; default = { }; };
    systemd.packages = lib.mkOption { type = t.listOf t.package; default = [ ]; };
    systemd.services = lib.mkOption {
      default = { };
      type = t.attrsOf (unit {
        environment = lib.mkOption { type = t.attrsOf t.str; default = { }; };
        serviceConfig = lib.mkOption { type = t.attrsOf unitOption; default = { }; };
      });
    };
    systemd.timers = lib.mkOption {
      default = { };
      type = t.attrsOf (unit {
        timerConfig = lib.mkOption { type = t.attrsOf unitOption; default = { }; };
      });
    };
    systemd.tmpfiles.rules = lib.mkOption { type = t.listOf t.str; default = [ ]; };
    users.users = lib.mkOption { type = t.attrsOf (t.attrsOf t.anything); default = { }; };
    users.groups = lib.mkOption { type = t.attrsOf (t.attrsOf t.anything); default = { }; };
    networking.firewall.allowedTCPPorts = lib.mkOption { type = t.listOf t.port; default = [ ]; };
    networking.firewall.allowedUDPPorts = lib.mkOption { type = t.listOf t.port; default = [ ]; };
  };
}
"""


# What the module set, as JSON. The default package (pkgs.callPackage) is a
# fake derivation with a `frontend`.
HARNESS = r"""
{ libPath, stubsPath, modulePath, host }:
let
  lib = import libPath;
  fake = name: {
    type = "derivation";
    inherit name;
    outPath = "/nix/store/00000000000000000000000000000000-${name}";
  };
  package = fake "agentstead-0.1.0" // {
    frontend = fake "agentstead-frontend-0.1.0";
    litestream = fake "litestream-0.5.17" // { version = "0.5.17"; };
  };
  pkgs = {
    callPackage = _: _: package;
    # nixpkgs' own, too old for the backups (nixos-25.11).
    litestream = fake "litestream-0.3.13" // { version = "0.3.13"; };
    # For the module's command and the VM test's nodes (nixos/tests/appliance.nix): scripts keep their text.
    writeShellApplication = args: fake args.name // { inherit (args) text; };
    writers.writePython3Bin = name: args: text: fake name // { inherit text; libraries = map (l: l.name) args.libraries; };
    python3 = fake "python3" // { withPackages = f: fake "python3-env" // { packages = map (p: p.name) (f pkgs.python3Packages); }; };
    python3Packages = lib.genAttrs [ "aiohttp" ] fake;
  } // lib.genAttrs [ "curl" "coreutils" "gnugrep" "systemd" "rclone" ] fake;
  stubs = import stubsPath { inherit lib pkgs; };
  config = (lib.evalModules { modules = [ stubs modulePath host ]; }).config;
  service = name: config.systemd.services.${name} or null;
in
{
  packageOut = package.outPath;
  frontend = package.frontend.outPath;
  litestreamOut = package.litestream.outPath;
  agentstead = service "agentstead";
  litestream = service "agentstead-litestream";
  restore = service "agentstead-restore";
  drill = service "agentstead-backup-drill";
  drillTimer = config.systemd.timers.agentstead-backup-drill or null;
  tmpfiles = config.systemd.tmpfiles.rules;
  scripts = lib.listToAttrs (map (p: lib.nameValuePair p.name (p.text or null)) (config.environment.systemPackages or [ ]));
  caddy =
    if config.services.caddy.enable
    then { enable = true; inherit (config.services.caddy) email virtualHosts; }
    else { enable = false; };
  caddyService = config.systemd.services.caddy or null;
  nats = config.services.nats;
  instanceUnits = lib.filterAttrs (name: _: lib.hasPrefix "agentstead@" name) config.systemd.services;
  secrets = service "agentstead-secrets";
  llmServer = service "llm-server";
  s3 = service "s3";
  tmpfilesRules = config.systemd.tmpfiles.rules;
  caddyExtra = lib.mapAttrs (_: vhost: vhost.extraConfig) config.services.caddy.virtualHosts;
  firewall = config.networking.firewall;
  users = config.users;
  systemdPackages = map (p: p.outPath) config.systemd.packages;
  failedAssertions = map (a: a.message) (lib.filter (a: !a.assertion) config.assertions);
}
"""

SECRET_KEY = '"/run/secrets/agentstead_secret_key"'


def evaluate_module(nix_dir: Path, host: str) -> subprocess.CompletedProcess:
    """nixos/module.nix with the stubs and `host` (a module, as Nix text), through HARNESS."""
    (nix_dir / "stubs.nix").write_text(STUBS)
    (nix_dir / "harness.nix").write_text(HARNESS)
    return nix_eval(nix_dir / "harness.nix", nix_dir, stubsPath=str(nix_dir / "stubs.nix"),
                    modulePath=str(REPO / "nixos" / "module.nix"), host=host)


@pytest.fixture(scope="module")
def nix_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("nix")


@pytest.fixture
def evaluate(nix_dir):
    """evaluate('{ services.agentstead = …; }') -> what the module set (see HARNESS)."""
    def run(host: str) -> dict:
        done = evaluate_module(nix_dir, host)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)
    return run


@pytest.fixture
def evaluation_error(nix_dir):
    """evaluation_error(host) -> stderr of an evaluation that must fail."""
    def run(host: str) -> str:
        done = evaluate_module(nix_dir, host)
        assert done.returncode != 0, f"evaluation succeeded: {done.stdout[:500]}"
        return done.stderr
    return run


def enabled(extra: str = "") -> str:
    return f"{{ services.agentstead = {{ enable = true; secretKeyFile = {SECRET_KEY}; {extra} }}; }}"
