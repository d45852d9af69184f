"""Evaluating the repository's Nix files in tests: nix-instantiate (Debian nix-bin) and
nixpkgs' lib (NIXPKGS_LIB_PATH, else ../shared/nixpkgs-lib next to the checkout). Tests
that need them skip saying why, except in CI (CI=true), where a missing one fails."""

from __future__ import annotations

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
    services.caddy.configFile = lib.mkOption { type = t.path; };
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
