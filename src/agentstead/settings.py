"""Configuration: one declarative table, one typed object, loaded once.

Sources, later ones win: defaults, the TOML file named by AGENTSTEAD_CONFIG,
AGENTSTEAD_* environment variables, AGENTSTEAD_*_FILE twins (secrets only),
and files in $CREDENTIALS_DIRECTORY named after the setting (systemd
LoadCredential). Every problem is a ConfigError naming the setting.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import os
import re
import secrets
import tomllib
from pathlib import Path
from typing import Any, Callable, Mapping
from urllib.parse import unquote, urlsplit

from . import settings_mcp

ENV_PREFIX = "AGENTSTEAD_"
CONFIG_ENV = "AGENTSTEAD_CONFIG"
MIN_SECRET_BYTES = 32


class ConfigError(Exception):
    """A setting is wrong. str() is one line that names it."""

    def __init__(self, env: str, message: str):
        super().__init__(f"{env}: {message}")
        self.env = env


# ---- parsers: str -> value, raising ValueError with a message for people ----

def _int_range(lo: int, hi: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(str(raw).strip().replace("_", ""))
        except ValueError:
            raise ValueError(f"must be an integer (got {raw!r})") from None
        if not lo <= value <= hi:
            raise ValueError(f"must be between {lo} and {hi} (got {value})")
        return value
    return parse


def _float_range(lo: float, hi: float) -> Callable[[str], float]:
    def parse(raw: str) -> float:
        try:
            value = float(str(raw).strip())
        except ValueError:
            raise ValueError(f"must be a number (got {raw!r})") from None
        if not lo <= value <= hi:
            raise ValueError(f"must be between {lo} and {hi} (got {value})")
        return value
    return parse


_SIZE_UNITS = {"": 1, "b": 1, "k": 1024, "kb": 1024, "kib": 1024, "m": 1024**2,
               "mb": 1024**2, "mib": 1024**2, "g": 1024**3, "gb": 1024**3, "gib": 1024**3}


def _size(raw: str) -> int:
    """'1MiB', '512k', '1048576' -> bytes (binary units)."""
    text = str(raw).strip().lower().replace("_", "")
    number = text.rstrip("abcdefghijklmnopqrstuvwxyz")
    unit = text[len(number):].strip()
    if not number or unit not in _SIZE_UNITS:
        raise ValueError(f"must be a size like 1048576, 512KiB or 1MiB (got {raw!r})")
    try:
        value = int(float(number) * _SIZE_UNITS[unit])
    except ValueError:
        raise ValueError(f"must be a size like 1048576, 512KiB or 1MiB (got {raw!r})") from None
    if value < 0:
        raise ValueError(f"must not be negative (got {raw!r})")
    return value


def _bool(raw: str) -> bool:
    text = str(raw).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"must be true or false (got {raw!r})")


def _choice(*options: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        text = str(raw).strip().lower()
        if text not in options:
            raise ValueError(f"must be one of {', '.join(options)} (got {raw!r})")
        return text
    return parse


def _text(raw: str) -> str:
    return str(raw).strip()


def _secret(raw: str) -> str:
    # Secrets keep inner whitespace but not the trailing newline files carry.
    return str(raw).strip("\r\n")


def _path(raw: str) -> str:
    text = str(raw).strip()
    return str(Path(text).expanduser()) if text else ""


_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def _duration(lo: float, hi: float) -> Callable[[str], float]:
    """'500ms', '90s', '30m', '24h', '7d' or plain seconds -> seconds."""
    def parse(raw: str) -> float:
        text = str(raw).strip().lower().replace("_", "")
        match = re.fullmatch(r"([0-9]*\.?[0-9]+)\s*(ms|s|m|h|d)?", text)
        if not match:
            raise ValueError(f"must be a duration like 500ms, 90s, 30m, 24h or 7d (got {raw!r})")
        value = float(match.group(1)) * _DURATION_UNITS[match.group(2) or "s"]
        if not lo <= value <= hi:
            raise ValueError(f"must be between {lo:g}s and {hi:g}s (got {raw!r})")
        return value
    return parse


def _access_key(*names: str) -> Callable[[str], str]:
    """A secret that may also come from a KEY=value file (LITESTREAM_/AWS_ env file format),
    so one credentials file can be loaded as both S3 secrets."""
    def parse(raw: str) -> str:
        text = _secret(raw)
        for line in text.splitlines():
            key, sep, value = line.strip().removeprefix("export ").partition("=")
            if sep and key.strip() in names:
                return value.strip().strip("'\"")
        if any(re.match(r"^\s*(export\s+)?[A-Z_]+_(ACCESS_KEY_ID|SECRET_ACCESS_KEY)=", ln) for ln in text.splitlines()):
            raise ValueError(f"the credentials file has no {' or '.join(names)} line")
        return text.strip()
    return parse


def _host(raw: str) -> str:
    text = str(raw).strip()
    if not text:
        raise ValueError("must not be empty")
    return text


def _url(raw: str) -> str:
    text = str(raw).strip().rstrip("/")
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"must be an http(s) URL like https://agents.example.org (got {raw!r})")
    if parts.path or parts.query or parts.fragment:
        raise ValueError(f"must be an origin without a path (got {raw!r})")
    return text


def _nats_url(raw: str) -> str:
    text = str(raw).strip()
    if text and (urlsplit(text).scheme not in ("nats", "tls") or not urlsplit(text).hostname):
        raise ValueError(f"must be empty or a NATS URL like nats://127.0.0.1:4222 (got {raw!r})")
    return text


def _origins_or_ips(raw: str | list) -> tuple[str, ...]:
    items = raw if isinstance(raw, list) else str(raw).split(",")
    out = []
    for item in (str(i).strip() for i in items):
        if not item:
            continue
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise ValueError(f"{item!r} is not an IP address or network") from None
        out.append(item)
    return tuple(out)


def _origins(raw: str | list) -> tuple[str, ...]:
    items = raw if isinstance(raw, list) else str(raw).split(",")
    out = []
    for item in (str(i).strip().rstrip("/") for i in items):
        if not item:
            continue
        if item != "*":
            _url(item)
        out.append(item)
    return tuple(out)


def _image_origins(raw: str | list) -> tuple[str, ...]:
    """Exact http(s) origins (no wildcard: each one is trusted to see who reads the chat)."""
    out = _origins(raw)
    if "*" in out:
        raise ValueError("list each origin (https://host[:port]); a wildcard is refused")
    return tuple(o.lower() for o in out)


_PROVIDER_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")


def _named_entries(raw: str | list, keys: set[str]) -> list[tuple[str, dict]]:
    """A list of provider tables (TOML) or the same as a JSON array (environment):
    each a table with known keys only and a unique, well-formed name."""
    if isinstance(raw, str):
        if not raw.strip():
            return []
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ValueError(f"must be a JSON array of providers ({exc.msg} at column {exc.colno})") from None
    if not isinstance(raw, list):
        raise ValueError("must be a list of providers")
    out, seen = [], set()
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            raise ValueError(f"provider #{i + 1} must be a table/object")
        unknown = set(item) - keys - {"name"}
        if unknown:
            raise ValueError(f"provider #{i + 1} has unknown keys: {', '.join(sorted(unknown))}")
        name = str(item.get("name", ""))
        if not _PROVIDER_NAME.match(name):
            raise ValueError(f"provider #{i + 1} needs a name of lower-case letters, digits, - or _ (got {name!r})")
        if name in seen:
            raise ValueError(f"provider name {name!r} is used twice")
        seen.add(name)
        out.append((name, item))
    return out


def _providers(raw: str | list) -> tuple[dict, ...]:
    """OIDC providers: a TOML array of tables, or the same as JSON in the environment."""
    out = []
    for name, item in _named_entries(raw, {"issuer", "client_id", "client_secret_file", "display_name", "scopes"}):
        try:
            issuer = _url_with_path(str(item.get("issuer", "")))
        except ValueError as exc:
            raise ValueError(f"provider {name!r}: issuer {exc}") from None
        if not str(item.get("client_id", "")).strip():
            raise ValueError(f"provider {name!r} needs a client_id")
        scopes = item.get("scopes", ["openid", "email", "profile"])
        if not isinstance(scopes, list) or "openid" not in scopes:
            raise ValueError(f"provider {name!r}: scopes must be a list that includes openid")
        out.append({"name": name, "issuer": issuer, "client_id": str(item["client_id"]).strip(),
                    "client_secret_file": str(item.get("client_secret_file", "")),
                    "display_name": str(item.get("display_name", "")), "scopes": tuple(scopes)})
    return tuple(out)


def _url_with_path(raw: str) -> str:
    text = raw.strip().rstrip("/")
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise ValueError(f"must be an http(s) URL (got {raw!r})")
    return text


def _otlp_endpoint(raw: str) -> str:
    """An OTLP/HTTP signal URL (the whole URL, path included, as OTEL_EXPORTER_OTLP_TRACES_ENDPOINT)."""
    text = str(raw).strip()
    return _url_with_path(text) if text else ""


def _domains(raw: str | list) -> tuple[str, ...]:
    items = raw if isinstance(raw, list) else str(raw).split(",")
    out = []
    for item in (str(i).strip().lower().lstrip("@") for i in items):
        if not item:
            continue
        if "." not in item or not all(c.isalnum() or c in ".-" for c in item):
            raise ValueError(f"{item!r} is not a domain name")
        out.append(item)
    return tuple(out)


def _gc_thresholds(raw: str | list) -> tuple[int, ...]:
    """'10000,20,100' -> (10000, 20, 100): gc.set_threshold's arguments, one to three;
    empty -> (): Python's collector left as it is."""
    if not isinstance(raw, list) and not str(raw).strip():
        return ()
    items = raw if isinstance(raw, list) else str(raw).split(",")
    try:
        values = tuple(int(str(i).strip().replace("_", "")) for i in items)
    except ValueError:
        raise ValueError(f"must be one to three integers separated by commas, like 10000,20,100 (got {raw!r})") \
            from None
    if not 1 <= len(values) <= 3 or any(not 0 <= v <= 10_000_000 for v in values):
        raise ValueError(f"must be one to three integers from 0 to 10000000, like 10000,20,100 (got {raw!r})")
    return values


