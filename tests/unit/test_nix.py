"""The Nix side: every .nix file parses, flake.lock holds the shared nixpkgs
pin, and the NixOS module (evaluated with the real nixpkgs `lib` and small
stubs for the NixOS options it sets) maps options to the unit, Caddy, the
firewall and its assertions as documented.

Needs `nix-instantiate` (Debian nix-bin; .ci/run installs it) and, for the
evaluations, nixpkgs' lib: NIXPKGS_LIB_PATH, else ../shared/nixpkgs-lib next to
the checkout (a copy of github.com/nix-community/nixpkgs.lib). Without them
those tests skip and say why, except in CI (CI=true), where a missing
nix-instantiate or lib fails the run. Building the package and the VM test
(nixos/tests/appliance.nix) need a real Nix store: `nix flake check`.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from agentstead import settings as app_settings

from ..support.nix import (NIX_INSTANTIATE, REPO, SECRET_KEY, SHARED, _nix_in_ci, enabled, evaluate,  # noqa: F401
                           evaluation_error, needs_lib, needs_nix, nix_dir)

PIN_FILE = SHARED / "nixpkgs-pin.json"
MODULE = REPO / "nixos" / "module.nix"
EXAMPLE = REPO / "nixos" / "examples" / "vps.nix"
SKIP_DIRS = {".git", ".venv", "node_modules", "var", "build", "dist", "__pycache__", ".pytest_cache"}


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
    assert out["caddy"]["virtualHosts"]["agents.example.org"]["extraConfig"].rstrip().endswith(" 2MiB")


GOOGLE = '{ name = "google"; issuer = "https://accounts.google.com"; client_id = "123.apps.googleusercontent.com"; }'
GITHUB = '{ name = "git-hub"; issuer = "https://token.actions.example.org/gh"; client_id = "gh"; scopes = [ "openid" "email" ]; }'
OPENAI = '{ name = "openai"; base_url = "https://api.openai.com/v1"; models = [ "gpt-4o-mini" "gpt-4o" ]; }'
OLLAMA = '{ name = "ollama"; base_url = "http://127.0.0.1:11434/v1"; }'
PROVIDERS = f"settings.oidc_providers = [ {GOOGLE} {GITHUB} ]; settings.llm_providers = [ {OPENAI} {OLLAMA} ];"
PROVIDER_SECRETS = '''
    oidcClientSecretFiles = { google = "/run/secrets/google-oidc"; git-hub = "/var/lib/secrets/gh"; };
    llmApiKeyFiles.openai = "/run/secrets/openai";
'''


@needs_lib
def test_secrets_are_load_credential_lines(evaluate):
    only_key = evaluate(enabled())
    assert only_key["agentstead"]["serviceConfig"]["LoadCredential"] == [
        "secret_key:/run/secrets/agentstead_secret_key"]
    every = evaluate(enabled(PROVIDERS + PROVIDER_SECRETS))
    assert every["failedAssertions"] == []
    # One credential per provider, named as the app looks for it (oidc_<name>_client_secret,
    # llm_<name>_api_key); attribute names come sorted. ollama needs no key.
    assert every["agentstead"]["serviceConfig"]["LoadCredential"] == [
        "secret_key:/run/secrets/agentstead_secret_key",
        "oidc_git-hub_client_secret:/var/lib/secrets/gh",
        "oidc_google_client_secret:/run/secrets/google-oidc",
        "llm_openai_api_key:/run/secrets/openai",
    ]
    assert not any("SECRET" in name or "API_KEY" in name for name in every["agentstead"]["environment"])


@needs_lib
def test_providers_are_json_in_the_environment_and_the_app_accepts_them(evaluate):
    out = evaluate(enabled(PROVIDERS + PROVIDER_SECRETS + 'settings.http_get_allowed_hosts = [ "a.example.org" "b.example.org" ];'))
    env = out["agentstead"]["environment"]
    oidc = json.loads(env["AGENTSTEAD_OIDC_PROVIDERS"])
    assert [p["name"] for p in oidc] == ["google", "git-hub"]  # the order given
    assert oidc[0] == {"name": "google", "issuer": "https://accounts.google.com",
                       "client_id": "123.apps.googleusercontent.com"}
    assert oidc[1]["scopes"] == ["openid", "email"]
    llm = json.loads(env["AGENTSTEAD_LLM_PROVIDERS"])
    assert llm[0] == {"name": "openai", "base_url": "https://api.openai.com/v1", "models": ["gpt-4o-mini", "gpt-4o"]}
    # The app's own parsers take what the module wrote.
    assert [p["name"] for p in app_settings.BY_ENV["AGENTSTEAD_OIDC_PROVIDERS"].parse(env["AGENTSTEAD_OIDC_PROVIDERS"])] == ["google", "git-hub"]
    assert [p["name"] for p in app_settings.BY_ENV["AGENTSTEAD_LLM_PROVIDERS"].parse(env["AGENTSTEAD_LLM_PROVIDERS"])] == ["openai", "ollama"]
    # A list of strings is still comma-joined.
    assert env["AGENTSTEAD_HTTP_GET_ALLOWED_HOSTS"] == "a.example.org,b.example.org"
    # No providers: no variable at all (not an empty one).
    env = evaluate(enabled())["agentstead"]["environment"]
    assert "AGENTSTEAD_OIDC_PROVIDERS" not in env and "AGENTSTEAD_LLM_PROVIDERS" not in env


@needs_lib
def test_a_provider_name_must_fit_a_credential_name(evaluation_error):
    stderr = evaluation_error(enabled('settings.oidc_providers = [ { name = "Google Accounts"; issuer = "https://a"; client_id = "x"; } ];'))
    assert "services.agentstead.settings.oidc_providers" in stderr and "is not of type" in stderr, stderr


@needs_lib
def test_a_secret_for_an_unknown_provider_or_a_provider_without_secret_fail_assertions(evaluate):
    out = evaluate(enabled(f'settings.oidc_providers = [ {GOOGLE} ];'
                           ' oidcClientSecretFiles = { google = "/run/g"; gogle = "/run/typo"; };'
                           ' llmApiKeyFiles.openai = "/run/o";'))
    failed = "\n".join(out["failedAssertions"])
    assert "services.agentstead.oidcClientSecretFiles has `gogle`, which services.agentstead.settings.oidc_providers" \
        " does not list (it lists: google)" in failed, failed
    assert "services.agentstead.llmApiKeyFiles has `openai`, which services.agentstead.settings.llm_providers" \
        " does not list (it lists: none)" in failed, failed
    assert len(out["failedAssertions"]) == 2, failed
    # The app refuses to start with an OIDC provider that has no secret: say so at build time.
    out = evaluate(enabled(f'settings.oidc_providers = [ {GOOGLE} {GITHUB} ]; oidcClientSecretFiles.google = "/run/g";'))
    assert out["failedAssertions"] == [
        "services.agentstead.settings.oidc_providers: provider `git-hub` has no client secret; set "
        'services.agentstead.oidcClientSecretFiles.git-hub = "/run/secrets/agentstead-git-hub-oidc"; '
        "(a file outside the Nix store) or the provider's client_secret_file."]
    # client_secret_file in the entry is the app's other way; it is accepted (outside the store).
    out = evaluate(enabled('settings.oidc_providers = [ { name = "google"; issuer = "https://a.example.org";'
                           ' client_id = "x"; client_secret_file = "/etc/agentstead/google"; } ];'))
    assert out["failedAssertions"] == []
    out = evaluate(enabled('settings.oidc_providers = [ { name = "google"; issuer = "https://a.example.org";'
                           ' client_id = "x"; client_secret_file = "/nix/store/cccc-google"; } ];'))
    assert any("client_secret_file is in the Nix store" in m for m in out["failedAssertions"])
    # A secret value in a provider entry would be in the store.
    out = evaluate(enabled('settings.llm_providers = [ { name = "openai"; base_url = "https://a"; api_key = "sk-x"; } ];'))
    assert any("must not hold secrets" in m for m in out["failedAssertions"])


@needs_lib
def test_a_nix_path_literal_secret_is_refused(evaluation_error):
    # ./secret would be copied into the world-readable store if accepted.
    stderr = evaluation_error("{ services.agentstead = { enable = true; secretKeyFile = ./secret; }; }")
    assert "services.agentstead.secretKeyFile" in stderr and "is not of type" in stderr, stderr
    stderr = evaluation_error(enabled("llmApiKeyFiles.openai = ./openai-key;"))
    assert "services.agentstead.llmApiKeyFiles.openai" in stderr and "is not of type" in stderr, stderr
    stderr = evaluation_error(enabled("oidcClientSecretFiles.google = ./google;"))
    assert "services.agentstead.oidcClientSecretFiles.google" in stderr, stderr
    stderr = evaluation_error(enabled("backup.credentialsFile = ./s3-keys;"))
    assert "services.agentstead.backup.credentialsFile" in stderr and "is not of type" in stderr, stderr


@needs_lib
def test_secret_paths_in_the_store_or_missing_fail_assertions(evaluate):
    out = evaluate(
        '{ services.agentstead = { enable = true; secretKeyFile = "/nix/store/aaaa-key";'
        f' settings.oidc_providers = [ {GOOGLE} ]; oidcClientSecretFiles.google = "/nix/store/bbbb-oidc"; }}; }}')
    failed = "\n".join(out["failedAssertions"])
    assert "secretKeyFile is in the Nix store" in failed
    assert "oidcClientSecretFiles.google is in the Nix store (/nix/store/bbbb-oidc)" in failed
    assert len(out["failedAssertions"]) == 2, failed
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


def _site(out: dict, address: str) -> tuple[str, list[str]]:
    """The virtual host's import of the package's site.caddy: (share dir, its three arguments)."""
    vhost = out["caddy"]["virtualHosts"][address]
    match = re.fullmatch(r"import (\S+)/site\.caddy (\S+) (\S+) (\S+)\n", vhost["extraConfig"])
    assert match, vhost["extraConfig"]
    return match.group(1), list(match.groups()[1:])


@needs_lib
def test_caddy_serves_the_package_site_as_one_virtual_host_of_the_hosts_caddy(evaluate):
    out = evaluate(enabled('domain = "agents.example.org"; acmeEmail = "admin@example.org";'))
    assert out["failedAssertions"] == []
    assert out["caddy"]["enable"] and list(out["caddy"]["virtualHosts"]) == ["agents.example.org"]
    share, args = _site(out, "agents.example.org")
    assert share == out["packageOut"] + "/share/agentstead/caddy"
    assert args == [out["frontend"], "127.0.0.1:47293", "1MiB"]  # the SPA, the app, the body limit
    vhost = out["caddy"]["virtualHosts"]["agents.example.org"]
    assert vhost["listenAddresses"] == [] and vhost["useACMEHost"] is None  # Caddy's own ACME
    assert vhost["logFormat"] == f"output stderr\nimport {share}/log-format.caddy\n"
    assert out["caddy"]["email"] == "admin@example.org"
    # Nothing global: no Caddyfile of ours, no environment for the host's Caddy.
    assert out["caddyService"] is None


@needs_lib
def test_other_sites_and_the_hosts_caddy_settings_stay(evaluate):
    """A ten-line host: Agentstead next to another site on the same Caddy."""
    out = evaluate(f'''{{ lib, ... }}: {{
      services.agentstead = {{ enable = true; domain = "agents.example.org"; secretKeyFile = {SECRET_KEY};
                              acmeEmail = "agents@example.org"; initialAdminEmail = "me@example.org"; }};
      services.caddy.email = "hostmaster@example.org";
      services.caddy.virtualHosts."blog.example.org".extraConfig = "root * /srv/blog\\nfile_server";
      services.caddy.virtualHosts."agents.example.org".logFormat = lib.mkForce "output discard";
    }}''')
    assert out["failedAssertions"] == []
    hosts = out["caddy"]["virtualHosts"]
    assert sorted(hosts) == ["agents.example.org", "blog.example.org"]
    assert hosts["blog.example.org"]["extraConfig"] == "root * /srv/blog\nfile_server"
    assert out["caddy"]["email"] == "hostmaster@example.org"  # the host's, not acmeEmail
    assert hosts["agents.example.org"]["logFormat"] == "output discard"
    assert out["agentstead"]["environment"]["AGENTSTEAD_INITIAL_ADMIN_EMAIL"] == "me@example.org"


@needs_lib
def test_a_certificate_from_security_acme(evaluate):
    out = evaluate(enabled('domain = "agents.example.org"; useACMEHost = "example.org";'))
    assert out["caddy"]["virtualHosts"]["agents.example.org"]["useACMEHost"] == "example.org"
    assert out["failedAssertions"] == []
    out = evaluate(enabled('useACMEHost = "example.org";'))
    assert out["failedAssertions"] == [
        "services.agentstead.useACMEHost needs services.agentstead.domain: the certificate is for that name."]


@needs_lib
def test_the_spa_caddy_serves_can_be_a_directory_on_the_host(evaluate, evaluation_error):
    out = evaluate(enabled('frontendPackage = "/srv/agentstead-spa"; settings.max_body_size = "2MiB";'))
    assert _site(out, "http://localhost:47294")[1] == ["/srv/agentstead-spa", "127.0.0.1:47293", "2MiB"]
    # the app draws first pages from the same SPA (docs/architecture.md, First page); "" turns that off
    assert out["agentstead"]["environment"]["AGENTSTEAD_FRONTEND_DIR"] == "/srv/agentstead-spa"
    out = evaluate(enabled(""))      # by default the package's own build, for Caddy and the app alike
    frontend = _site(out, "http://localhost:47294")[1][0]
    assert frontend.endswith("-agentstead-frontend-0.1.0")
    assert out["agentstead"]["environment"]["AGENTSTEAD_FRONTEND_DIR"] == frontend
    out = evaluate(enabled('settings.frontend_dir = "";'))
    assert out["agentstead"]["environment"]["AGENTSTEAD_FRONTEND_DIR"] == ""
    assert out["failedAssertions"] == []
    for bad in ('"srv/agentstead-spa"', '"/srv/agentstead spa"'):
        stderr = evaluation_error(enabled(f"frontendPackage = {bad};"))
        assert "services.agentstead.frontendPackage" in stderr and "absolute path without spaces" in stderr, stderr


@needs_lib
def test_without_a_domain_caddy_serves_local_http_only(evaluate):
    out = evaluate(enabled('listenAddress = "::1"; port = 48000;'))
    vhost = out["caddy"]["virtualHosts"]["http://localhost:47294"]
    assert vhost["listenAddresses"] == ["127.0.0.1", "[::1]"]
    assert _site(out, "http://localhost:47294")[1][1] == "[::1]:48000"
    env = out["agentstead"]["environment"]
    assert env["AGENTSTEAD_ENV"] == "development"  # production would refuse http://
    assert env["AGENTSTEAD_PUBLIC_URL"] == "http://localhost:47294"
    assert out["failedAssertions"] == [] and out["caddy"]["email"] is None


@needs_lib
@pytest.mark.parametrize("domain", ['"https://agents.example.org"', '"agents.example.org/"',
                                    '"agents.example.org:8443"'])
def test_a_domain_with_a_scheme_port_or_path_is_refused_saying_what_to_give(evaluation_error, domain):
    stderr = evaluation_error(enabled(f"domain = {domain};"))
    assert "services.agentstead.domain" in stderr and "host name without a scheme, port or path" in stderr, stderr


def test_site_caddy_takes_the_three_arguments_the_module_and_the_caddyfile_pass():
    site = (REPO / "caddy" / "site.caddy").read_text()
    assert sorted(set(re.findall(r"\{args\[(\d+)\]\}", site))) == ["0", "1", "2"]
    assert "{$" not in re.sub(r"#.*", "", site)  # no environment placeholders: the host's Caddy has none
    imports = re.findall(r"^\s*import site\.caddy (.+)$", (REPO / "caddy" / "Caddyfile").read_text(), re.M)
    assert len(imports) == 1 and len(imports[0].split()) == 4   # and the instances past the first
    assert imports[0].split()[3] == "{$CADDY_MORE_UPSTREAMS}" and "{args[3:]}" in site


@needs_lib
def test_the_module_extends_the_packaged_unit_and_never_replaces_it(evaluate):
    out = evaluate(enabled())
    assert out["systemdPackages"] == [out["packageOut"]]
    unit = out["agentstead"]
    assert unit["wantedBy"] == ["multi-user.target"]
    assert set(unit["serviceConfig"]) == {"LoadCredential", "CPUAffinity"}  # no ExecStart, User, hardening
    assert out["users"]["users"]["agentstead"]["isSystemUser"] is True
    assert out["users"]["users"]["agentstead"]["group"] == "agentstead"
    assert "agentstead" in out["users"]["groups"]


@needs_lib
def test_cpu_affinity_pins_the_app_unit_to_cpu_0_unless_told_otherwise(evaluate, evaluation_error):
    assert evaluate(enabled())["agentstead"]["serviceConfig"]["CPUAffinity"] == "0"
    assert "CPUAffinity" not in evaluate(enabled("cpuAffinity = null;"))["agentstead"]["serviceConfig"]
    out = evaluate(enabled("cpuAffinity = [ 0 2 ]; backup = { enable = true; localPath = \"/mnt/b\"; };"))
    assert out["agentstead"]["serviceConfig"]["CPUAffinity"] == "0 2"
    assert "LoadCredential" in out["agentstead"]["serviceConfig"]
    assert "CPUAffinity" not in out["litestream"]["serviceConfig"]   # Litestream is not pinned
    for bad in ("[ ]", "[ (-1) ]", "0", '[ "0" ]'):
        assert "services.agentstead.cpuAffinity" in evaluation_error(enabled(f"cpuAffinity = {bad};")), bad


@needs_lib
def test_disabled_sets_nothing(evaluate):
    out = evaluate("{ }")
    assert out["agentstead"] is None and out["caddy"] == {"enable": False}
    assert out["systemdPackages"] == [] and out["firewall"]["allowedTCPPorts"] == []


@needs_lib
def test_the_example_host_evaluates_without_failed_assertions(evaluate):
    out = evaluate(f"import {EXAMPLE}")
    assert out["failedAssertions"] == []
    assert sorted(out["caddy"]["virtualHosts"]) == ["agents.example.org", "www.example.org"]  # Caddy shared
    env = out["agentstead"]["environment"]
    assert env["AGENTSTEAD_INITIAL_ADMIN_EMAIL"] == "admin@example.org"
    assert env["AGENTSTEAD_PUBLIC_URL"].startswith("https://")
    assert out["firewall"]["allowedTCPPorts"] == [80, 443]
    # Sign-in with google and one model provider, each with its secret as a credential.
    assert [p["name"] for p in app_settings.BY_ENV["AGENTSTEAD_OIDC_PROVIDERS"].parse(env["AGENTSTEAD_OIDC_PROVIDERS"])] == ["google"]
    assert len(app_settings.BY_ENV["AGENTSTEAD_LLM_PROVIDERS"].parse(env["AGENTSTEAD_LLM_PROVIDERS"])) == 1
    credentials = [line.split(":", 1)[0] for line in out["agentstead"]["serviceConfig"]["LoadCredential"]]
    assert "oidc_google_client_secret" in credentials
    assert any(c.startswith("llm_") and c.endswith("_api_key") for c in credentials)
    # Backups to a bucket, with the keys on the backup units.
    assert env["AGENTSTEAD_BACKUP_ENABLED"] == "true" and env["AGENTSTEAD_BACKUP_S3_BUCKET"]
    assert out["litestream"]["wantedBy"] == ["multi-user.target"]
    assert out["drillTimer"]["wantedBy"] == ["timers.target"]
    lines = [line for unit in ("agentstead", "litestream", "restore", "drill")
             for line in out[unit]["serviceConfig"].get("LoadCredential", [])]
    assert {line.split(":", 1)[0] for line in out["litestream"]["serviceConfig"]["LoadCredential"]} == {
        "backup_s3_access_key_id", "backup_s3_secret_access_key"}
    assert all(":/nix/store" not in line for line in lines)


# ---- backups: the package's Litestream, restore and drill units, extended ----

S3_BACKUP = """
    backup = {
      enable = true;
      s3 = { bucket = "agentstead-backups"; endpoint = "https://s3.example.org"; region = "eu-central-003"; };
      credentialsFile = "/run/secrets/agentstead-s3";
    };
