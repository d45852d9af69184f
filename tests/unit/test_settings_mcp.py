"""AGENTSTEAD_MCP_SERVERS: parsed, checked, headers read from files, never shown."""

from __future__ import annotations

import json

import pytest

from agentstead.settings import ConfigError, describe, load

BASE = {"AGENTSTEAD_STATE_DIR": "/tmp/x"}


def servers(*entries) -> dict:
    return {**BASE, "AGENTSTEAD_MCP_SERVERS": json.dumps(list(entries))}


def test_a_server_with_defaults():
    s = load(servers({"name": "files", "url": "http://127.0.0.1:8931/mcp"}))
    (server,) = s.mcp_servers
    assert server["roles"] == ("admin",) and server["tools"] == () and server["headers"] == {}
    assert server["timeout_seconds"] == 20.0 and server["max_output"] == 16_000


@pytest.mark.parametrize("entry, message", [
    ({"name": "a", "url": "ftp://x/mcp"}, "url must be an http(s) URL"),
    ({"name": "a", "url": "http://user:pw@x/mcp"}, "without user:password@"),
    ({"name": "a", "url": "http://x/mcp", "headers": {"A": "b"}}, "unknown keys: headers"),
    ({"name": "a", "url": "http://x/mcp", "roles": ["root"]}, "roles must be"),
    ({"name": "a", "url": "http://x/mcp", "tools": ["bad name"]}, "is not a tool name"),
    ({"name": "a", "url": "http://x/mcp", "timeout_seconds": 0}, "timeout_seconds must be"),
    ({"name": "A b", "url": "http://x/mcp"}, "needs a name"),
])
def test_bad_entries_are_refused_naming_the_problem(entry, message):
    with pytest.raises(ConfigError, match="AGENTSTEAD_MCP_SERVERS") as caught:
        load(servers(entry))
    assert message in str(caught.value)


def test_headers_come_from_the_file_or_the_credential_and_are_masked(tmp_path):
    path = tmp_path / "h"
    path.write_text("# the token\nAuthorization: Bearer abc123\n\nX-Other: 1\n")
    s = load(servers({"name": "a", "url": "http://x/mcp", "headers_file": str(path)}))
    assert s.mcp_servers[0]["headers"] == {"Authorization": "Bearer abc123", "X-Other": "1"}
    shown = dict((env, value) for env, value, _ in describe(s))["AGENTSTEAD_MCP_SERVERS"]
    assert "abc123" not in shown and '"headers": "******"' in shown
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "mcp_b_headers").write_text("X-Key: k\n")
    s = load({**servers({"name": "b", "url": "http://x/mcp"}), "CREDENTIALS_DIRECTORY": str(creds)})
    assert s.mcp_servers[0]["headers"] == {"X-Key": "k"}
    assert "abc123" not in repr(s)


def test_a_malformed_headers_file_is_refused(tmp_path):
    path = tmp_path / "h"
    path.write_text("just a token\n")
    with pytest.raises(ConfigError, match="line 1 is not `Header-Name: value`"):
        load(servers({"name": "a", "url": "http://x/mcp", "headers_file": str(path)}))
    with pytest.raises(ConfigError, match="cannot read headers_file"):
        load(servers({"name": "a", "url": "http://x/mcp", "headers_file": str(tmp_path / "missing")}))
