"""The mcp_servers setting: MCP servers whose tools agents may use (docs/mcp.md).

Parsed like the model providers (a TOML array of tables, or a JSON array in the
environment). The request headers (credentials) come from a file the entry names,
or the systemd credential mcp_<name>_headers: never from the setting itself, so
they are never in the Nix store, `config show`, the logs or an event.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable, Mapping
from urllib.parse import urlsplit

KEYS = {"url", "headers_file", "tools", "timeout_seconds", "max_output", "roles", "users", "description"}
_TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")
ROLES = ("admin", "member")


def parse(entries: list[tuple[str, dict]]) -> tuple[dict, ...]:
    """Checked server entries (names already checked by settings._named_entries)."""
    out = []
    for name, item in entries:
        url = str(item.get("url", "")).strip()
        parts = urlsplit(url)
        if parts.username is not None:   # not echoed: it holds a password
            raise ValueError(f"server {name!r}: url must be without user:password@ (credentials go in "
                             "headers_file)")
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.fragment:
            raise ValueError(f"server {name!r}: url must be an http(s) URL of its streamable-HTTP endpoint "
                             f"(got {url!r})")
        tools = _names(item.get("tools", []), f"server {name!r}: tools", _TOOL_NAME)
        roles = _names(item.get("roles", ["admin"]), f"server {name!r}: roles", None)
        if any(r not in ROLES for r in roles):
            raise ValueError(f"server {name!r}: roles must be a list of {' and '.join(ROLES)}")
        users = tuple(u.lower() for u in _names(item.get("users", []), f"server {name!r}: users", None))
        out.append({"name": name, "url": url, "headers_file": str(item.get("headers_file", "")),
                    "tools": tools, "roles": roles, "users": users,
                    "description": str(item.get("description", "")),
                    "timeout_seconds": _number(name, item, "timeout_seconds", 20.0, 0.1, 3600),
                    "max_output": int(_number(name, item, "max_output", 16_000, 100, 10_000_000))})
    return tuple(out)


def _names(raw: Any, where: str, pattern: re.Pattern | None) -> tuple[str, ...]:
    if not isinstance(raw, list) or not all(isinstance(x, str) and x for x in raw):
        raise ValueError(f"{where} must be a list of names")
    bad = [x for x in raw if pattern is not None and not pattern.match(x)]
    if bad:
        raise ValueError(f"{where}: {bad[0]!r} is not a tool name (letters, digits, _ or -, at most 64)")
    return tuple(dict.fromkeys(raw))


def _number(name: str, item: dict, key: str, default: float, lo: float, hi: float) -> float:
    value = item.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
        raise ValueError(f"server {name!r}: {key} must be a number from {lo:g} to {hi:g} (got {value!r})")
    return float(value)


def read_headers(text: str) -> dict[str, str]:
    """`Name: value` lines (blank lines and # comments skipped)."""
    headers = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, colon, value = line.partition(":")
        if not colon or not _HEADER_NAME.match(key.strip()):
            raise ValueError(f"line {number} is not `Header-Name: value`")
        headers[key.strip()] = value.strip()
    return headers


def with_headers(servers: tuple[dict, ...], environ: Mapping[str, str],
                 secret: Callable[[dict, str, str, str, Mapping[str, str]], str]) -> tuple[dict, ...]:
    """Each server with its `headers`, read from headers_file or the credential mcp_<name>_headers."""
    out = []
    for s in servers:
        text = secret(s, "headers_file", f"mcp_{s['name']}_headers", "mcp_servers", environ)
        try:
            headers = read_headers(text)
        except ValueError as exc:
            where = s["headers_file"] or str(Path(environ.get("CREDENTIALS_DIRECTORY", "")) / f"mcp_{s['name']}_headers")
            raise ValueError(f"server {s['name']!r}: {where}: {exc}") from None
        out.append({**s, "headers": headers})
    return tuple(out)
