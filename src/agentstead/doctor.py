"""`agentstead doctor`: checks a host the way support would, and says how to fix each finding.

Misconfigured proxies and OAuth redirect URIs are the most common failures of
self-hosted apps; each check here names the exact value to fix.
"""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
import sqlite3
from typing import Awaitable, Callable

import aiohttp

from .agents.mcp_client import McpServer
from .settings import Settings
from .store import files
from .store.migrate import latest_version


@dataclasses.dataclass(frozen=True)
class Finding:
    check: str
    ok: bool
    detail: str
    fix: str = ""


def check_database(settings: Settings) -> Finding:
    path = settings.db_file
    if not path.exists():
        return Finding("database", False, f"{path} does not exist",
                       "start Agentstead once (or run `agentstead migrate`); restore a backup if it was lost")
    try:
        version, mode, quick = files.facts(path)
    except sqlite3.Error as exc:
        return Finding("database", False, f"{path} cannot be read: {exc}",
                       "check the file's owner and mode (the service runs as user agentstead), or restore a backup")
    if quick != "ok":
        return Finding("database", False, f"integrity check failed: {quick}",
                       "stop Agentstead and restore the newest backup (`agentstead backup restore`)")
    if version != latest_version():
        return Finding("database", False, f"schema version {version}, this Agentstead expects {latest_version()}",
                       "run `agentstead migrate` (the service does it before it starts)")
    return Finding("database", True, f"{path}: schema {version}, {mode} mode, integrity ok")


def check_disk(settings: Settings) -> Finding:
    directory = settings.db_file.parent
    try:
        free = shutil.disk_usage(directory).free
    except OSError as exc:
        return Finding("disk", False, f"cannot inspect {directory}: {exc.strerror}", "create the state directory")
    if free < settings.min_free_disk:
        return Finding("disk", False, f"{free // 2**20} MiB free in {directory}",
                       "free space (old pre-migration snapshots, logs) or grow the disk")
    return Finding("disk", True, f"{free // 2**20} MiB free in {directory}")


async def check_llm(settings: Settings, http: aiohttp.ClientSession) -> list[Finding]:
    if not settings.llm_providers:
        return [Finding("models", False, "no model provider is configured",
                        "set AGENTSTEAD_LLM_PROVIDERS (docs/operations.md, Model providers); until then runs fail with provider_not_configured")]
    out = []
    for p in settings.llm_providers:
        name = f"models: {p['name']}"
        headers = {"Authorization": f"Bearer {p['api_key']}"} if p["api_key"] else {}
        try:
            async with http.get(p["base_url"] + "/models", headers=headers,
                                timeout=aiohttp.ClientTimeout(total=10)) as resp:
                if resp.status == 401:
                    out.append(Finding(name, False, f"{p['base_url']} refused the API key (401)",
                                       f"put a valid key in api_key_file or the credential llm_{p['name']}_api_key"))
                    continue
                if resp.status != 200:
                    out.append(Finding(name, False, f"{p['base_url']}/models answered {resp.status}",
                                       "check base_url: it must end with the API version, e.g. …/v1"))
                    continue
                offered = {m.get("id") for m in (await resp.json(content_type=None)).get("data", [])}
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
            out.append(Finding(name, False, f"{p['base_url']} cannot be reached: {exc!r}",
                               "check base_url, DNS and the host's outbound firewall"))
            continue
        missing = [m for m in p["models"] if m not in offered]
        if missing:
            out.append(Finding(name, False, f"the provider does not offer {', '.join(missing)}",
                               f"pick models from: {', '.join(sorted(filter(None, offered)))[:300]}"))
        else:
            out.append(Finding(name, True, f"{p['base_url']} answers; {len(offered)} models offered"))
    return out


async def check_oidc(settings: Settings, http: aiohttp.ClientSession) -> list[Finding]:
    out = []
    for p in settings.oidc_providers:
        redirect = f"{settings.public_url}/auth/callback/{p['name']}"
        name = f"sign-in: {p['name']}"
        url = p["issuer"].rstrip("/") + "/.well-known/openid-configuration"
        try:
            async with http.get(url, timeout=aiohttp.ClientTimeout(total=10)) as resp:
                body = await resp.json(content_type=None) if resp.status == 200 else None
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
            out.append(Finding(name, False, f"discovery at {url} failed: {exc!r}",
                               "check the issuer URL (for Google: https://accounts.google.com)"))
            continue
        if not isinstance(body, dict) or str(body.get("issuer", "")).rstrip("/") != p["issuer"].rstrip("/"):
            out.append(Finding(name, False, f"{url} is not this issuer's discovery document",
                               "set issuer to exactly the provider's issuer identifier"))
            continue
        out.append(Finding(name, True, f"discovery works; register this exact redirect URI at the provider: {redirect}"))
    if not settings.oidc_providers:
        out.append(Finding("sign-in", True, "no identity provider configured; sign in with "
                                            "`agentstead admin login-link --email …`"))
    return out


