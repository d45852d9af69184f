"""The module on a real host: the `agentstead` command for root runs as the service does, a
secrets file (agenix, sops-nix), a state directory anywhere, Litestream 0.5, a declarative first
administrator, and a check that names a missing secret file before the units start. Evaluated
with the real nixpkgs lib and the stubs in tests/support/nix.py."""

from __future__ import annotations

import shlex
import subprocess

import pytest

from agentstead import settings as app_settings

from ..support.nix import (_nix_in_ci, enabled, evaluate, evaluation_error, needs_lib,  # noqa: F401
                           nix_dir)

LOCAL_BACKUP = 'backup = { enable = true; localPath = "/mnt/backup/agentstead"; };'
S3_BACKUP = ('backup = { enable = true; s3.bucket = "b"; s3.endpoint = "https://s3.example.org";'
             ' credentialsFile = "/run/secrets/agentstead-s3"; };')
BACKUP_UNITS = ("litestream", "restore", "drill")


def _cli(out: dict) -> list[str]:
    """The words of the `agentstead` wrapper's systemd-run line."""
    text = out["scripts"]["agentstead"]
    line = text[text.index("exec systemd-run"):].replace("\\\n", " ")
    return shlex.split(line)


@needs_lib
def test_the_command_for_root_runs_as_the_service_with_its_settings_and_credentials(evaluate):
    out = evaluate(enabled('domain = "agents.example.org"; llmApiKeyFiles.openai = "/run/secrets/openai";'
                           ' settings.llm_providers = [ { name = "openai"; base_url = "https://api.openai.com/v1"; } ];'
                           ' environmentFile = "/run/secrets/agentstead.env";' + S3_BACKUP))
    assert out["failedAssertions"] == []
    words = _cli(out)
    assert words[:2] == ["exec", "systemd-run"] and words[-2:] == [out["packageOut"] + "/bin/agentstead", "$@"]
    assert {"--wait", "--pipe", "--collect", "--uid=agentstead", "--gid=agentstead"} <= set(words)
    # Every setting of the app's unit (the backup ones among them), as the unit has it.
    env = out["agentstead"]["environment"]
    assert {w.removeprefix("--setenv=") for w in words if w.startswith("--setenv=")} == {
        f"{name}={value}" for name, value in env.items()}
    assert env["AGENTSTEAD_BACKUP_S3_BUCKET"] == "b"
    # The app's credentials and the bucket's keys (backup status, backup restore).
    credentials = {w.removeprefix("--property=LoadCredential=") for w in words if "LoadCredential=" in w}
    assert credentials == set(out["agentstead"]["serviceConfig"]["LoadCredential"]) | set(
        out["litestream"]["serviceConfig"]["LoadCredential"])
    assert "--property=EnvironmentFile=/run/secrets/agentstead.env" in words
    assert "--property=StateDirectory=agentstead" in words and "--property=UMask=0077" in words
    # Only root may start it (it reads the credentials as root through systemd).
    assert 'if [ "$EUID" -ne 0 ]' in out["scripts"]["agentstead"]
    # Backups off: no bucket keys, even when the file is named.
    words = _cli(evaluate(enabled('backup.credentialsFile = "/run/secrets/agentstead-s3";')))
    assert not [w for w in words if "backup_s3" in w]
    assert "--property=StateDirectoryMode=0750" in words  # as the unit makes it


@needs_lib
def test_a_secrets_file_reaches_every_unit_and_replaces_the_key_file(evaluate, evaluation_error):
    out = evaluate('{ services.agentstead = { enable = true; environmentFile = "/run/secrets/agentstead.env"; '
                   + LOCAL_BACKUP + " }; }")
    assert out["failedAssertions"] == []  # AGENTSTEAD_SECRET_KEY may be in the file
    for unit in ("agentstead",) + BACKUP_UNITS:
        assert out[unit]["serviceConfig"]["EnvironmentFile"] == ["/run/secrets/agentstead.env"], unit
    out = evaluate("{ services.agentstead.enable = true; }")
    assert any("secretKeyFile must name a file" in m and "environmentFile" in m for m in out["failedAssertions"])
    out = evaluate(enabled('environmentFile = "/nix/store/eeee-agentstead.env";'))
    assert out["failedAssertions"] == [
        "services.agentstead.environmentFile is in the Nix store (/nix/store/eeee-agentstead.env), which every "
        'user can read; give the path of a file outside it as a string, e.g. "/run/secrets/agentstead.env".']
    stderr = evaluation_error(enabled("environmentFile = ./agentstead.env;"))
    assert "services.agentstead.environmentFile" in stderr and "not a Nix path" in stderr, stderr


@needs_lib
def test_a_state_directory_anywhere_is_created_and_writable_for_every_unit(evaluate):
    out = evaluate(enabled('settings.state_dir = "/srv/agentstead";' + LOCAL_BACKUP))
    assert out["failedAssertions"] == []
    assert out["agentstead"]["environment"]["AGENTSTEAD_STATE_DIR"] == "/srv/agentstead"
    assert out["agentstead"]["serviceConfig"]["ReadWritePaths"] == ["/srv/agentstead"]
    for unit in BACKUP_UNITS:
        assert out[unit]["environment"]["AGENTSTEAD_STATE_DIR"] == "/srv/agentstead", unit
        assert out[unit]["serviceConfig"]["ReadWritePaths"] == ["/srv/agentstead", "/mnt/backup/agentstead"], unit
    assert out["tmpfiles"] == ["d /srv/agentstead 0750 agentstead agentstead - -",
                               "d /mnt/backup/agentstead 0700 agentstead agentstead - -"]
    assert out["users"]["users"]["agentstead"]["home"] == "/srv/agentstead"
    # The command works on that directory too (no StateDirectory= of its own).
    assert "--property=StateDirectory=agentstead" not in _cli(out)
    # The default needs nothing: the units' StateDirectory= makes it.
    default = evaluate(enabled())
    assert "ReadWritePaths" not in default["agentstead"]["serviceConfig"] and default["tmpfiles"] == []