def _email(raw: str) -> str:
    email = str(raw).strip()
    local, at, domain = email.rpartition("@")
    if email and not (at and local and "." in domain.strip(".") and not any(c.isspace() for c in email)):
        raise ValueError(f"{email!r} is not an email address")
    return email


def _llm_providers(raw: str | list) -> tuple[dict, ...]:
    """OpenAI-compatible model providers, like oidc_providers: TOML tables or a JSON array."""
    out = []
    for name, item in _named_entries(raw, {"base_url", "api_key_file", "models", "default_model", "context_tokens"}):
        try:
            base_url = _url_with_path(str(item.get("base_url", "")))
        except ValueError as exc:
            raise ValueError(f"provider {name!r}: base_url {exc}") from None
        models = item.get("models", [])
        if not isinstance(models, list) or not all(isinstance(m, str) and m for m in models):
            raise ValueError(f"provider {name!r}: models must be a list of model names (empty allows any)")
        out.append({"name": name, "base_url": base_url, "api_key_file": str(item.get("api_key_file", "")),
                    "models": tuple(models), "default_model": str(item.get("default_model", models[0] if models else "")),
                    "context_tokens": _context_tokens(name, item.get("context_tokens"))})
    return tuple(out)


def _mcp_servers(raw: str | list) -> tuple[dict, ...]:
    """MCP servers whose tools agents may use (settings_mcp.py, docs/mcp.md)."""
    return settings_mcp.parse(_named_entries(raw, settings_mcp.KEYS))


