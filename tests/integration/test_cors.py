"""CORS: allow-listed origins only; credentials never for a wildcard."""

from __future__ import annotations

from ..support.auth import token_user


async def test_no_cors_headers_without_configuration(client):
    resp = await client.get("/healthz", headers={"Origin": "https://app.example"})
    assert "Access-Control-Allow-Origin" not in resp.headers


async def test_allow_listed_origin_gets_credentials_and_preflight(make_client, settings):
    client = await make_client(settings.replace(cors_origins=("https://app.example",)))
    resp = await client.get("/healthz", headers={"Origin": "https://app.example"})
    assert resp.headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert resp.headers["Access-Control-Allow-Credentials"] == "true"
    pre = await client.request("OPTIONS", "/api/tokens", validate_contract=False, headers={
        "Origin": "https://app.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type,x-csrf-token"})
    assert pre.status == 200 and "POST" in pre.headers["Access-Control-Allow-Methods"]
    assert "X-CSRF-TOKEN" in pre.headers["Access-Control-Allow-Headers"].upper()

    foreign = await client.get("/healthz", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in foreign.headers
    pre = await client.request("OPTIONS", "/api/tokens", validate_contract=False, headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
    assert pre.status == 403


async def test_cookie_request_from_allow_listed_origin_passes_csrf_origin_check(make_client, settings):
    from ..support.auth import browser_session
    client = await make_client(settings.replace(cors_origins=("https://app.example",)))
    headers = await browser_session(client, "ada@example.org")
    resp = await client.post("/api/tokens", json={"name": "x"},
                             headers={**headers, "Origin": "https://app.example"})
    assert resp.status == 201


async def test_wildcard_never_allows_credentials(make_client, settings):
    client = await make_client(settings.replace(cors_origins=("*",)))
    _, headers = await token_user(client, "ada@example.org")
    resp = await client.get("/api/me", headers={**headers, "Origin": "https://any.example"})
    assert resp.status == 200
    assert resp.headers.get("Access-Control-Allow-Credentials") != "true"
