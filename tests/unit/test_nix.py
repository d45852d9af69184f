"""The Nix side: every .nix file parses, flake.lock holds the shared nixpkgs
pin, and the NixOS module (evaluated with the real nixpkgs `lib` and small
stubs for the NixOS options it sets) maps options to the unit, Caddy, the
firewall and its assertions as documented.

Needs `nix-instantiate` (Debian nix-bin; .ci/run installs it) and, for the
evaluations, a checkout of nixpkgs' lib: NIXPKGS_LIB_PATH, or
/work/.cache/nixpkgs.lib (a clone of github.com/nix-community/nixpkgs.lib).
Without them those tests skip and say why. Building the package and the VM
test (nixos/tests/appliance.nix) need a real Nix store: `nix flake check`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from agentstead import settings as app_settings

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
PIN_FILE = SHARED / "nixpkgs-pin.json"
MODULE = REPO / "nixos" / "module.nix"
PACKAGE = REPO / "nixos" / "package.nix"
EXAMPLE = REPO / "nixos" / "examples" / "vps.nix"
DEFAULT_LIB_CHECKOUT = Path("/work/.cache/nixpkgs.lib")
SKIP_DIRS = {".git", ".venv", "node_modules", "var", "build", "dist", "__pycache__", ".pytest_cache"}

NIX_INSTANTIATE = shutil.which("nix-instantiate")
needs_nix = pytest.mark.skipif(
    NIX_INSTANTIATE is None,
    reason="nix-instantiate not found (apt-get install nix-bin); .nix files not checked",
)


def _nixpkgs_lib() -> Path | None:
    """The directory holding nixpkgs' lib/default.nix, or None."""
    configured = os.environ.get("NIXPKGS_LIB_PATH")
    for base in ([Path(configured)] if configured else []) + [DEFAULT_LIB_CHECKOUT]:
        for candidate in (base / "lib", base):
            if (candidate / "default.nix").is_file() and (candidate / "modules.nix").is_file():
                return candidate
    return None


NIXPKGS_LIB = _nixpkgs_lib()
needs_lib = pytest.mark.skipif(
    NIX_INSTANTIATE is None or NIXPKGS_LIB is None,
    reason="module evaluation skipped: "
    + ("nix-instantiate not found (apt-get install nix-bin)" if NIX_INSTANTIATE is None else
       "nixpkgs lib not found; set NIXPKGS_LIB_PATH to a checkout of "
       f"github.com/nix-community/nixpkgs.lib (looked in {DEFAULT_LIB_CHECKOUT})"),
)


def nix_files() -> list[Path]:
    found = []
    for dirpath, dirnames, filenames in os.walk(REPO):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.startswith("result"))
        found += [Path(dirpath, f) for f in sorted(filenames) if f.endswith(".nix")]
    return found


# ---- 1. every .nix file parses ----

def test_the_nix_files_we_ship_are_there():
    names = {p.relative_to(REPO).as_posix() for p in nix_files()}
    assert {"flake.nix", "nixos/module.nix", "nixos/package.nix", "nixos/examples/vps.nix",
            "nixos/tests/appliance.nix"} <= names


