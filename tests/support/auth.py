"""Signing users in for tests, through the real service and HTTP paths."""

from __future__ import annotations

from agentstead.auth.access import ROLE_SCOPES, Principal
from agentstead.keys import IDENTITY
from agentstead.services.identity import Context
from agentstead.store.users import User


async def make_user(app, email: str, role: str = "member") -> User:
    return await app[IDENTITY].users.create(email, role, Context())


async def api_token(app, user: User, scopes=("read", "write"), days: int | None = None) -> str:
    """Create an API token as the user would (POST /api/tokens runs the same service call)."""
    principal = Principal(user.id, user.email, user.role, ROLE_SCOPES[user.role], "session", session_id="tests")
    _, plain = await app[IDENTITY].tokens.create(principal, "test token", set(scopes), days, Context())
    return plain


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def token_user(client, email: str, role: str = "member", scopes=("read", "write")) -> tuple[User, dict]:
    user = await make_user(client.app, email, role)
    return user, bearer(await api_token(client.app, user, scopes))


async def browser_session(client, email: str, role: str = "member", *, create: bool = True) -> dict:
    """Sign in through a real single-use sign-in link; cookies land in client's jar.
    Returns headers for unsafe requests (Origin + X-CSRF-Token)."""
    app = client.app
    if create:
        await make_user(app, email, role)
    link = await app[IDENTITY].users.login_link(email, Context())
    path = "/auth/link/" + link.rsplit("/", 1)[1]
    resp = await client.get(path, allow_redirects=False)
    assert resp.status == 302, await resp.text()
    me = await (await client.get("/api/me")).json()
    return {"Origin": app_origin(app), "X-CSRF-Token": me["csrf_token"]}


def app_origin(app) -> str:
    from agentstead.keys import SETTINGS

    return app[SETTINGS].public_url