"""
LOCAL_BACKUP = 'backup = { enable = true; localPath = "/mnt/backup/agentstead"; };'
BACKUP_UNITS = ("litestream", "restore", "drill")


@needs_lib
def test_backups_disabled_set_no_backup_environment_and_want_nothing(evaluate):
    out = evaluate(enabled(
        'backup = { s3.bucket = "b"; credentialsFile = "/run/s3"; localPath = "/mnt/b"; };'))
    assert out["failedAssertions"] == []
    assert not [name for name in out["agentstead"]["environment"] if name.startswith("AGENTSTEAD_BACKUP_")]
    assert out["agentstead"]["serviceConfig"]["LoadCredential"] == ["secret_key:/run/secrets/agentstead_secret_key"]
    # The units are installed by the package, but nothing wants or extends them.
    assert out["litestream"] is None and out["restore"] is None and out["drill"] is None
    assert out["drillTimer"] is None and out["tmpfiles"] == []


@needs_lib
def test_backups_to_s3_extend_the_backup_units(evaluate):
    out = evaluate(enabled('domain = "agents.example.org";' + PROVIDERS + PROVIDER_SECRETS + S3_BACKUP))
    assert out["failedAssertions"] == []
    backup_env = {
        "AGENTSTEAD_BACKUP_ENABLED": "true",
        "AGENTSTEAD_BACKUP_S3_BUCKET": "agentstead-backups",
        "AGENTSTEAD_BACKUP_S3_ENDPOINT": "https://s3.example.org",
        "AGENTSTEAD_BACKUP_S3_PATH": "agentstead",
        "AGENTSTEAD_BACKUP_S3_REGION": "eu-central-003",
        "AGENTSTEAD_BACKUP_SYNC_INTERVAL": "1s",
        "AGENTSTEAD_BACKUP_LITESTREAM": out["litestreamOut"] + "/bin/litestream",
    }
    app_env = out["agentstead"]["environment"]
    assert {k: v for k, v in app_env.items() if k.startswith("AGENTSTEAD_BACKUP_")} == backup_env
    for unit in BACKUP_UNITS:
        # The backup settings and where the database is; not the app's other settings
        # (the providers would make the backup commands demand their secrets).
        assert out[unit]["environment"] == backup_env | {
            "AGENTSTEAD_STATE_DIR": "/var/lib/agentstead", "AGENTSTEAD_LOG_FORMAT": "json"}, unit
        # One credentials file, loaded under both names, on the units that talk to the bucket.
        assert out[unit]["serviceConfig"] == {"LoadCredential": [
            "backup_s3_access_key_id:/run/secrets/agentstead-s3",
            "backup_s3_secret_access_key:/run/secrets/agentstead-s3",
        ]}, unit
    # The app only asks Litestream's control socket: it gets no S3 key.
    assert not any(line.startswith("backup_s3") for line in out["agentstead"]["serviceConfig"]["LoadCredential"])
    assert out["litestream"]["wantedBy"] == ["multi-user.target"]
    # restoreOnFirstBoot (the default): the app needs the restore to have run (or found nothing).
    assert out["restore"]["requiredBy"] == ["agentstead.service"] and out["restore"]["wantedBy"] == []
    assert out["drill"]["wantedBy"] == [] and out["drill"]["requiredBy"] == []
    timer = out["drillTimer"]
    assert timer["wantedBy"] == ["timers.target"]
    # An empty OnCalendar= first clears the packaged "daily" in the drop-in.
    assert timer["timerConfig"] == {"OnCalendar": ["", "daily"]}
    assert out["tmpfiles"] == []
    # The module only adds: no ExecStart, User or hardening on any unit.
    for unit in ("agentstead",) + BACKUP_UNITS:
        assert not {"ExecStart", "User", "ProtectSystem"} & set(out[unit]["serviceConfig"]), unit


@needs_lib
def test_backup_options_and_their_settings(evaluate):
    out = evaluate(enabled("""
        backup = {
          enable = true;
          s3 = { bucket = "b"; path = "hosts/agents"; region = "auto"; forcePathStyle = false; };
          syncInterval = 0.5;
          restoreOnFirstBoot = false;
          drill.schedule = "Sun *-*-* 04:00:00";
        };
    """))
    assert out["failedAssertions"] == []
    env = out["litestream"]["environment"]
    assert env["AGENTSTEAD_BACKUP_S3_PATH"] == "hosts/agents"
    assert env["AGENTSTEAD_BACKUP_S3_REGION"] == "auto"
    assert env["AGENTSTEAD_BACKUP_S3_FORCE_PATH_STYLE"] == "false"
    assert env["AGENTSTEAD_BACKUP_SYNC_INTERVAL"] == "0.5"
    assert "AGENTSTEAD_BACKUP_S3_ENDPOINT" not in env and "AGENTSTEAD_BACKUP_LOCAL_PATH" not in env
    # No credentials file: the AWS default chain (instance role); no LoadCredential at all.
    assert "LoadCredential" not in out["litestream"]["serviceConfig"]
    # Without restoreOnFirstBoot nothing pulls the restore in; it keeps its settings for a start by hand.
    assert out["restore"]["requiredBy"] == [] and out["restore"]["wantedBy"] == []
    assert out["restore"]["environment"] == env
    assert out["drillTimer"]["timerConfig"] == {"OnCalendar": ["", "Sun *-*-* 04:00:00"]}
    # The app parses every value the module wrote.
    for name, value in out["agentstead"]["environment"].items():
        app_settings.BY_ENV[name].parse(value)
    assert app_settings.BY_ENV["AGENTSTEAD_BACKUP_SYNC_INTERVAL"].parse("0.5") == 0.5
    assert evaluate(enabled(LOCAL_BACKUP + 'backup.syncInterval = 10;'))["litestream"]["environment"][
        "AGENTSTEAD_BACKUP_SYNC_INTERVAL"] == "10"


@needs_lib
@pytest.mark.parametrize("value", ['"1 minute"', '"-1s"', '"fast"', "0", "7200"])
def test_a_sync_interval_the_app_would_refuse_is_refused(evaluation_error, value):
    stderr = evaluation_error(enabled(LOCAL_BACKUP + f"backup.syncInterval = {value};"))
    assert "services.agentstead.backup.syncInterval" in stderr and "is not of type" in stderr, stderr


@needs_lib
def test_a_local_replica_is_writable_for_the_backup_units(evaluate, evaluation_error):
    out = evaluate(enabled(LOCAL_BACKUP))
    assert out["failedAssertions"] == []
    for unit in BACKUP_UNITS:
        env = out[unit]["environment"]
        assert env["AGENTSTEAD_BACKUP_LOCAL_PATH"] == "/mnt/backup/agentstead", unit
        assert not [name for name in env if name.startswith("AGENTSTEAD_BACKUP_S3_")], unit
        assert out[unit]["serviceConfig"] == {"ReadWritePaths": ["/mnt/backup/agentstead"]}, unit
    # The app writes nowhere else: its unit stays as it was.
    assert "ReadWritePaths" not in out["agentstead"]["serviceConfig"]
    # ReadWritePaths= fails a unit whose directory is missing: tmpfiles makes it.
    assert out["tmpfiles"] == ["d /mnt/backup/agentstead 0700 agentstead agentstead - -"]
    # The replica directory must be absolute (the units' working directory is /).
    stderr = evaluation_error(enabled('backup = { enable = true; localPath = "backup"; };'))
    assert "services.agentstead.backup.localPath" in stderr and "is not of type" in stderr, stderr


@needs_lib
@pytest.mark.parametrize("backup, message", [
    ("backup.enable = true;", "services.agentstead.backup needs a replica: set backup.s3.bucket"),
    ('backup = { enable = true; s3.bucket = "b"; localPath = "/mnt/b"; };',
     'services.agentstead.backup has two replicas (backup.s3.bucket = "b" and backup.localPath = "/mnt/b"); set only one.'),
    ('backup = { enable = true; s3.endpoint = "https://s3.example.org"; localPath = "/mnt/b"; };',
     "services.agentstead.backup.s3.endpoint needs services.agentstead.backup.s3.bucket."),
    ('backup = { enable = true; s3.bucket = "b"; credentialsFile = "/nix/store/dddd-s3"; };',
     "services.agentstead.backup.credentialsFile is in the Nix store (/nix/store/dddd-s3)"),
    ('backup.enable = true; backup.s3.bucket = "b"; settings.backup_s3_secret_access_key = "x";',
     "services.agentstead.settings must not hold secrets"),
], ids=["neither", "both", "endpoint-without-bucket", "keys-in-store", "keys-in-settings"])
def test_backup_assertions(evaluate, backup, message):
    failed = evaluate(enabled(backup))["failedAssertions"]
    assert len([m for m in failed if message in m]) == 1, failed
    assert len(failed) == 1, failed


TRACING = """
    tracing = { endpoint = "https://cloud.langfuse.example/api/public/otel/v1/traces";
                headersFile = "/run/secrets/agentstead-tracing-headers"; sampleRatio = 0.25; };
