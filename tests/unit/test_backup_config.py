"""The Litestream configuration rendered from settings, and the settings behind it."""

from __future__ import annotations

import os

import pytest
import yaml

from agentstead.backup.config import databases, go_duration, paths, render, replica_location
from agentstead.backup.litestream import child_env
from agentstead.settings import ConfigError, Settings, describe, load

KEY_ID = "AKIAEXAMPLEKEYID0001"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY="


def s3_settings(tmp_path, **extra) -> Settings:
    return Settings(state_dir=str(tmp_path / "state"), backup_enabled=True, backup_s3_bucket="bkt",
                    backup_s3_endpoint="https://s3.example.net", backup_s3_path="/team/agentstead/",
                    backup_s3_region="eu-central-1", backup_s3_access_key_id=KEY_ID,
                    backup_s3_secret_access_key=SECRET, **extra)


@pytest.mark.parametrize("seconds, text", [(1, "1s"), (0.5, "500ms"), (0.25, "250ms"), (90, "90s"),
                                           (60, "1m"), (86400, "24h"), (7 * 86400, "168h"), (1.5, "1500ms")])
def test_go_durations(seconds, text):
    assert go_duration(seconds) == text


def test_s3_replica_without_credentials_in_the_file(tmp_path):
    settings = s3_settings(tmp_path)
    text = render(settings)
    assert KEY_ID not in text and SECRET not in text
    doc = yaml.safe_load(text)
    assert doc["socket"] == {"enabled": True, "path": str(paths(settings).socket)}
    assert doc["snapshot"] == {"interval": "24h", "retention": "168h"}
    [db] = doc["dbs"]
    assert db["path"] == str(tmp_path / "state" / "agentstead.db")
    assert db["monitor-interval"] == "1s"  # one upload per interval, not per monitor tick
    assert db["replica"] == {"type": "s3", "bucket": "bkt", "path": "team/agentstead/agentstead.db",
                             "region": "eu-central-1", "endpoint": "https://s3.example.net",
                             "force-path-style": True, "sync-interval": "1s"}
    assert replica_location(settings) == "s3://bkt/team/agentstead/agentstead.db at https://s3.example.net"


def test_every_database_is_listed_with_an_absolute_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = Settings(state_dir="./var", database_path="./data/main.db")
    listed = [db["path"] for db in yaml.safe_load(render(settings))["dbs"]]
    assert listed == [str(p) for p in databases(settings)] == [str(tmp_path / "data" / "main.db")]


def test_path_style_is_automatic_for_custom_endpoints_only(tmp_path):
    aws = Settings(state_dir=str(tmp_path), backup_s3_bucket="b")
    replica = yaml.safe_load(render(aws))["dbs"][0]["replica"]
    assert replica["force-path-style"] is False and "endpoint" not in replica
    forced = s3_settings(tmp_path, backup_s3_force_path_style="false")
    assert yaml.safe_load(render(forced))["dbs"][0]["replica"]["force-path-style"] is False


