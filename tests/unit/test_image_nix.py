"""The container image (nixos/image.nix) as far as nix-instantiate can check it: the
definition evaluates with nixpkgs' lib, and a stand-in for dockerTools.buildLayeredImage
records what the image would be built from (building it needs a Nix store: `nix build
.#image`). The compose example (nixos/examples/compose.yaml) fits the image and the
app's settings."""

from __future__ import annotations

import json
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

from agentstead.settings import SETTINGS

from ..support.nix import NIX_INSTANTIATE, NIXPKGS_LIB, needs_lib

REPO = Path(__file__).resolve().parents[2]
IMAGE = REPO / "nixos" / "image.nix"
COMPOSE = REPO / "nixos" / "examples" / "compose.yaml"
VERSION = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
STORE = "/nix/store/00000000000000000000000000000000-"

# Stand-ins that keep what they are given. A script's or a file's text becomes its
# "store path", so that what the image's config points at can be read back.
HARNESS = r"""
{ libPath, imagePath, withCaddy }:
let
  lib = import libPath;
  fake = name: { type = "derivation"; inherit name; outPath = "/nix/store/00000000000000000000000000000000-${name}"; };
  agentstead = fake "agentstead-0.1.0" // { version = "0.1.0"; frontend = fake "agentstead-frontend-0.1.0"; };
  image = import imagePath {
    inherit lib withCaddy agentstead;
    dockerTools.buildLayeredImage = args: args;
    runCommand = name: env: script: fake name // { inherit script; };
    writeShellScript = name: text: fake name // { outPath = "script:" + text; };
    writeTextDir = path: text: fake (baseNameOf path) // { inherit path text; };
    cacert = fake "nss-cacert-3.117";
    litestream = fake "litestream-0.5.15";
    caddy = fake "caddy-2.10.2";
    python3Packages.python.interpreter = "/nix/store/00000000000000000000000000000000-python3-3.13/bin/python3.13";
  };
in
{
  inherit (image) name tag fakeRootCommands config;
  contents = map (c: { inherit (c) name; text = c.text or null; script = c.script or null; }) image.contents;
}
"""


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    path = tmp_path_factory.mktemp("image")
    (path / "harness.nix").write_text(HARNESS)

    def evaluate(with_caddy: bool) -> dict:
        done = subprocess.run([NIX_INSTANTIATE, "--eval", "--strict", "--json", str(path / "harness.nix"),
                               "--arg", "libPath", str(NIXPKGS_LIB), "--arg", "imagePath", str(IMAGE),
                               "--arg", "withCaddy", "true" if with_caddy else "false"],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)
    return evaluate


def env(out: dict) -> dict[str, str]:
    return dict(item.split("=", 1) for item in out["config"]["Env"])


@needs_lib
def test_the_image_holds_the_app_litestream_and_caddy_and_runs_as_its_own_user(image):
    out = image(True)
    assert (out["name"], out["tag"]) == ("agentstead", "0.1.0")
    names = [c["name"] for c in out["contents"]]
    assert names == ["agentstead-0.1.0", "litestream-0.5.15", "nss-cacert-3.117", "passwd", "group",
                     "caddy-2.10.2", "agentstead-caddyfile"]
    files = {c["name"]: c["text"] for c in out["contents"] if c["text"]}
    assert "agentstead:x:10001:10001:Agentstead:/data:/noshell" in files["passwd"].splitlines()
    assert "agentstead:x:10001:" in files["group"].splitlines()
    config = out["config"]
    assert config["User"] == "10001:10001" and config["WorkingDir"] == "/data"
    assert config["Volumes"] == {"/data": {}}
    assert "chown 10001:10001 ./data" in out["fakeRootCommands"]
    assert set(config["ExposedPorts"]) == {"47293/tcp", "80/tcp", "443/tcp"}
    # The Caddyfile where the compose example names it: the one the package installs.
    caddyfile = next(c["script"] for c in out["contents"] if c["name"] == "agentstead-caddyfile")
    assert f"{STORE}agentstead-0.1.0/share/agentstead/caddy $out/etc/caddy" in caddyfile
    assert 'install -Dm644 -t "$out/share/agentstead/caddy" caddy/*' in (REPO / "nixos" / "package.nix").read_text()