"""


@needs_lib
def test_tracing_is_off_unless_an_endpoint_is_set_and_its_headers_are_a_credential(evaluate, evaluation_error):
    off = evaluate(enabled())
    assert not any(name.startswith("AGENTSTEAD_TRACING_") for name in off["agentstead"]["environment"])
    on = evaluate(enabled(TRACING))
    assert on["failedAssertions"] == []
    env = on["agentstead"]["environment"]
    assert env["AGENTSTEAD_TRACING_ENDPOINT"] == "https://cloud.langfuse.example/api/public/otel/v1/traces"
    assert env["AGENTSTEAD_TRACING_SERVICE_NAME"] == "agentstead"
    assert env["AGENTSTEAD_TRACING_SAMPLE_RATIO"] == "0.25"
    assert "AGENTSTEAD_TRACING_HEADERS" not in env   # a secret: a credential, never the environment
    assert "tracing_headers:/run/secrets/agentstead-tracing-headers" in \
        on["agentstead"]["serviceConfig"]["LoadCredential"]
    for name, value in env.items():   # the app parses every value the module wrote
        app_settings.BY_ENV[name].parse(value)
    assert "tracing.endpoint" in evaluation_error(enabled('tracing.endpoint = "collector:4318";'))
    assert "sampleRatio" in evaluation_error(enabled('tracing = { endpoint = "http://127.0.0.1:4318/v1/traces"; '
                                                     'sampleRatio = 2; };'))


# ---- 4. the module and the app agree on names ----

@needs_lib
@pytest.mark.parametrize("backup", [S3_BACKUP, LOCAL_BACKUP], ids=["s3", "local"])
def test_every_setting_the_module_sets_is_an_app_setting(evaluate, backup):
    out = evaluate(enabled('domain = "agents.example.org";' + PROVIDERS + PROVIDER_SECRETS + backup + TRACING))
    for unit in ("agentstead", "litestream", "restore", "drill"):
        unknown = set(out[unit]["environment"]) - set(app_settings.BY_ENV)
        assert not unknown, f"the app would refuse {sorted(unknown)} in {unit} (not in agentstead.settings)"


@needs_lib
def test_every_secret_setting_can_be_given_as_a_credential(evaluate):
    # secret_key through secretKeyFile, backup_s3_* through backup.credentialsFile; the
    # per-provider secrets are not rows of SETTINGS (see the provider tests above).
    out = evaluate(enabled(PROVIDERS + PROVIDER_SECRETS + S3_BACKUP + TRACING))
    lines = [line for unit in ("agentstead", "litestream", "restore", "drill")
             for line in out[unit]["serviceConfig"].get("LoadCredential", [])]
    credentials = {line.split(":", 1)[0] for line in lines}
    secret_settings = {s.name for s in app_settings.SETTINGS if s.secret}
    assert secret_settings <= credentials, (
        f"secret settings without a services.agentstead.*File option: {sorted(secret_settings - credentials)}")
    for name in credentials & set(app_settings.BY_NAME):
        assert app_settings.BY_NAME[name].secret, f"credential {name} is a setting not marked secret"
    per_provider = credentials - set(app_settings.BY_NAME)
    assert per_provider == {"oidc_google_client_secret", "oidc_git-hub_client_secret", "llm_openai_api_key"}


@needs_lib
def test_the_app_loads_what_the_module_gives_each_unit(evaluate, tmp_path):
    """The example host's environment and credentials, as systemd would hand them over,
    through the app's own settings loader: the names on both sides agree."""
    out = evaluate(f"import {EXAMPLE}")
    files = {
        "/var/lib/secrets/agentstead/secret_key": "k" * 48 + "\n",
        "/run/secrets/agentstead-google-oidc": "google-client-secret\n",
        "/run/secrets/agentstead-openai-api-key": "sk-test\n",
        "/run/secrets/agentstead-s3": "AWS_ACCESS_KEY_ID=AKIAEXAMPLE\nAWS_SECRET_ACCESS_KEY=s3-secret\n",
    }

    def environ(unit: str) -> dict:
        credentials = tmp_path / unit
        credentials.mkdir()
        for line in out[unit]["serviceConfig"].get("LoadCredential", []):
            name, path = line.split(":", 1)
            (credentials / name).write_text(files[path])
        return out[unit]["environment"] | {"CREDENTIALS_DIRECTORY": str(credentials)}

    app = app_settings.load(environ("agentstead"))
    assert app.production and len(app.secret_key) == 48
    assert [(p["name"], p["client_secret"]) for p in app.oidc_providers] == [("google", "google-client-secret")]
    assert [(p["name"], p["api_key"]) for p in app.llm_providers] == [("openai", "sk-test")]
    assert app.backup_enabled and app.backup_s3_bucket == "agentstead-backups"
    assert app.backup_s3_access_key_id == ""  # the app never gets the bucket's keys
    for unit in BACKUP_UNITS:
        backup = app_settings.load(environ(unit))
        # One KEY=value file, read as both keys.
        assert (backup.backup_s3_access_key_id, backup.backup_s3_secret_access_key) == ("AKIAEXAMPLE", "s3-secret")
        assert backup.db_file == app.db_file and backup.backup_s3_endpoint == app.backup_s3_endpoint, unit
        assert backup.oidc_providers == () and backup.secret_key == "", unit