def test_development_default_is_a_file_replica_under_var(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = load({})
    assert settings.backup_local_path == "./var/replica"
    doc = yaml.safe_load(render(settings))
    assert doc["dbs"][0]["replica"] == {"type": "file", "path": str(tmp_path / "var" / "replica" / "agentstead.db"),
                                        "sync-interval": "1s"}


def test_intervals_and_retention_come_from_settings(tmp_path):
    settings = load({"AGENTSTEAD_STATE_DIR": str(tmp_path), "AGENTSTEAD_BACKUP_SYNC_INTERVAL": "10s",
                     "AGENTSTEAD_BACKUP_SNAPSHOT_INTERVAL": "6h", "AGENTSTEAD_BACKUP_RETENTION": "30d"})
    doc = yaml.safe_load(render(settings))
    assert doc["snapshot"] == {"interval": "6h", "retention": "720h"}
    assert doc["dbs"][0]["monitor-interval"] == doc["dbs"][0]["replica"]["sync-interval"] == "10s"


@pytest.mark.parametrize("value, seconds", [("500ms", 0.5), ("2", 2.0), ("1.5s", 1.5), ("2m", 120.0)])
def test_sync_interval_accepts_durations(value, seconds):
    assert load({"AGENTSTEAD_BACKUP_SYNC_INTERVAL": value}).backup_sync_interval == seconds


@pytest.mark.parametrize("env, named", [
    ({"AGENTSTEAD_BACKUP_SYNC_INTERVAL": "fast"}, "AGENTSTEAD_BACKUP_SYNC_INTERVAL"),
    ({"AGENTSTEAD_BACKUP_SYNC_INTERVAL": "10ms"}, "AGENTSTEAD_BACKUP_SYNC_INTERVAL"),
    ({"AGENTSTEAD_BACKUP_S3_ACCESS_KEY_ID": KEY_ID}, "AGENTSTEAD_BACKUP_S3_SECRET_ACCESS_KEY"),
    ({"AGENTSTEAD_BACKUP_S3_SECRET_ACCESS_KEY": SECRET}, "AGENTSTEAD_BACKUP_S3_ACCESS_KEY_ID"),
    ({"AGENTSTEAD_BACKUP_S3_ENDPOINT": "https://s3.example.net"}, "AGENTSTEAD_BACKUP_S3_BUCKET"),
    ({"AGENTSTEAD_BACKUP_S3_BUCKET": "b", "AGENTSTEAD_BACKUP_S3_ENDPOINT": "s3.example.net"},
     "AGENTSTEAD_BACKUP_S3_ENDPOINT"),
    ({"AGENTSTEAD_BACKUP_S3_BUCKET": "b", "AGENTSTEAD_BACKUP_S3_PATH": "/"}, "AGENTSTEAD_BACKUP_S3_PATH"),
    ({"AGENTSTEAD_BACKUP_S3_FORCE_PATH_STYLE": "maybe"}, "AGENTSTEAD_BACKUP_S3_FORCE_PATH_STYLE"),
])
def test_bad_backup_settings_name_the_setting(env, named):
    with pytest.raises(ConfigError) as err:
        load(env)
    assert str(err.value).startswith(named + ":")


def test_one_env_style_credentials_file_serves_both_keys(tmp_path):
    creds = tmp_path / "credentials"
    creds.mkdir()
    content = f"# S3 keys\nAWS_ACCESS_KEY_ID={KEY_ID}\nexport AWS_SECRET_ACCESS_KEY=\"{SECRET}\"\n"
    for name in ("backup_s3_access_key_id", "backup_s3_secret_access_key"):
        (creds / name).write_text(content)  # systemd LoadCredential= of the same file, twice
    settings = load({"CREDENTIALS_DIRECTORY": str(creds)})
    assert (settings.backup_s3_access_key_id, settings.backup_s3_secret_access_key) == (KEY_ID, SECRET)
    shown = {name: value for name, value, _ in describe(settings)}
    assert KEY_ID not in str(shown) and SECRET not in str(shown)


def test_plain_key_files_and_file_twins(tmp_path):
    (tmp_path / "id").write_text(KEY_ID + "\n")
    (tmp_path / "secret").write_text(SECRET + "\n")
    settings = load({"AGENTSTEAD_BACKUP_S3_ACCESS_KEY_ID_FILE": str(tmp_path / "id"),
                     "AGENTSTEAD_BACKUP_S3_SECRET_ACCESS_KEY_FILE": str(tmp_path / "secret")})
    assert (settings.backup_s3_access_key_id, settings.backup_s3_secret_access_key) == (KEY_ID, SECRET)
    assert KEY_ID not in repr(settings) and SECRET not in repr(settings)


def test_an_env_file_without_the_key_is_an_error(tmp_path):
    (tmp_path / "f").write_text("AWS_SECRET_ACCESS_KEY=x\n")
    with pytest.raises(ConfigError, match="AGENTSTEAD_BACKUP_S3_ACCESS_KEY_ID"):
        load({"AGENTSTEAD_BACKUP_S3_ACCESS_KEY_ID_FILE": str(tmp_path / "f"),
              "AGENTSTEAD_BACKUP_S3_SECRET_ACCESS_KEY_FILE": str(tmp_path / "f")})


def test_litestream_environment_drops_aws_ca_bundle_and_gets_the_keys(tmp_path):
    ambient = {"PATH": "/usr/bin", "AWS_CA_BUNDLE": "/etc/ssl/certs/ca-certificates.crt",
               "AWS_ACCESS_KEY_ID": "ambient", "AWS_SECRET_ACCESS_KEY": "ambient", "AWS_SESSION_TOKEN": "t",
               "AGENTSTEAD_SECRET_KEY": "app-secret", "AGENTSTEAD_BACKUP_S3_BUCKET": "bkt"}
    env = child_env(s3_settings(tmp_path), ambient)
    assert env == {"PATH": "/usr/bin", "LITESTREAM_ACCESS_KEY_ID": KEY_ID, "LITESTREAM_SECRET_ACCESS_KEY": SECRET}


def test_without_keys_the_ambient_aws_chain_stays(tmp_path):
    ambient = {"AWS_CA_BUNDLE": "/x.pem", "AWS_PROFILE": "backup", "HOME": "/root"}
    env = child_env(Settings(state_dir=str(tmp_path), backup_s3_bucket="b"), ambient)
    assert env == {"AWS_PROFILE": "backup", "HOME": "/root"}


def test_a_too_deep_state_directory_is_refused(tmp_path):
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    with pytest.raises(ValueError, match="shorter AGENTSTEAD_STATE_DIR"):
        render(Settings(state_dir=str(deep)))
    assert len(str(paths(Settings(state_dir="/var/lib/agentstead")).socket)) < 107
    assert os.sep in str(paths(Settings()).socket)