@needs_lib
def test_caddy_is_optional(image):
    out = image(False)
    assert [c["name"] for c in out["contents"]] == ["agentstead-0.1.0", "litestream-0.5.15", "nss-cacert-3.117",
                                                    "passwd", "group"]
    assert set(out["config"]["ExposedPorts"]) == {"47293/tcp"}
    assert "caddy" not in env(out)["PATH"] and "CADDY_FRONTEND_ROOT" not in env(out)
    assert "AGENTSTEAD_FRONTEND_DIR" not in env(out)     # no SPA in the image: Caddy elsewhere serves its own


@needs_lib
def test_it_migrates_then_serves_and_runs_any_other_command(image):
    config = image(True)["config"]
    assert config["Cmd"] == ["serve"]
    [entry] = config["Entrypoint"]
    script = entry.removeprefix("script:")
    migrate = script.index(f"{STORE}agentstead-0.1.0/bin/agentstead migrate")
    serve = script.index(f"exec {STORE}agentstead-0.1.0/bin/agentstead serve")
    assert migrate < serve and script.startswith("set -eu")
    assert f'exec {STORE}agentstead-0.1.0/bin/agentstead "$@"' in script


@needs_lib
def test_the_environment_is_app_settings_and_the_state_is_the_volume(image):
    values = env(image(True))
    known = {s.env for s in SETTINGS}
    assert {k for k in values if k.startswith("AGENTSTEAD_")} <= known
    assert values["AGENTSTEAD_STATE_DIR"] == "/data" and values["AGENTSTEAD_HOST"] == "0.0.0.0"
    assert values["AGENTSTEAD_BACKUP_LITESTREAM"] == f"{STORE}litestream-0.5.15/bin/litestream"
    assert values["SSL_CERT_FILE"].startswith(f"{STORE}nss-cacert-3.117/")
    assert values["CADDY_FRONTEND_ROOT"] == f"{STORE}agentstead-frontend-0.1.0"
    assert values["AGENTSTEAD_FRONTEND_DIR"] == values["CADDY_FRONTEND_ROOT"]   # the app draws pages into it
    assert values["PATH"].split(":") == [f"{STORE}agentstead-0.1.0/bin", f"{STORE}litestream-0.5.15/bin",
                                         f"{STORE}caddy-2.10.2/bin"]


@needs_lib
def test_the_health_check_asks_readyz_on_the_apps_port(image):
    out = image(True)
    check = out["config"]["Healthcheck"]
    command, interpreter, flag, code = check["Test"]
    assert (command, flag) == ("CMD", "-c") and interpreter.endswith("/bin/python3.13")
    compile(code, "healthcheck", "exec")
    assert f"http://127.0.0.1:{env(out)['AGENTSTEAD_PORT']}/readyz" in code
    assert check["Interval"] == 30 * 10**9 and check["Retries"] == 3


def test_the_compose_example_fits_the_image_and_the_settings():
    compose = yaml.safe_load(COMPOSE.read_text())
    services = compose["services"]
    assert set(services) == {"restore", "app", "litestream", "caddy"}
    for service in services.values():
        assert service["image"] == f"agentstead:{VERSION}"   # the tag `nix build .#image` loads
    known = {s.env: s for s in SETTINGS}
    app_env = services["app"]["environment"]
    for name in app_env:
        assert name.removesuffix("_FILE") in known, name
    # Secrets are files, never values.
    for name, value in app_env.items():
        setting = known[name.removesuffix("_FILE")]
        if setting.secret:
            assert name.endswith("_FILE") and value.startswith("/run/secrets/"), name
    assert services["app"]["command"] == ["serve"]
    assert services["restore"]["command"] == ["backup", "restore", "--if-missing"]
    assert services["litestream"]["command"] == ["backup", "replicate"]
    assert services["app"]["depends_on"]["restore"]["condition"] == "service_completed_successfully"
    assert services["litestream"]["depends_on"]["app"]["condition"] == "service_healthy"
    # One volume for the database, Litestream's socket and files.
    for name in ("restore", "app", "litestream"):
        assert services[name]["volumes"] == ["data:/data"]
    caddy = services["caddy"]
    assert caddy["entrypoint"][-1] == "/etc/caddy/Caddyfile"
    assert caddy["environment"]["CADDY_UPSTREAM"] == "app:47293"
    placeholders = (REPO / "caddy" / "Caddyfile").read_text()
    for name in caddy["environment"]:
        assert "{$" + name in placeholders, name
    subnet = compose["networks"]["agentstead"]["ipam"]["config"][0]["subnet"]
    assert app_env["AGENTSTEAD_TRUSTED_PROXIES"] == subnet