def test_the_unit_runs_as_the_user_the_module_creates():
    unit = (REPO / "systemd" / "agentstead.service").read_text()
    assert re.search(r"^User=agentstead$", unit, re.M) and re.search(r"^Group=agentstead$", unit, re.M)
    assert re.search(r"^ExecStart=@agentstead@/bin/agentstead serve", unit, re.M)
    assert re.search(r"^StateDirectory=agentstead$", unit, re.M)  # settings.state_dir's default
    module = MODULE.read_text()
    assert "users.users.agentstead" in module and "users.groups.agentstead" in module


@needs_lib
def test_mcp_servers_are_json_their_headers_a_credential_never_a_value(evaluate):
    server = '{ name = "files"; url = "http://127.0.0.1:8931/mcp"; tools = [ "read_file" ]; timeout_seconds = 5; }'
    out = evaluate(enabled(f'settings.mcp_servers = [ {server} ]; mcpHeadersFiles.files = "/run/secrets/files";'))
    assert out["failedAssertions"] == []
    env = out["agentstead"]["environment"]
    (entry,) = app_settings._mcp_servers(env["AGENTSTEAD_MCP_SERVERS"])   # the app takes what the module wrote
    assert entry["name"] == "files" and entry["tools"] == ("read_file",) and entry["timeout_seconds"] == 5
    assert "mcp_files_headers:/run/secrets/files" in out["agentstead"]["serviceConfig"]["LoadCredential"]
    out = evaluate(enabled('settings.mcp_servers = [ { name = "files"; url = "http://x/mcp";'
                           ' headers = "Authorization: Bearer x"; } ]; mcpHeadersFiles.typo = "/run/t";'))
    failed = "\n".join(out["failedAssertions"])
    assert "must not hold secrets" in failed and "mcpHeadersFiles has `typo`" in failed, failed
    out = evaluate(enabled('settings.mcp_servers = [ { name = "files"; url = "http://x/mcp";'
                           ' headers_file = "/nix/store/dddd-h"; } ];'))
    assert any("headers_file is in the Nix store" in m for m in out["failedAssertions"])


