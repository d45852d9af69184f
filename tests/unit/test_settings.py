"""Settings: sources in order, parsing, production refusals, secrets masked."""

from __future__ import annotations

import os
import stat

import pytest

from agentstead import settings as S
from agentstead.cli import main


def load(**env):
    return S.load(env)


def test_defaults_are_the_development_defaults():
    s = load()
    assert (s.env, s.host, s.port, s.max_body_size) == ("development", "127.0.0.1", 47293, 1024 * 1024)
    assert s.sources["port"] == "default"
    assert str(s.db_file).endswith("var/agentstead.db")


def test_sources_override_in_order(tmp_path):
    toml = tmp_path / "agentstead.toml"
    toml.write_text('port = 5000\nlog_level = "debug"\nsecret_key = "from-toml-' + "x" * 40 + '"\n')
    secret_file = tmp_path / "key"
    secret_file.write_text("from-file-" + "y" * 40 + "\n")
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "secret_key").write_text("from-credential-" + "z" * 40 + "\n")

    s = load(AGENTSTEAD_CONFIG=str(toml))
    assert s.port == 5000 and s.log_level == "debug" and s.secret_key.startswith("from-toml")

    s = load(AGENTSTEAD_CONFIG=str(toml), AGENTSTEAD_PORT="6000", AGENTSTEAD_SECRET_KEY="from-env-" + "e" * 40)
    assert s.port == 6000 and s.log_level == "debug" and s.secret_key.startswith("from-env")
    assert s.sources["port"] == "environment"

    s = load(AGENTSTEAD_SECRET_KEY="from-env-" + "e" * 40, AGENTSTEAD_SECRET_KEY_FILE=str(secret_file))
    assert s.secret_key == "from-file-" + "y" * 40  # trailing newline stripped

    s = load(AGENTSTEAD_SECRET_KEY_FILE=str(secret_file), CREDENTIALS_DIRECTORY=str(creds))
    assert s.secret_key.startswith("from-credential") and s.sources["secret_key"] == "credential secret_key"


@pytest.mark.parametrize("env,name,fragment", [
    ({"AGENTSTEAD_PORT": "http"}, "AGENTSTEAD_PORT", "must be an integer"),
    ({"AGENTSTEAD_PORT": "70000"}, "AGENTSTEAD_PORT", "between 1 and 65535"),
    ({"AGENTSTEAD_MAX_BODY_SIZE": "lots"}, "AGENTSTEAD_MAX_BODY_SIZE", "must be a size"),
    ({"AGENTSTEAD_ENV": "staging"}, "AGENTSTEAD_ENV", "one of development, production"),
    ({"AGENTSTEAD_PUBLIC_URL": "agents.example.org"}, "AGENTSTEAD_PUBLIC_URL", "http(s) URL"),
    ({"AGENTSTEAD_PUBLIC_URL": "https://a.example/x"}, "AGENTSTEAD_PUBLIC_URL", "without a path"),
    ({"AGENTSTEAD_CORS_ORIGINS": "https://ok.example,notaurl"}, "AGENTSTEAD_CORS_ORIGINS", "http(s) URL"),
    ({"AGENTSTEAD_PROT": "1"}, "AGENTSTEAD_PROT", "unknown setting"),
    ({"AGENTSTEAD_SECRET_KEY_FILE": "/nonexistent/key"}, "AGENTSTEAD_SECRET_KEY_FILE", "cannot read"),
    ({"AGENTSTEAD_CONFIG": "/nonexistent.toml"}, "AGENTSTEAD_CONFIG", "cannot read"),
    ({"AGENTSTEAD_GC_THRESHOLDS": "lots"}, "AGENTSTEAD_GC_THRESHOLDS", "one to three integers"),
    ({"AGENTSTEAD_GC_THRESHOLDS": "1,2,3,4"}, "AGENTSTEAD_GC_THRESHOLDS", "one to three integers"),
    ({"AGENTSTEAD_GC_THRESHOLDS": "-1"}, "AGENTSTEAD_GC_THRESHOLDS", "from 0 to 10000000"),
])
def test_each_bad_value_names_its_setting(env, name, fragment):
    with pytest.raises(S.ConfigError) as info:
        S.load(env)
    assert info.value.env == name
    assert str(info.value).startswith(name + ": ") and fragment in str(info.value)


def test_toml_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("port = = 1")
    with pytest.raises(S.ConfigError, match="not valid TOML"):
        load(AGENTSTEAD_CONFIG=str(bad))
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("prot = 1")
    with pytest.raises(S.ConfigError, match="unknown setting 'prot'"):
        load(AGENTSTEAD_CONFIG=str(unknown))


PROD_OK = {"AGENTSTEAD_ENV": "production", "AGENTSTEAD_SECRET_KEY": "s" * 32,
           "AGENTSTEAD_PUBLIC_URL": "https://agents.example.org"}