@needs_lib
@pytest.mark.parametrize("state_dir", ['"var/agentstead"', '"/srv/agent stead"'])
def test_a_relative_state_directory_is_refused_by_type(evaluation_error, state_dir):
    stderr = evaluation_error(enabled(f"settings.state_dir = {state_dir};"))
    assert "services.agentstead.settings.state_dir" in stderr and "absolute path without spaces" in stderr, stderr


@needs_lib
@pytest.mark.parametrize("state_dir, hidden", [("/home/agents", "/home/"), ("/tmp/agentstead", "/tmp/"),
                                               ("/nix/store/abc-state", "/nix/store/")])
def test_a_state_directory_the_hardening_hides_fails_an_assertion(evaluate, state_dir, hidden):
    out = evaluate(enabled(f'settings.state_dir = "{state_dir}";'))
    assert out["failedAssertions"] == [
        f"services.agentstead.settings.state_dir is {state_dir}, under {hidden}, which the units' hardening "
        "hides or makes read-only; choose a directory elsewhere, e.g. /srv/agentstead."]


@needs_lib
def test_backups_run_the_packages_litestream_0_5_and_refuse_an_older_one(evaluate):
    out = evaluate(enabled(LOCAL_BACKUP))
    assert out["litestream"]["environment"]["AGENTSTEAD_BACKUP_LITESTREAM"] == out["litestreamOut"] + "/bin/litestream"
    out = evaluate("{ pkgs, ... }: " + enabled(LOCAL_BACKUP + " backup.litestreamPackage = pkgs.litestream;"))
    assert out["failedAssertions"] == [
        "services.agentstead.backup.litestreamPackage is Litestream 0.3.13; the backups need 0.5 or later (its "
        "replica format and commands). Remove the setting to use the package's own Litestream 0.5.17 "
        "(pkgs.litestream is 0.3 on nixos-25.11)."]


@needs_lib
def test_the_first_administrator_is_a_setting(evaluate, evaluation_error):
    out = evaluate(enabled('initialAdminEmail = "me@example.org";'))
    assert out["agentstead"]["environment"]["AGENTSTEAD_INITIAL_ADMIN_EMAIL"] == "me@example.org"
    assert app_settings.load(out["agentstead"]["environment"] | {"AGENTSTEAD_SECRET_KEY": "k" * 48,
                                                                "AGENTSTEAD_ENV": "development"}
                             ).initial_admin_email == "me@example.org"
    assert "INITIAL_ADMIN" not in str(out["litestream"])  # the backup units do not need it
    stderr = evaluation_error(enabled('initialAdminEmail = "me";'))
    assert "services.agentstead.initialAdminEmail" in stderr and "email address" in stderr, stderr


@needs_lib
def test_a_missing_secret_file_is_named_before_the_units_start(evaluate):
    out = evaluate(enabled('environmentFile = "/run/secrets/agentstead.env";'
                           ' llmApiKeyFiles.openai = "/run/secrets/openai";'
                           ' settings.llm_providers = [ { name = "openai"; base_url = "https://a.example.org/v1"; } ];'
                           + S3_BACKUP))
    check = out["secrets"]
    units = ["agentstead.service", "agentstead-litestream.service", "agentstead-restore.service",
             "agentstead-backup-drill.service"]
    assert check["requiredBy"] == units and check["before"] == units
    assert check["serviceConfig"]["Type"] == "oneshot"
    script = check["script"]
    for option, path in (("secretKeyFile", "/run/secrets/agentstead_secret_key"),
                         ("llmApiKeyFiles.openai", "/run/secrets/openai"),
                         ("backup.credentialsFile", "/run/secrets/agentstead-s3"),
                         ("environmentFile", "/run/secrets/agentstead.env")):
        assert f"[ ! -s {path} ]" in script, option
        assert f"'services.agentstead.{option} names {path}, which'" in script, option
    assert script.rstrip().endswith('exit "$missing"')
    # Without backups, only the app needs it.
    assert evaluate(enabled())["secrets"]["requiredBy"] == ["agentstead.service"]


@needs_lib
def test_the_secrets_check_names_the_missing_and_the_empty_file(evaluate, tmp_path):
    key, env_file = tmp_path / "secret_key", tmp_path / "agentstead.env"
    script = evaluate(f'{{ services.agentstead = {{ enable = true; secretKeyFile = "{key}";'
                      f' environmentFile = "{env_file}"; }}; }}')["secrets"]["script"]
    env_file.write_text("")
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=30)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"services.agentstead.secretKeyFile names {key}, which does not exist: put the secret there (root may keep "
        "it mode 0400; agenix or sops-nix write such files), or change the option.",
        f"services.agentstead.environmentFile names {env_file}, which is empty: put the secret there (root may keep "
        "it mode 0400; agenix or sops-nix write such files), or change the option."]
    key.write_text("k" * 48)
    env_file.write_text("AGENTSTEAD_LOG_LEVEL=info\n")
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=30)
    assert (done.returncode, done.stderr) == (0, "")