@needs_lib
def test_one_instance_is_the_default_with_no_nats(evaluate):
    out = evaluate(enabled())
    assert out["agentstead"]["wantedBy"] == ["multi-user.target"]
    assert out["nats"] == {} and out["instanceUnits"] == {}
    assert "AGENTSTEAD_NATS_URL" not in out["agentstead"]["environment"]


@needs_lib
def test_several_instances_are_template_units_behind_caddy_sharing_nats(evaluate):
    out = evaluate(enabled('instances = 3; cpuAffinity = [ 1 2 ]; natsPort = 4333;'))
    assert out["failedAssertions"] == []
    assert out["agentstead"] is None   # the single unit is not started
    assert out["nats"] == {"enable": True, "port": 4333, "settings": {"host": "127.0.0.1"}}
    units = out["instanceUnits"]
    assert sorted(units) == ["agentstead@1", "agentstead@2", "agentstead@3"]
    for i, (port, cpu) in enumerate([(47293, "1"), (47303, "2"), (47313, "1")], start=1):
        unit = units[f"agentstead@{i}"]
        assert unit["overrideStrategy"] == "asDropin" and unit["wantedBy"] == ["multi-user.target"]
        assert unit["after"] == ["nats.service"]
        env = unit["environment"]
        assert env["AGENTSTEAD_PORT"] == str(port) and env["AGENTSTEAD_NATS_URL"] == "nats://127.0.0.1:4333"
        assert env["AGENTSTEAD_INSTANCES"] == "3"
        assert unit["serviceConfig"]["CPUAffinity"] == cpu
    words = out["caddy"]["virtualHosts"]["http://localhost:47294"]["extraConfig"].split()
    assert words[0] == "import" and words[1].endswith("/site.caddy")   # site.caddy's args[3:]: the others
    assert words[3:] == ["127.0.0.1:47293", "1MiB", "127.0.0.1:47303", "127.0.0.1:47313"]


@needs_lib
def test_chat_image_origins_reach_the_apps_environment_and_caddys_img_src(evaluate):
    out = evaluate(enabled('''
        domain = "agents.example.org";
        settings.chat_image_origins = [ "https://upload.wikimedia.org" "https://images.example.org" ];
    '''))
    env = out["agentstead"]["environment"]
    assert env["AGENTSTEAD_CHAT_IMAGE_ORIGINS"] == "https://upload.wikimedia.org,https://images.example.org"
    # the host's Caddy lists the same origins in the site's CSP (caddy/headers.caddy: img-src)
    assert out["caddyService"]["environment"]["CADDY_IMG_SRC"] == (
        "https://upload.wikimedia.org https://images.example.org")