@pytest.mark.parametrize("change,name,fragment", [
    ({"AGENTSTEAD_SECRET_KEY": ""}, "AGENTSTEAD_SECRET_KEY", "is missing"),
    ({"AGENTSTEAD_SECRET_KEY": "s" * 31}, "AGENTSTEAD_SECRET_KEY", "is 31 bytes"),
    ({"AGENTSTEAD_PUBLIC_URL": "http://agents.example.org"}, "AGENTSTEAD_PUBLIC_URL", "https"),
    ({"AGENTSTEAD_CORS_ORIGINS": "*"}, "AGENTSTEAD_CORS_ORIGINS", "wildcard"),
])
def test_production_refuses_unsafe_settings(change, name, fragment):
    assert load(**PROD_OK).production
    with pytest.raises(S.ConfigError) as info:
        S.load({**PROD_OK, **change})
    assert info.value.env == name and fragment in str(info.value)


def test_wildcard_cors_is_allowed_in_development():
    assert load(AGENTSTEAD_CORS_ORIGINS="*").cors_origins == ("*",)


def test_development_secret_key_is_generated_once_with_mode_0600(tmp_path):
    s = load(AGENTSTEAD_STATE_DIR=str(tmp_path / "state"))
    first = S.ensure_secret_key(s)
    path = tmp_path / "state" / "secret_key"
    assert len(first.secret_key) >= S.MIN_SECRET_BYTES
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert S.ensure_secret_key(s).secret_key == first.secret_key  # kept across restarts


def test_production_never_generates_a_key(tmp_path):
    s = load(**PROD_OK, AGENTSTEAD_STATE_DIR=str(tmp_path))
    assert S.ensure_secret_key(s).secret_key == "s" * 32
    assert not (tmp_path / "secret_key").exists()


def test_gc_thresholds_are_one_to_three_integers():
    assert load().gc_thresholds == (10_000, 20, 100)
    assert load(AGENTSTEAD_GC_THRESHOLDS="700, 10,10").gc_thresholds == (700, 10, 10)
    assert load(AGENTSTEAD_GC_THRESHOLDS="0").gc_thresholds == (0,)
    assert load(AGENTSTEAD_GC_THRESHOLDS="").gc_thresholds == ()       # Python's collector as it is


def test_sizes_accept_units():
    assert load(AGENTSTEAD_MAX_BODY_SIZE="512KiB").max_body_size == 512 * 1024
    assert load(AGENTSTEAD_MAX_BODY_SIZE="2M").max_body_size == 2 * 1024 * 1024