def _context_tokens(provider: str, raw: Any) -> int | dict | None:
    """A provider's prompt budget: one number for all its models, or {model: number}."""
    def check(value: Any, where: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not 256 <= value <= 10_000_000:
            raise ValueError(f"provider {provider!r}: {where} must be a whole number of tokens from 256 "
                             f"to 10000000 (got {value!r})")
        return value
    if raw is None:
        return None
    if isinstance(raw, dict):
        return {str(model): check(value, f"context_tokens[{model!r}]") for model, value in raw.items()}
    return check(raw, "context_tokens")


def _otlp_headers(raw: str) -> tuple[tuple[str, str], ...]:
    """OTLP export headers as OTEL_EXPORTER_OTLP_HEADERS writes them: name=value pairs,
    comma-separated, values percent-encoded ("Authorization=Basic%20abc,X-Scope-OrgID=1")."""
    out = []
    for item in (i.strip() for i in _secret(raw).split(",")):
        if not item:
            continue
        name, sep, value = item.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+", name.strip()):
            raise ValueError("must be name=value pairs separated by commas, like "
                             "Authorization=Basic%20dXNlcjpwYXNz (the value is hidden)")
        out.append((name.strip().lower(), unquote(value.strip())))
    return tuple(out)


@dataclasses.dataclass(frozen=True)
class Setting:
    """One row of the settings table."""

    name: str
    parse: Callable[[Any], Any]
    default: Any
    help: str
    secret: bool = False
    example: str = ""

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.name.upper()


SETTINGS: tuple[Setting, ...] = (
    Setting("env", _choice("development", "production"), "development",
            "development or production; production refuses unsafe settings.", example="production"),
    Setting("host", _host, "127.0.0.1", "Address the HTTP server binds to.", example="127.0.0.1"),
    Setting("port", _int_range(1, 65535), 47293, "TCP port the HTTP server binds to.", example="47293"),
    Setting("unix_socket", _path, "", "Listen on this Unix socket instead of host:port when set.",
            example=""),
    Setting("state_dir", _path, "./var",
            "Directory for the database, its pre-migration snapshots and generated keys.",
            example="/var/lib/agentstead"),
    Setting("database_path", _path, "",
            "SQLite database file; empty means agentstead.db in the state directory.", example=""),
    Setting("public_url", _url, "http://localhost:47294",
            "The origin people use to reach Agentstead (through Caddy); https in production.",
            example="https://agents.example.org"),
    Setting("cors_origins", _origins, (),
            "Comma-separated origins allowed to call the API from a browser; '*' is refused in production.",
            example=""),
    Setting("secret_key", _secret, "",
            f"Signing key for sessions and tokens, at least {MIN_SECRET_BYTES} bytes. Required in "
            "production; in development one is generated and kept in the state directory.",
            secret=True, example=""),
    Setting("max_body_size", _size, 1024 * 1024,
            "Largest request body accepted (bytes, or with KiB/MiB).", example="1MiB"),
    Setting("frontend_dir", _path, "",
            "The built SPA Caddy serves (index.html, ssr/): the app draws each page's first view into its "
            "index.html with the SPA's own code, so the page shows before WebAssembly starts. Empty: Caddy "
            "serves index.html as it is.", example="/srv/agentstead/frontend"),
    Setting("shutdown_grace_seconds", _float_range(0, 3600), 10.0,
            "On SIGTERM, how long in-flight requests may take to finish; then, as long again for the "
            "last finished runs' streamed deltas to be compacted.", example="10"),
    Setting("db_readers", _int_range(1, 64), 4, "Read-only SQLite connections in the pool.",
            example="4"),
    Setting("db_busy_timeout_ms", _int_range(0, 600_000), 5000,
            "How long a connection waits for a lock before failing.", example="5000"),
    Setting("migration_snapshots", _int_range(0, 100), 3,
            "Pre-migration VACUUM INTO snapshots kept beside the database.", example="3"),
    Setting("min_free_disk", _size, 100 * 1024 * 1024,
            "/readyz fails when the state directory has less free space than this.",
            example="100MiB"),
    Setting("oidc_providers", _providers, (),
            "OpenID Connect providers people sign in with: a JSON array (a TOML array of tables in "
            "the config file) of {name, issuer, client_id, client_secret_file, display_name, scopes}. "
            "The client secret is read from client_secret_file or the credential oidc_<name>_client_secret.",
            example='[{"name": "google", "issuer": "https://accounts.google.com", "client_id": "123.apps.googleusercontent.com"}]'),
    Setting("signup_policy", _choice("closed", "domains", "open"), "closed",
            "Who may create an account by signing in: closed (only users an admin created), domains "
            "(verified emails in AGENTSTEAD_SIGNUP_DOMAINS) or open.", example="closed"),
    Setting("signup_domains", _domains, (), "Comma-separated email domains allowed to sign up when the "
            "policy is domains.", example="example.org"),
    Setting("initial_admin_email", _email, "",
            "An administrator created at startup while the database has none (the first start), "
            "audited as user.created; then it is ignored. They sign in with an identity provider or a "
            "link from `agentstead admin login-link`.", example="admin@example.org"),
    Setting("access_token_ttl_seconds", _int_range(30, 3600), 300,
            "Lifetime of the short-lived access token (a JWT in an httpOnly cookie).", example="300"),
    Setting("session_ttl_days", _int_range(1, 365), 30,
            "A browser session ends this many days after sign-in, however active.", example="30"),
    Setting("api_token_max_days", _int_range(1, 3650), 365,
            "Longest lifetime an API token may be given (and the default).", example="365"),
    Setting("rate_limit_auth_per_minute", _int_range(1, 100_000), 20,
            "Sign-in, callback, refresh and token requests allowed per client IP per minute.", example="20"),
    Setting("rate_limit_api_per_minute", _int_range(1, 1_000_000), 1200,
            "API requests allowed per user (or per IP when anonymous) per minute.", example="1200"),
    Setting("audit_retention_days", _int_range(1, 36500), 365,
            "Audit log entries older than this are deleted.", example="365"),
    Setting("trusted_proxies", _origins_or_ips, ("127.0.0.1", "::1"),
            "Comma-separated proxy addresses whose X-Forwarded-For is believed (Caddy on loopback).",
            example="127.0.0.1,::1"),
    Setting("ws_max_message_size", _size, 64 * 1024,
            "Largest WebSocket message a client may send; bigger closes the socket with 1009.",
            example="64KiB"),
    Setting("ws_max_subscriptions", _int_range(1, 100_000), 200,
            "Topics one WebSocket may subscribe to at once.", example="200"),
    Setting("ws_send_queue", _int_range(16, 1_000_000), 2000,
            "Messages queued for one WebSocket before it counts as a slow consumer and is closed (4008).",
            example="2000"),
    Setting("ws_heartbeat_seconds", _float_range(1, 3600), 30.0,
            "Server pings every this many seconds; a client that does not answer is closed.", example="30"),
    Setting("ws_idle_timeout_seconds", _float_range(5, 86400), 300.0,
            "A WebSocket that sends nothing (not even pong) for this long is closed.", example="300"),
    Setting("ws_max_errors", _int_range(1, 1000), 20,
            "Invalid messages one WebSocket may send before it is closed with 1008.", example="20"),
    Setting("event_retention_days", _int_range(1, 3650), 30,
            "Events older than this leave the log; older cursors get cursor_expired.", example="30"),
    Setting("event_retention_max", _int_range(1000, 1_000_000_000), 5_000_000,
            "At most this many events are kept in the log.", example="5000000"),
    Setting("llm_providers", _llm_providers, (),
            "OpenAI-compatible model providers agents may use: a JSON array (a TOML array of tables in the "
            "config file) of {name, base_url, api_key_file, models, default_model, context_tokens}. The API key is "
            "read from api_key_file or the credential llm_<name>_api_key; an empty models list allows any model; "
            "context_tokens (a number, or {model: number}) is the prompt budget, else AGENTSTEAD_LLM_CONTEXT_TOKENS.",
            example='[{"name": "openai", "base_url": "https://api.openai.com/v1", "models": ["gpt-4o-mini"]}]'),
    Setting("mcp_servers", _mcp_servers, (),
            "MCP servers (streamable HTTP) whose tools agents may use: a JSON array (a TOML array of tables in "
            "the config file) of {name, url, headers_file, tools, timeout_seconds, max_output, roles, users, "
            "description}. Request headers (credentials) are read as `Name: value` lines from headers_file or "
            "the credential mcp_<name>_headers; tools is an allow-list (empty allows all); roles (default "
            "[\"admin\"]) and users (emails) say who may use it. See docs/mcp.md.",
            example='[{"name": "files", "url": "http://127.0.0.1:8931/mcp", "tools": ["read_file"], '
                    '"roles": ["admin", "member"]}]'),
    Setting("mcp_refresh_seconds", _duration(10, 86400), 300.0,
            "How often each MCP server's tool list is fetched again (and its status with it).", example="5m"),
    Setting("llm_context_tokens", _int_range(256, 10_000_000), 16_000,
            "Prompt budget of a model call in tokens (estimated: UTF-8 bytes / 3, plus 4 a message) for "
            "providers without their own context_tokens: the instructions, the tools and the newest "
            "messages that fit are sent; older ones are left out.", example="16000"),
    Setting("runs_max_concurrent", _int_range(1, 1000), 16, "Runs executing at once, for everyone.",
            example="16"),
    Setting("runs_max_per_user", _int_range(1, 1000), 4, "Runs executing at once for one user; "
            "the rest wait in the queue, served fairly across users.", example="4"),
    Setting("run_timeout_seconds", _float_range(1, 86400), 900.0, "A run that takes longer fails with "
            "run_timeout.", example="900"),
    Setting("run_lease_seconds", _float_range(3, 3600), 30.0, "A running run's row holds a lease of its "
            "process, renewed every third of this; a running row whose task is gone (its lease ran out) is "
            "settled as interrupted by the watchdog.", example="30"),
    # ---- Scale out: several instances on one host (docs/scale-out.md). ----
    Setting("nats_url", _nats_url, "", "NATS server the instances of one host share their events through "
            "(nats://127.0.0.1:4222); empty: one instance, the embedded bus. The event log stays the truth: "
            "a lost NATS message is read from it.", example=""),
    Setting("nats_subject", _text, "agentstead.events", "NATS subject the events travel on (one per "
            "deployment sharing a NATS server).", example="agentstead.events"),
    Setting("instance", _text, "", "This instance's name among several (1, 2, ...): a restarted instance "
            "interrupts the runs its previous life left running at once, and leaves the others' alone.",
            example="1"),
    Setting("instances", _int_range(1, 256), 1, "How many instances serve this host: the per-minute rate "
            "limits are divided among them (each counts its own requests).", example="1"),
    Setting("tool_timeout_seconds", _float_range(0.1, 3600), 20.0, "Longest a tool call may take.",
            example="20"),
    Setting("llm_max_retries", _int_range(0, 20), 4, "Retries (with backoff, honouring Retry-After) for "
            "provider 429/5xx and connection errors.", example="4"),
    Setting("llm_timeout_seconds", _float_range(1, 3600), 120.0, "A model call fails with provider_timeout "
            "when the provider sends nothing for this long: while connecting, before the first token or "
            "between two (a call not yet answered is retried; a reply cut short keeps its partial text).",
            example="120"),
    Setting("daily_token_budget", _int_range(0, 10**12), 0, "Tokens a user may use per UTC day (0 = "
            "unlimited); admins can set a per-user budget.", example="2000000"),
    Setting("http_get_allowed_hosts", _domains, (), "Hosts the http_get tool may fetch (exact names); "
            "private, loopback and link-local addresses are refused whatever the name.",
            example="en.wikipedia.org,api.github.com"),
    Setting("chat_image_origins", _image_origins, (),
            "Origins (http(s)://host[:port], comma-separated) whose images in model answers the chat page "
            "loads (without a referrer, lazily); empty: no image from a model answer is loaded, each is shown "
            "as a link. Caddy's Content-Security-Policy img-src must list the same origins: CADDY_IMG_SRC "
            "(NixOS sets it from this setting; docs/chat.md, Images).", example=""),
    Setting("idempotency_key_ttl", _duration(60, 30 * 86400), 86400.0,
            "How long a creating POST's Idempotency-Key and its first result are kept: a retry within it "
            "gets that result instead of a second resource.", example="24h"),
    Setting("readyz_write_window", _duration(1, 3600), 30.0,
            "/readyz and /metrics count database write failures over this window: unready while the "
            "newest write failed or 3+ of the window's did and they are 10 % of them, degraded while any did.", example="30s"),
    Setting("gc_thresholds", _gc_thresholds, (10_000, 20, 100),
            "Python's garbage-collection thresholds (gc.set_threshold: generations 0, 1, 2), set once the server "
            "has started, after the objects of start-up are frozen (gc.freeze) so that no collection walks them "
            "again. 700,10,10 is Python's default; 0 turns automatic collection off; empty leaves the collector "
            "as Python set it, nothing frozen (docs/operations.md, Garbage collection).", example="10000,20,100"),
    Setting("log_level", _choice("debug", "info", "warning", "error"), "info",
            "Least severe log level written.", example="info"),
    Setting("log_format", _choice("json", "text"), "json",
            "json (one object per line, for journald) or text (for a terminal).", example="json"),
    # ---- Tracing: OpenTelemetry spans over OTLP/HTTP (src/agentstead/tracing.py; docs/monitoring.md, Tracing). ----
    Setting("tracing_endpoint", _otlp_endpoint, "",
            "OTLP/HTTP traces URL spans are sent to, path included: http://127.0.0.1:4318/v1/traces for Jaeger, "
            "Tempo or an OpenTelemetry Collector (Langfuse: docs/monitoring.md, Tracing); empty: tracing is off "
            "and nothing is sent.", example=""),
    Setting("tracing_headers", _otlp_headers, (),
            "Headers sent with every export, as OTEL_EXPORTER_OTLP_HEADERS writes them (name=value, "
            "comma-separated, values percent-encoded): the collector's credentials.", secret=True,
            example="Authorization=Basic%20cGstbGYtLi4uOnNrLWxmLS4uLg=="),
    Setting("tracing_service_name", _text, "agentstead",
            "service.name of the spans: tells this instance apart in the tracing backend.", example="agentstead"),
    Setting("tracing_sample_ratio", _float_range(0, 1), 1.0,
            "Share of traces recorded (a trace whose caller sent a sampled traceparent is recorded "
            "whatever this says).", example="1.0"),
    # ---- Backups: Litestream, rendered by `agentstead backup config` (src/agentstead/backup/). ----
    Setting("backup_enabled", _bool, False,
            "Litestream replicates the database (agentstead-litestream.service, or `agentstead backup "
            "replicate`); /readyz and /metrics report its lag and the last restore drill.", example="true"),
    Setting("backup_s3_bucket", _text, "",
            "S3 bucket of the replica; empty means a file replica in AGENTSTEAD_BACKUP_LOCAL_PATH.",
            example="agentstead-backups"),
    Setting("backup_s3_endpoint", _text, "",
            "S3-compatible endpoint URL (MinIO, Garage, Backblaze, R2, ...); empty means AWS S3.",
            example="https://s3.eu-central-003.backblazeb2.com"),
    Setting("backup_s3_path", _text, "agentstead",
            "Key prefix of the replica inside the bucket (one directory per database).", example="agentstead"),
    Setting("backup_s3_region", _text, "us-east-1", "Region of the bucket.", example="eu-central-003"),
    Setting("backup_s3_force_path_style", _choice("auto", "true", "false"), "auto",
            "Path-style URLs (endpoint/bucket/key): auto means yes with a custom endpoint, no on AWS.",
            example="auto"),
    Setting("backup_s3_access_key_id", _access_key("AWS_ACCESS_KEY_ID", "LITESTREAM_ACCESS_KEY_ID"), "",
            "Access key id for the bucket. A KEY=value file with AWS_ACCESS_KEY_ID= works too. Empty "
            "means the AWS default chain (instance role, ~/.aws).", secret=True),
    Setting("backup_s3_secret_access_key",
            _access_key("AWS_SECRET_ACCESS_KEY", "LITESTREAM_SECRET_ACCESS_KEY"), "",
            "Secret access key for the bucket. A KEY=value file with AWS_SECRET_ACCESS_KEY= works too.",
            secret=True),
    Setting("backup_local_path", _path, "./var/replica",
            "Directory of a file replica, used when no bucket is set. Put it on another disk: a replica "
            "on the database's own disk does not survive losing that disk.", example="/mnt/backup/agentstead"),
    Setting("backup_sync_interval", _duration(0.1, 3600), 1.0,
            "How often Litestream ships new WAL to the replica: the loss window (about one interval). "
            "Each interval with writes costs one upload request (1s: up to 86,400 PUTs a day).",
            example="1s"),
    Setting("backup_snapshot_interval", _duration(60, 365 * 86400), 86400.0,
            "How often Litestream writes a full snapshot to the replica (bounds restore time).",
            example="24h"),
    Setting("backup_retention", _duration(3600, 3650 * 86400), 7 * 86400.0,
            "How long snapshots (and so point-in-time restore) are kept in the replica.", example="7d"),
    Setting("backup_max_lag", _duration(1, 86400), 60.0,
            "/readyz reports the backup degraded when the replica is further behind than this.",
            example="60s"),
    Setting("backup_drill_max_age", _duration(3600, 365 * 86400), 36 * 3600.0,
            "/readyz reports the backup degraded when the last successful restore drill is older.",
            example="36h"),
    Setting("backup_litestream", _path, "",
            "The litestream binary; empty means the one beside the agentstead command, then $PATH.",
            example=""),
)

BY_NAME = {s.name: s for s in SETTINGS}
BY_ENV = {s.env: s for s in SETTINGS}
# Environment variables that are ours but are not settings themselves.
_META_ENV = {CONFIG_ENV} | {s.env + "_FILE" for s in SETTINGS if s.secret}


@dataclasses.dataclass(frozen=True)
class Settings:
    """The effective configuration. Build it with load()."""

    env: str = "development"
    host: str = "127.0.0.1"
    port: int = 47293
    unix_socket: str = ""
    state_dir: str = "./var"
    database_path: str = ""
    public_url: str = "http://localhost:47294"
    cors_origins: tuple[str, ...] = ()
    secret_key: str = dataclasses.field(default="", repr=False)
    max_body_size: int = 1024 * 1024
    frontend_dir: str = ""
    shutdown_grace_seconds: float = 10.0
    db_readers: int = 4
    db_busy_timeout_ms: int = 5000
    migration_snapshots: int = 3
    min_free_disk: int = 100 * 1024 * 1024
    oidc_providers: tuple[dict, ...] = ()
    signup_policy: str = "closed"
    signup_domains: tuple[str, ...] = ()
    initial_admin_email: str = ""
    access_token_ttl_seconds: int = 300
    session_ttl_days: int = 30
    api_token_max_days: int = 365
    rate_limit_auth_per_minute: int = 20
    rate_limit_api_per_minute: int = 1200
    audit_retention_days: int = 365
    trusted_proxies: tuple[str, ...] = ("127.0.0.1", "::1")
    ws_max_message_size: int = 64 * 1024
    ws_max_subscriptions: int = 200
    ws_send_queue: int = 2000
    ws_heartbeat_seconds: float = 30.0
    ws_idle_timeout_seconds: float = 300.0
    ws_max_errors: int = 20
    event_retention_days: int = 30
    event_retention_max: int = 5_000_000
    llm_providers: tuple[dict, ...] = ()
    mcp_servers: tuple[dict, ...] = dataclasses.field(default=(), repr=False)
    mcp_refresh_seconds: float = 300.0
    llm_context_tokens: int = 16_000
    runs_max_concurrent: int = 16
    runs_max_per_user: int = 4
    run_timeout_seconds: float = 900.0
    run_lease_seconds: float = 30.0
    nats_url: str = ""
    nats_subject: str = "agentstead.events"
    instance: str = ""
    instances: int = 1
    tool_timeout_seconds: float = 20.0
    llm_max_retries: int = 4
    llm_timeout_seconds: float = 120.0
    daily_token_budget: int = 0
    http_get_allowed_hosts: tuple[str, ...] = ()
    chat_image_origins: tuple[str, ...] = ()
    idempotency_key_ttl: float = 86400.0
    readyz_write_window: float = 30.0
    gc_thresholds: tuple[int, ...] = (10_000, 20, 100)
    log_level: str = "info"
    log_format: str = "json"
    tracing_endpoint: str = ""
    tracing_headers: tuple[tuple[str, str], ...] = dataclasses.field(default=(), repr=False)
    tracing_service_name: str = "agentstead"
    tracing_sample_ratio: float = 1.0
    backup_enabled: bool = False
    backup_s3_bucket: str = ""
    backup_s3_endpoint: str = ""
    backup_s3_path: str = "agentstead"
    backup_s3_region: str = "us-east-1"
    backup_s3_force_path_style: str = "auto"
    backup_s3_access_key_id: str = dataclasses.field(default="", repr=False)
    backup_s3_secret_access_key: str = dataclasses.field(default="", repr=False)
    backup_local_path: str = "./var/replica"
    backup_sync_interval: float = 1.0
    backup_snapshot_interval: float = 86400.0
    backup_retention: float = 7 * 86400.0
    backup_max_lag: float = 60.0
    backup_drill_max_age: float = 36 * 3600.0
    backup_litestream: str = ""
    # Where each value came from, for `config show`.
    sources: Mapping[str, str] = dataclasses.field(default_factory=dict, compare=False, repr=False)

    @property
    def production(self) -> bool:
        return self.env == "production"

    @property
    def db_file(self) -> Path:
        return Path(self.database_path) if self.database_path else Path(self.state_dir) / "agentstead.db"

    def replace(self, **changes: Any) -> "Settings":
        return dataclasses.replace(self, **changes)


def _read_secret_file(setting: Setting, path: str, env: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(env, f"cannot read {path}: {exc.strerror or exc}") from None


def _collect(environ: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """Raw values and their sources, before parsing."""
    raw: dict[str, Any] = {}
    sources: dict[str, str] = {}

    config_path = environ.get(CONFIG_ENV, "").strip()
    if config_path:
        try:
            with open(config_path, "rb") as fh:
                table = tomllib.load(fh)
        except OSError as exc:
            raise ConfigError(CONFIG_ENV, f"cannot read {config_path}: {exc.strerror or exc}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(CONFIG_ENV, f"{config_path} is not valid TOML: {exc}") from None
        for key, value in table.items():
            setting = BY_NAME.get(key)
            if setting is None:
                raise ConfigError(CONFIG_ENV, f"{config_path}: unknown setting {key!r}")
            raw[key] = value
            sources[key] = f"file {config_path}"

    for key in sorted(environ):
        if not key.startswith(ENV_PREFIX) or key in _META_ENV:
            continue
        setting = BY_ENV.get(key)
        if setting is None:
            raise ConfigError(key, "unknown setting (see the configuration reference in docs/operations.md)")
        raw[setting.name] = environ[key]
        sources[setting.name] = "environment"

    creds = environ.get("CREDENTIALS_DIRECTORY", "").strip()
    for setting in SETTINGS:
        if not setting.secret:
            continue
        file_env = setting.env + "_FILE"
        if environ.get(file_env, "").strip():
            raw[setting.name] = _read_secret_file(setting, environ[file_env].strip(), file_env)
            sources[setting.name] = f"file {environ[file_env].strip()}"
        if creds:
            cred = Path(creds) / setting.name
            if cred.is_file():
                raw[setting.name] = _read_secret_file(setting, str(cred), setting.env)
                sources[setting.name] = f"credential {setting.name}"
    return raw, sources


def _provider_secret(provider: dict, file_key: str, credential: str, setting: str,
                     environ: Mapping[str, str]) -> str:
    """A provider's secret: from the file its entry names, else the systemd credential; '' if neither."""
    path = provider[file_key]
    if path:
        try:
            return Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(BY_NAME[setting].env, f"provider {provider['name']!r}: cannot read {file_key} "
                                                   f"{path}: {exc.strerror}") from None
    creds = environ.get("CREDENTIALS_DIRECTORY", "").strip()
    if creds and (Path(creds) / credential).is_file():
        return (Path(creds) / credential).read_text(encoding="utf-8").strip()
    return ""


def _provider_secrets(providers: tuple[dict, ...], environ: Mapping[str, str]) -> tuple[dict, ...]:
    """Each OIDC provider's client secret (required): client_secret_file or oidc_<name>_client_secret."""
    out = []
    for p in providers:
        credential = f"oidc_{p['name']}_client_secret"
        secret = _provider_secret(p, "client_secret_file", credential, "oidc_providers", environ)
        if not secret:
            raise ConfigError(BY_NAME["oidc_providers"].env, f"provider {p['name']!r} has no client secret: set "
                                                              f"client_secret_file or the credential {credential}")
        out.append({**p, "client_secret": secret})
    return tuple(out)


def _llm_keys(providers: tuple[dict, ...], environ: Mapping[str, str]) -> tuple[dict, ...]:
    """Each model provider's API key: api_key_file or llm_<name>_api_key. Optional (local Ollama, llama.cpp)."""
    return tuple({**p, "api_key": _provider_secret(p, "api_key_file", f"llm_{p['name']}_api_key", "llm_providers",
                                                   environ)} for p in providers)


def _check_production(values: dict[str, Any]) -> None:
    if values["env"] != "production":
        return
    key = values["secret_key"]
    if len(key.encode()) < MIN_SECRET_BYTES:
        what = "is missing" if not key else f"is {len(key.encode())} bytes"
        raise ConfigError(BY_NAME["secret_key"].env,
                          f"{what}; production needs at least {MIN_SECRET_BYTES} bytes "
                          "(generate one with: openssl rand -base64 48)")
    if not values["public_url"].startswith("https://"):
        raise ConfigError(BY_NAME["public_url"].env,
                          f"must be https in production (got {values['public_url']!r})")
    if "*" in values["cors_origins"]:
        raise ConfigError(BY_NAME["cors_origins"].env, "a wildcard origin is refused in production")


def _check_backup(values: dict[str, Any]) -> None:
    """The replica settings must make sense together (checked even when backups are off)."""
    key_id, secret = values["backup_s3_access_key_id"], values["backup_s3_secret_access_key"]
    if bool(key_id) != bool(secret):
        missing = "backup_s3_secret_access_key" if key_id else "backup_s3_access_key_id"
        raise ConfigError(BY_NAME[missing].env, "is missing; give both S3 keys or neither")
    if values["backup_s3_endpoint"] and not values["backup_s3_bucket"]:
        raise ConfigError(BY_NAME["backup_s3_bucket"].env, "is required when AGENTSTEAD_BACKUP_S3_ENDPOINT is set")
    if values["backup_s3_endpoint"]:
        try:
            _url_with_path(values["backup_s3_endpoint"])
        except ValueError as exc:
            raise ConfigError(BY_NAME["backup_s3_endpoint"].env, str(exc)) from None
    if values["backup_s3_bucket"] and not values["backup_s3_path"].strip("/"):
        raise ConfigError(BY_NAME["backup_s3_path"].env, "must not be empty (one prefix per database)")
    if not values["backup_s3_bucket"] and not values["backup_local_path"]:
        raise ConfigError(BY_NAME["backup_local_path"].env, "must be set when no S3 bucket is configured")


def load(environ: Mapping[str, str] | None = None) -> Settings:
    """Read, parse and validate every source. Does not touch the state directory."""
    environ = os.environ if environ is None else environ
    raw, sources = _collect(environ)
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        if setting.name in raw:
            try:
                values[setting.name] = setting.parse(raw[setting.name])
            except ValueError as exc:
                raise ConfigError(setting.env, str(exc)) from None
        else:
            values[setting.name] = setting.default
            sources.setdefault(setting.name, "default")
    values["oidc_providers"] = _provider_secrets(values["oidc_providers"], environ)
    values["llm_providers"] = _llm_keys(values["llm_providers"], environ)
    try:
        values["mcp_servers"] = settings_mcp.with_headers(values["mcp_servers"], environ, _provider_secret)
    except ValueError as exc:
        raise ConfigError(BY_NAME["mcp_servers"].env, str(exc)) from None
    _check_production(values)
    _check_backup(values)
    if values["host"]:
        try:
            ipaddress.ip_address(values["host"])
        except ValueError:
            if not all(c.isalnum() or c in ".-" for c in values["host"]):
                raise ConfigError(BY_NAME["host"].env, f"is not an address or host name ({values['host']!r})")
    return Settings(**values, sources=sources)


def ensure_secret_key(settings: Settings) -> Settings:
    """Outside production, generate a secret key once and keep it (0600) in the state directory."""
    if settings.secret_key or settings.production:
        return settings
    path = Path(settings.state_dir) / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(48))
    key = path.read_text().strip()
    if len(key.encode()) < MIN_SECRET_BYTES:
        raise ConfigError(BY_NAME["secret_key"].env, f"{path} holds a key shorter than {MIN_SECRET_BYTES} bytes")
    sources = dict(settings.sources, secret_key=f"generated {path}")
    return dataclasses.replace(settings, secret_key=key, sources=sources)


def describe(settings: Settings) -> list[tuple[str, str, str]]:
    """(env var, shown value, source) rows with secrets masked, for `config show`."""
    rows = []
    for setting in SETTINGS:
        value = getattr(settings, setting.name)
        if setting.secret:
            shown = f"****** ({len(str(value).encode())} bytes)" if value else "(unset)"
        elif isinstance(value, tuple) and value and isinstance(value[0], dict):
            shown = json.dumps([{k: ("******" if k in ("client_secret", "api_key", "headers") else v) for k, v in p.items()}
                                for p in value])
        elif isinstance(value, tuple):
            shown = ",".join(map(str, value))
        else:
            shown = str(value)
        rows.append((setting.env, shown, settings.sources.get(setting.name, "default")))
    return rows