async def check_public_url(settings: Settings, http: aiohttp.ClientSession) -> list[Finding]:
    base = settings.public_url
    out = []
    try:
        async with http.get(base + "/healthz", timeout=aiohttp.ClientTimeout(total=10)) as resp:
            body = await resp.json(content_type=None) if resp.status == 200 else None
            reached = isinstance(body, dict) and body.get("status") == "ok" and "version" in body
    except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
        return [Finding("public URL", False, f"{base}/healthz cannot be reached: {exc!r}",
                        "check DNS for the domain, that Caddy runs (systemctl status caddy) and ports 80/443 are open")]
    if not reached:
        return [Finding("public URL", False, f"{base}/healthz did not answer as Agentstead",
                        "Caddy must proxy /healthz, /api, /auth and /ws to the app (caddy/Caddyfile)")]
    out.append(Finding("public URL", True, f"{base} reaches the app"))
    # The WebSocket upgrade must pass the proxy: unauthenticated, the app itself answers 401 JSON.
    try:
        async with http.ws_connect(base.replace("http", "ws", 1) + "/ws", timeout=aiohttp.ClientWSTimeout(ws_close=5)):
            out.append(Finding("websocket", True, "the upgrade reached the app"))
    except aiohttp.WSServerHandshakeError as exc:
        if exc.status in (401, 403) and exc.headers and "X-Request-ID" in exc.headers:
            out.append(Finding("websocket", True, f"the upgrade request reaches the app through {base}"))
        else:
            out.append(Finding("websocket", False, f"the WebSocket upgrade failed with {exc.status}",
                               "the proxy must pass Upgrade/Connection headers for /ws (Caddy does by default)"))
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        out.append(Finding("websocket", False, f"the WebSocket upgrade failed: {exc!r}",
                           "the proxy must pass Upgrade/Connection headers for /ws"))
    return out


async def check_mcp(settings: Settings, http: aiohttp.ClientSession) -> list[Finding]:
    """Each MCP server answers a tool list over streamable HTTP, with its headers."""
    out = []
    for config in settings.mcp_servers:
        server = McpServer(config)
        try:
            await server.refresh()
        finally:
            await server.close()
        name = f"mcp: {server.name}"
        if server.status != "ok":
            out.append(Finding(name, False, f"{config['url']} did not list its tools: {server.error}",
                               "check url (the streamable-HTTP endpoint, often …/mcp), that the server runs, "
                               f"and its headers (headers_file or the credential mcp_{server.name}_headers)"))
        elif not server.tools:
            out.append(Finding(name, False, f"{config['url']} answers but offers none of the allowed tools "
                                            f"(left out: {', '.join(server.left_out)[:200] or 'none'})",
                               "check the server entry's tools allow-list"))
        else:
            out.append(Finding(name, True, f"{config['url']} answers; {len(server.tools)} tools"))
    return out


async def run_all(settings: Settings) -> list[Finding]:
    findings = [check_database(settings), check_disk(settings)]
    async with aiohttp.ClientSession() as http:
        checks: list[Callable[[Settings, aiohttp.ClientSession], Awaitable[list[Finding]]]] = [
            check_llm, check_oidc, check_public_url, check_mcp]
        for results in await asyncio.gather(*(c(settings, http) for c in checks)):
            findings += results
    return findings


def render(findings: list[Finding]) -> str:
    lines = []
    for f in findings:
        lines.append(f"{'ok  ' if f.ok else 'FAIL'}  {f.check}: {f.detail}")
        if not f.ok and f.fix:
            lines.append(f"      fix: {f.fix}")
    bad = sum(not f.ok for f in findings)
    lines.append(f"\n{len(findings) - bad} ok, {bad} to fix" if bad else f"\nall {len(findings)} checks ok")
    return "\n".join(lines)