def test_config_check_exits_2_with_one_line_naming_the_setting(monkeypatch, capsys):
    monkeypatch.setenv("AGENTSTEAD_PORT", "-1")
    assert main(["config", "check"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "AGENTSTEAD_PORT" in err


def test_config_show_masks_secrets(monkeypatch, capsys):
    monkeypatch.setenv("AGENTSTEAD_SECRET_KEY", "supersecretvalue" * 3)
    assert main(["config", "show"]) == 0
    out = capsys.readouterr().out
    assert "supersecretvalue" not in out
    assert "AGENTSTEAD_SECRET_KEY" in out and "******" in out and "[environment]" in out


def test_oidc_providers_from_toml_with_secret_file_and_credential(tmp_path):
    secret = tmp_path / "google"
    secret.write_text("g-secret\n")
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "oidc_sso_client_secret").write_text("sso-secret")
    toml = tmp_path / "a.toml"
    toml.write_text(f'''
[[oidc_providers]]
name = "google"
issuer = "https://accounts.google.com/"
client_id = "123.apps.googleusercontent.com"
client_secret_file = "{secret}"

[[oidc_providers]]
name = "sso"
display_name = "Company SSO"
issuer = "https://sso.example.org/realms/main"
client_id = "agentstead"
''')
    s = load(AGENTSTEAD_CONFIG=str(toml), CREDENTIALS_DIRECTORY=str(creds))
    google, sso = s.oidc_providers
    assert google["issuer"] == "https://accounts.google.com" and google["client_secret"] == "g-secret"
    assert sso["client_secret"] == "sso-secret" and sso["display_name"] == "Company SSO"
    shown = dict((n, v) for n, v, _ in S.describe(s))["AGENTSTEAD_OIDC_PROVIDERS"]
    assert "g-secret" not in shown and "sso-secret" not in shown


@pytest.mark.parametrize("value,fragment", [
    ("not json", "must be a JSON array"),
    ('{"name": "x"}', "must be a list"),
    ('[{"name": "Bad Name", "issuer": "https://a.example", "client_id": "c"}]', "needs a name"),
    ('[{"name": "a", "issuer": "ftp://a.example", "client_id": "c"}]', "issuer must be an http(s) URL"),
    ('[{"name": "a", "issuer": "https://a.example"}]', "needs a client_id"),
    ('[{"name": "a", "issuer": "https://a.example", "client_id": "c", "scopes": ["email"]}]', "includes openid"),
    ('[{"name": "a", "issuer": "https://a.example", "client_id": "c", "secret": "x"}]', "unknown keys: secret"),
    ('[{"name": "a", "issuer": "https://a.example", "client_id": "c"}]', "has no client secret"),
    ('[{"name": "a", "issuer": "https://a.example", "client_id": "c", "client_secret_file": "/nope"}]',
     "cannot read client_secret_file"),
])
def test_bad_oidc_providers_name_the_setting(value, fragment):
    with pytest.raises(S.ConfigError) as info:
        load(AGENTSTEAD_OIDC_PROVIDERS=value)
    assert info.value.env == "AGENTSTEAD_OIDC_PROVIDERS" and fragment in str(info.value)


@pytest.mark.parametrize("env,fragment", [
    ({"AGENTSTEAD_SIGNUP_POLICY": "sometimes"}, "one of closed, domains, open"),
    ({"AGENTSTEAD_SIGNUP_DOMAINS": "example.org,not a domain"}, "is not a domain name"),
    ({"AGENTSTEAD_TRUSTED_PROXIES": "caddy"}, "not an IP address"),
    ({"AGENTSTEAD_ACCESS_TOKEN_TTL_SECONDS": "5"}, "between 30 and 3600"),
])
def test_bad_identity_settings(env, fragment):
    with pytest.raises(S.ConfigError) as info:
        load(**env)
    assert info.value.env == next(iter(env)) and fragment in str(info.value)


@pytest.mark.parametrize("value,fragment", [
    ('[{"name": "a", "base_url": "http://x.example/v1"}, {"name": "a", "base_url": "http://y.example/v1"}]',
     "used twice"),
    ('[{"name": "a", "base_url": "nope"}]', "base_url must be an http(s) URL"),
    ('[{"name": "a", "base_url": "http://x.example/v1", "models": "gpt"}]', "models must be a list"),
    ('[{"name": "a", "base_url": "http://x.example/v1", "api_key_file": "/nonexistent"}]', "cannot read api_key_file"),
    ('[{"name": "a", "base_url": "http://x.example/v1", "context_tokens": 10}]', "context_tokens must be a whole"),
    ('[{"name": "a", "base_url": "http://x.example/v1", "context_tokens": {"m": "big"}}]', "context_tokens['m']"),
])
def test_bad_llm_providers_name_the_setting(value, fragment):
    with pytest.raises(S.ConfigError) as info:
        load(AGENTSTEAD_LLM_PROVIDERS=value)
    assert info.value.env == "AGENTSTEAD_LLM_PROVIDERS" and fragment in str(info.value)


def test_llm_provider_key_from_a_credential(tmp_path):
    (tmp_path / "llm_local_api_key").write_text("sk-from-cred\n")
    s = load(AGENTSTEAD_LLM_PROVIDERS='[{"name": "local", "base_url": "http://127.0.0.1:1/v1", "models": ["m"]}]',
             CREDENTIALS_DIRECTORY=str(tmp_path))
    assert s.llm_providers[0]["api_key"] == "sk-from-cred" and s.llm_providers[0]["default_model"] == "m"


def test_llm_provider_context_budget_for_all_models_or_by_model():
    s = load(AGENTSTEAD_LLM_PROVIDERS='[{"name": "a", "base_url": "http://x.example/v1", "context_tokens": 8000},'
                                      '{"name": "b", "base_url": "http://y.example/v1", "context_tokens": {"m": 4000}}]',
             AGENTSTEAD_LLM_CONTEXT_TOKENS="12000")
    assert [p["context_tokens"] for p in s.llm_providers] == [8000, {"m": 4000}] and s.llm_context_tokens == 12000


def test_tracing_is_off_by_default_and_its_headers_are_a_secret_in_the_otel_format(tmp_path):
    assert load().tracing_endpoint == ""
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "tracing_headers").write_text("Authorization=Basic%20cGs6c2s=, X-Scope-OrgID = team-1\n")
    s = load(AGENTSTEAD_TRACING_ENDPOINT="https://cloud.langfuse.com/api/public/otel/v1/traces",
             AGENTSTEAD_TRACING_SAMPLE_RATIO="0.5", CREDENTIALS_DIRECTORY=str(creds))
    assert s.tracing_endpoint == "https://cloud.langfuse.com/api/public/otel/v1/traces"
    assert s.tracing_headers == (("authorization", "Basic cGs6c2s="), ("x-scope-orgid", "team-1"))
    assert s.tracing_sample_ratio == 0.5
    assert "cGs6c2s" not in repr(s)


@pytest.mark.parametrize("env, fragment", [
    ({"AGENTSTEAD_TRACING_ENDPOINT": "collector:4318"}, "must be an http(s) URL"),
    ({"AGENTSTEAD_TRACING_ENDPOINT": "http://127.0.0.1:4318/v1/traces?x=1"}, "must be an http(s) URL"),
    ({"AGENTSTEAD_TRACING_HEADERS": "Authorization Basic abc"}, "name=value pairs"),
    ({"AGENTSTEAD_TRACING_SAMPLE_RATIO": "2"}, "between 0 and 1"),
])
def test_bad_tracing_settings_name_the_setting(env, fragment):
    with pytest.raises(S.ConfigError) as err:
        load(**env)
    assert str(err.value).startswith(next(iter(env))) and fragment in str(err.value)
    assert "abc" not in str(err.value)   # a header value is never echoed