@needs_nix
@pytest.mark.parametrize("path", nix_files(), ids=lambda p: p.relative_to(REPO).as_posix())
def test_nix_file_parses(path):
    done = subprocess.run([NIX_INSTANTIATE, "--parse", str(path)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr


# ---- 2. flake.lock pins the shared nixpkgs ----

def _lock() -> dict:
    return json.loads((REPO / "flake.lock").read_text())


def test_flake_lock_is_a_v7_lock_with_one_nixpkgs_input():
    lock = _lock()
    assert lock["version"] == 7 and lock["root"] == "root"
    assert lock["nodes"]["root"] == {"inputs": {"nixpkgs": "nixpkgs"}}
    locked = lock["nodes"]["nixpkgs"]["locked"]
    assert locked["type"] == "github"
    assert re.fullmatch(r"[0-9a-f]{40}", locked["rev"])
    assert re.fullmatch(r"sha256-[A-Za-z0-9+/]{43}=", locked["narHash"])
    assert isinstance(locked["lastModified"], int)


def test_flake_lock_holds_the_shared_pin():
    if not PIN_FILE.is_file():
        pytest.skip(f"{PIN_FILE} not found: cannot compare flake.lock with the shared nixpkgs pin")
    pin = json.loads(PIN_FILE.read_text())["nixpkgs"]
    node = _lock()["nodes"]["nixpkgs"]
    assert node["locked"] == pin["locked"]
    assert node["original"] == pin["original"]


def test_flake_input_url_matches_the_lock():
    original = _lock()["nodes"]["nixpkgs"]["original"]
    url = f'github:{original["owner"]}/{original["repo"]}/{original["ref"]}'
    assert f'inputs.nixpkgs.url = "{url}";' in (REPO / "flake.nix").read_text()


# ---- 3. the module, evaluated with nixpkgs lib and stubs ----

# Just enough of NixOS for the options the module sets, with their real merge
# behaviour where it matters (lists of ports, unit options that are lists).
# Anything else a host sets (boot, fileSystems, ...) is accepted unchecked.
STUBS = r"""
{ lib, pkgs }:
let
  t = lib.types;
  unitOption = lib.mkOptionType {
    name = "systemd option";
    merge = loc: defs:
      let defs' = lib.filterOverrides defs; in
      if lib.any (def: lib.isList def.value) defs'
      then lib.concatMap (def: lib.toList def.value) defs'
      else lib.mergeEqualOption loc defs';
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
      type = t.attrsOf (t.submodule {
        freeformType = t.attrsOf t.anything;
        options.environment = lib.mkOption { type = t.attrsOf t.str; default = { }; };
        options.wantedBy = lib.mkOption { type = t.listOf t.str; default = [ ]; };
        options.serviceConfig = lib.mkOption { type = t.attrsOf unitOption; default = { }; };
      });
    };
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
  package = fake "agentstead-0.1.0" // { frontend = fake "agentstead-frontend-0.1.0"; };
  stubs = import stubsPath { inherit lib; pkgs = { callPackage = _: _: package; }; };
  config = (lib.evalModules { modules = [ stubs modulePath host ]; }).config;
in
{
  packageOut = package.outPath;
  frontend = package.frontend.outPath;
  agentstead = config.systemd.services.agentstead or null;
  caddyEnvironment = (config.systemd.services.caddy or { }).environment or null;
  caddy =
    if config.services.caddy.enable
    then { enable = true; inherit (config.services.caddy) configFile; }
    else { enable = false; };
  firewall = config.networking.firewall;
  users = config.users;
  systemdPackages = map (p: p.outPath) config.systemd.packages;
  failedAssertions = map (a: a.message) (lib.filter (a: !a.assertion) config.assertions);
}
"""

SECRET_KEY = '"/run/secrets/agentstead_secret_key"'


@pytest.fixture(scope="module")
def nix_dir(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("nix")
    (path / "stubs.nix").write_text(STUBS)
    (path / "harness.nix").write_text(HARNESS)
    (path / "package-harness.nix").write_text(PACKAGE_HARNESS)
    (path / "flake-harness.nix").write_text(FLAKE_HARNESS)
    return path


def nix_eval(nix_dir: Path, harness: str, **args: str) -> subprocess.CompletedProcess:
    """nix-instantiate --eval --strict --json <harness> with lib, the stubs and **args as --arg."""
    argv = [NIX_INSTANTIATE, "--eval", "--strict", "--json", str(nix_dir / harness),
            "--arg", "libPath", str(NIXPKGS_LIB), "--arg", "stubsPath", str(nix_dir / "stubs.nix")]
    for name, value in args.items():
        argv += ["--arg", name, value]
    # cwd: a path literal in `host` (./secret) is relative to it.
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=nix_dir)


def _run(nix_dir: Path, host: str) -> subprocess.CompletedProcess:
    return nix_eval(nix_dir, "harness.nix", modulePath=str(MODULE), host=host)


@pytest.fixture
def evaluate(nix_dir):
    """evaluate('{ services.agentstead = …; }') -> what the module set (see HARNESS)."""
    def run(host: str) -> dict:
        done = _run(nix_dir, host)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)
    return run


@pytest.fixture
def evaluation_error(nix_dir):
    """evaluation_error(host) -> stderr of an evaluation that must fail."""
    def run(host: str) -> str:
        done = _run(nix_dir, host)
        assert done.returncode != 0, f"evaluation succeeded: {done.stdout[:500]}"
        return done.stderr
    return run


def enabled(extra: str = "") -> str:
    return f"{{ services.agentstead = {{ enable = true; secretKeyFile = {SECRET_KEY}; {extra} }}; }}"


@needs_lib
def test_settings_become_agentstead_environment_variables(evaluate):
    out = evaluate(enabled('''
        domain = "agents.example.org";
        settings = {
          max_body_size = "2MiB";
          cors_origins = [ "https://a.example.org" "https://b.example.org" ];
          some_flag = true;
          other_flag = false;
          db_readers = 8;
          shutdown_grace_seconds = 2.5;
        };
    '''))
    env = out["agentstead"]["environment"]
    assert env["AGENTSTEAD_MAX_BODY_SIZE"] == "2MiB"
    assert env["AGENTSTEAD_CORS_ORIGINS"] == "https://a.example.org,https://b.example.org"
    assert env["AGENTSTEAD_SOME_FLAG"] == "true"
    assert env["AGENTSTEAD_OTHER_FLAG"] == "false"
    assert env["AGENTSTEAD_DB_READERS"] == "8"
    assert env["AGENTSTEAD_SHUTDOWN_GRACE_SECONDS"] == "2.5"
    # Declared settings and the listen options.
    assert env["AGENTSTEAD_ENV"] == "production"
    assert env["AGENTSTEAD_PUBLIC_URL"] == "https://agents.example.org"
    assert env["AGENTSTEAD_STATE_DIR"] == "/var/lib/agentstead"
    assert env["AGENTSTEAD_HOST"] == "127.0.0.1" and env["AGENTSTEAD_PORT"] == "47293"
    assert not any("SECRET" in name for name in env)
    # Caddy must accept the bodies the app accepts.
    assert out["caddyEnvironment"]["CADDY_MAX_BODY_SIZE"] == "2MiB"


@needs_lib
def test_secrets_are_load_credential_lines(evaluate):
    only_key = evaluate(enabled())
    assert only_key["agentstead"]["serviceConfig"]["LoadCredential"] == [
        "secret_key:/run/secrets/agentstead_secret_key"]
    every = evaluate(enabled('''
        openaiApiKeyFile = "/run/secrets/openai";
        oidcClientSecretFile = "/var/lib/secrets/oidc";
    '''))
    assert every["agentstead"]["serviceConfig"]["LoadCredential"] == [
        "secret_key:/run/secrets/agentstead_secret_key",
        "openai_api_key:/run/secrets/openai",
        "oidc_client_secret:/var/lib/secrets/oidc",
    ]


@needs_lib
def test_a_nix_path_literal_secret_is_refused(evaluation_error):
    # ./secret would be copied into the world-readable store if accepted.
    stderr = evaluation_error("{ services.agentstead = { enable = true; secretKeyFile = ./secret; }; }")
    assert "services.agentstead.secretKeyFile" in stderr and "is not of type" in stderr, stderr
    stderr = evaluation_error(enabled("openaiApiKeyFile = ./openai-key;"))
    assert "services.agentstead.openaiApiKeyFile" in stderr, stderr


@needs_lib
def test_secret_paths_in_the_store_or_missing_fail_assertions(evaluate):
    out = evaluate(
        '{ services.agentstead = { enable = true; secretKeyFile = "/nix/store/aaaa-key";'
        ' oidcClientSecretFile = "/nix/store/bbbb-oidc"; }; }')
    failed = "\n".join(out["failedAssertions"])
    assert "secretKeyFile is in the Nix store" in failed
    assert "oidcClientSecretFile is in the Nix store" in failed
    out = evaluate("{ services.agentstead.enable = true; }")
    assert any("secretKeyFile must name a file" in m for m in out["failedAssertions"])
    out = evaluate(enabled('settings.secret_key = "' + "x" * 40 + '";'))
    assert any("must not hold secrets" in m for m in out["failedAssertions"])


@needs_lib
def test_open_firewall_opens_80_and_443_only_when_asked(evaluate):
    closed = evaluate(enabled('domain = "agents.example.org";'))
    assert closed["firewall"] == {"allowedTCPPorts": [], "allowedUDPPorts": []}
    opened = evaluate(enabled('domain = "agents.example.org"; openFirewall = true;'))
    assert opened["firewall"] == {"allowedTCPPorts": [80, 443], "allowedUDPPorts": [443]}
    assert opened["failedAssertions"] == []


@needs_lib
def test_options_that_need_a_domain_fail_assertions_without_one(evaluate):
    out = evaluate(enabled('openFirewall = true; acmeEmail = "admin@example.org";'))
    failed = "\n".join(out["failedAssertions"])
    assert "openFirewall needs services.agentstead.domain" in failed
    assert "acmeEmail needs services.agentstead.domain" in failed
    out = evaluate(enabled('settings.env = "production";'))
    assert any("must be https in production" in m for m in out["failedAssertions"])


@needs_lib
def test_caddy_runs_the_package_caddyfile_with_its_placeholders(evaluate):
    out = evaluate(enabled('domain = "agents.example.org"; acmeEmail = "admin@example.org";'))
    assert out["caddy"] == {"enable": True, "configFile": out["packageOut"] + "/share/agentstead/Caddyfile"}
    assert out["caddyEnvironment"] == {
        "CADDY_SITE_ADDRESS": "agents.example.org",
        "CADDY_ACME_EMAIL": "admin@example.org",
        "CADDY_FRONTEND_ROOT": out["frontend"],
        "CADDY_UPSTREAM": "127.0.0.1:47293",
    }
    assert out["failedAssertions"] == []


@needs_lib
def test_without_a_domain_caddy_serves_local_http_only(evaluate):
    out = evaluate(enabled('listenAddress = "::1"; port = 48000;'))
    caddy = out["caddyEnvironment"]
    assert caddy["CADDY_SITE_ADDRESS"] == "http://localhost:47294"
    assert caddy["CADDY_BIND"] == "127.0.0.1 [::1]"
    assert caddy["CADDY_UPSTREAM"] == "[::1]:48000"
    env = out["agentstead"]["environment"]
    assert env["AGENTSTEAD_ENV"] == "development"  # production would refuse http://
    assert env["AGENTSTEAD_PUBLIC_URL"] == "http://localhost:47294"
    assert out["failedAssertions"] == []


def _caddyfile_placeholders() -> set[str]:
    return set(re.findall(r"\{\$(CADDY_[A-Z_]+)", (REPO / "caddy" / "Caddyfile").read_text()))


@needs_lib
def test_every_caddy_variable_the_module_sets_is_a_caddyfile_placeholder(evaluate):
    names = set()
    for host in (enabled('domain = "a.example.org"; settings.max_body_size = 1048576;'), enabled()):
        names |= set(evaluate(host)["caddyEnvironment"])
    assert names <= _caddyfile_placeholders()


@needs_lib
def test_the_module_extends_the_packaged_unit_and_never_replaces_it(evaluate):
    out = evaluate(enabled())
    assert out["systemdPackages"] == [out["packageOut"]]
    unit = out["agentstead"]
    assert unit["wantedBy"] == ["multi-user.target"]
    assert set(unit["serviceConfig"]) == {"LoadCredential"}  # no ExecStart, User, hardening
    assert out["users"]["users"]["agentstead"]["isSystemUser"] is True
    assert out["users"]["users"]["agentstead"]["group"] == "agentstead"
    assert "agentstead" in out["users"]["groups"]


@needs_lib
def test_disabled_sets_nothing(evaluate):
    out = evaluate("{ }")
    assert out["agentstead"] is None and out["caddy"] == {"enable": False}
    assert out["systemdPackages"] == [] and out["firewall"]["allowedTCPPorts"] == []


@needs_lib
def test_the_example_host_evaluates_without_failed_assertions(evaluate):
    out = evaluate(f"import {EXAMPLE}")
    assert out["failedAssertions"] == []
    assert out["agentstead"]["environment"]["AGENTSTEAD_PUBLIC_URL"].startswith("https://")
    assert out["firewall"]["allowedTCPPorts"] == [80, 443]
    assert all(":/nix/store" not in line for line in out["agentstead"]["serviceConfig"]["LoadCredential"])


# ---- 4. the module and the app agree on names ----

@needs_lib
def test_every_setting_the_module_sets_is_an_app_setting(evaluate):
    out = evaluate(enabled('domain = "agents.example.org";'))
    unknown = set(out["agentstead"]["environment"]) - set(app_settings.BY_ENV)
    assert not unknown, f"the app would refuse {sorted(unknown)} (not in agentstead.settings)"


@needs_lib
def test_every_secret_setting_can_be_given_as_a_credential(evaluate):
    out = evaluate(enabled('openaiApiKeyFile = "/run/a"; oidcClientSecretFile = "/run/b";'))
    credentials = {line.split(":", 1)[0] for line in out["agentstead"]["serviceConfig"]["LoadCredential"]}
    secret_settings = {s.name for s in app_settings.SETTINGS if s.secret}
    assert secret_settings <= credentials, (
        f"secret settings without a services.agentstead.*File option: {sorted(secret_settings - credentials)}")
    for name in credentials & set(app_settings.BY_NAME):
        assert app_settings.BY_NAME[name].secret, f"credential {name} is a setting not marked secret"


def test_the_unit_runs_as_the_user_the_module_creates():
    unit = (REPO / "systemd" / "agentstead.service").read_text()
    assert re.search(r"^User=agentstead$", unit, re.M) and re.search(r"^Group=agentstead$", unit, re.M)
    assert re.search(r"^ExecStart=@agentstead@/bin/agentstead serve", unit, re.M)
    assert re.search(r"^StateDirectory=agentstead$", unit, re.M)  # settings.state_dir's default
    module = MODULE.read_text()
    assert "users.users.agentstead" in module and "users.groups.agentstead" in module


# ---- the package: dependencies from pyproject.toml, the postInstall wiring ----

PACKAGE_HARNESS = r"""
{ libPath, packagePath, names }:
let
  lib = import libPath;
  fake = name: { type = "derivation"; inherit name; outPath = "/nix/store/00000000000000000000000000000000-${name}"; };
  python3Packages = lib.genAttrs names.packages (name: fake name // {
    optional-dependencies = lib.genAttrs (names.extras.${name} or [ ]) (extra: [ (fake "${name}-${extra}-dep") ]);
  }) // {
    setuptools = fake "setuptools";
    python.sitePackages = "lib/python3.13/site-packages";
    buildPythonApplication = args: args;
  };
  # The text rides in the store path, so the test can read what was written.
  writeText = name: text: fake "${name}<<${text}>>";
  runCommandLocal = name: env: script: fake name // { inherit script; };
  args = import packagePath {
    inherit lib python3Packages writeText runCommandLocal;
    commit = "0123456789abcdef0123456789abcdef01234567";
    buildTime = "2026-04-21T01:26:28Z";
  };
in
{
  inherit (args) pname version pyproject postInstall;
  dependencies = map (d: d.name) args.dependencies;
  buildSystem = map (d: d.name) args.build-system;
  mainProgram = args.meta.mainProgram;
  frontendScript = args.passthru.frontend.script;
}
"""


@needs_lib
def test_the_package_takes_its_dependencies_from_pyproject(nix_dir):
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    requirements = [Requirement(spec) for spec in project["dependencies"]]
    extras = {canonicalize_name(r.name): sorted(r.extras) for r in requirements if r.extras}
    names = {"packages": [canonicalize_name(r.name) for r in requirements], "extras": extras}
    done = nix_eval(nix_dir, "package-harness.nix", packagePath=str(PACKAGE),
                    names=f"builtins.fromJSON ''{json.dumps(names)}''")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    expected = []
    for r in requirements:
        name = canonicalize_name(r.name)
        expected += [name] + [f"{name}-{extra}-dep" for extra in sorted(r.extras)]
    assert out["dependencies"] == expected
    assert (out["pname"], out["version"], out["pyproject"]) == ("agentstead", project["version"], True)
    assert out["buildSystem"] == ["setuptools"] and out["mainProgram"] == "agentstead"
    post = out["postInstall"]
    assert "--replace-fail" in post and "@agentstead@" in post and "$out/lib/systemd/system" in post
    assert 'caddy/Caddyfile "$out/share/agentstead/Caddyfile"' in post
    assert "lib/python3.13/site-packages/agentstead/_buildinfo.json" in post
    buildinfo = json.loads(re.search(r"agentstead-buildinfo\.json<<(.*?)>>", post).group(1))
    assert buildinfo == {"commit": "0123456789abcdef0123456789abcdef01234567",
                         "build_time": "2026-04-21T01:26:28Z"}
    assert "index.html" in out["frontendScript"]


# ---- the flake's outputs, with a stub nixpkgs around the real lib ----

FLAKE_HARNESS = r"""
{ libPath, stubsPath, flakePath, source }:
let
  lib = import libPath;
  fake = name: { type = "derivation"; inherit name; outPath = "/nix/store/00000000000000000000000000000000-${name}"; };
  built = args: fake "agentstead-0.1.0" // {
    inherit args;
    frontend = fake "agentstead-frontend-0.1.0";
    meta.mainProgram = "agentstead";
  };
  pkgs = {
    callPackage = path: args: built args // { path = toString path; };
    testers.runNixOSTest = test: { inherit test; };
    mkShell = args: args;
  } // lib.genAttrs [ "python3" "caddy" "litestream" "rclone" "nodejs" ] fake;
  flake = import flakePath;
  self = source // outputs;
  outputs = flake.outputs { inherit self; nixpkgs = { inherit lib; legacyPackages.x86_64-linux = pkgs; }; };
  system = outputs.packages.x86_64-linux;
  # The flake's module in the module system, to see the package it sets.
  moduleConfig = (lib.evalModules {
    modules = [
      (import stubsPath { inherit lib pkgs; })
      outputs.nixosModules.default
    ];
  }).config.services.agentstead;
in
{
  packages = lib.attrNames system;
  buildInfo = system.agentstead.args;
  packagePath = system.agentstead.path;
  frontendIsThePackages = system.frontend.outPath == system.agentstead.frontend.outPath;
  default = system.default.outPath == system.agentstead.outPath;
  app = outputs.apps.x86_64-linux.default;
  checks = lib.attrNames outputs.checks.x86_64-linux;
  testName = outputs.checks.x86_64-linux.appliance.test.name;
  shell = map (p: p.name) outputs.devShells.x86_64-linux.default.packages;
  modulePackageArgs = moduleConfig.package.args;
}
"""


@needs_lib
@pytest.mark.parametrize("source, commit", [
    ('{ rev = "0123456789abcdef0123456789abcdef01234567"; lastModifiedDate = "20260421012628"; }',
     "0123456789abcdef0123456789abcdef01234567"),
    ('{ dirtyRev = "0123456-dirty"; lastModifiedDate = "20260421012628"; }', "0123456-dirty"),
    ('{ lastModifiedDate = "20260421012628"; }', "dirty"),
], ids=["clean", "dirty", "no-git"])
def test_flake_outputs(nix_dir, source, commit):
    done = nix_eval(nix_dir, "flake-harness.nix", flakePath=str(REPO / "flake.nix"), source=source)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    build_info = {"commit": commit, "buildTime": "2026-04-21T01:26:28Z"}
    assert out["packages"] == ["agentstead", "default", "frontend"]
    assert out["buildInfo"] == build_info
    assert out["packagePath"].endswith("/nixos/package.nix")
    assert out["frontendIsThePackages"] and out["default"]
    assert out["app"]["type"] == "app" and out["app"]["program"].endswith("-agentstead-0.1.0/bin/agentstead")
    assert "appliance" in out["checks"] and out["testName"] == "agentstead-appliance"
    assert out["shell"] == ["python3", "caddy", "litestream", "rclone", "nodejs"]
    # nixosModules.default builds the same package, with the flake's build info.
    assert out["modulePackageArgs"] == build_info
