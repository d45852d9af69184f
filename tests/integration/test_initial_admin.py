"""initial_admin_email (services.agentstead.initialAdminEmail): the first start makes that
address an administrator, audited; later starts, or a database that has an administrator,
change nothing. The app reads it back through the admin API as any admin would."""

from __future__ import annotations

import sqlite3

import pytest

from agentstead.settings import ConfigError, load
from agentstead.store.users import User

from ..support.auth import api_token, bearer, make_user

EMAIL = "owner@example.org"


def _rows(settings, sql: str, *args) -> list[tuple]:
    with sqlite3.connect(settings.db_file) as conn:
        return conn.execute(sql, args).fetchall()


async def test_the_first_start_creates_the_administrator_once(make_client, settings):
    configured = settings.replace(initial_admin_email=EMAIL)
    client = await make_client(configured)
    users = _rows(configured, "SELECT id, email, role FROM users")
    assert [(email, role) for _, email, role in users] == [(EMAIL, "admin")]
    audit = _rows(configured, "SELECT action, target, details FROM audit_log WHERE action LIKE 'user.%'")
    assert len(audit) == 1 and audit[0][:2] == ("user.created", users[0][0])
    assert '"source": "initial_admin_email"' in audit[0][2]
    # The administrator can do what administrators do.
    owner = User(users[0][0], EMAIL, "", "admin", False, "", "")
    token = await api_token(client.app, owner, scopes=("read", "write", "admin"))
    listed = await client.get("/api/admin/users", headers=bearer(token))
    assert listed.status == 200 and [u["email"] for u in (await listed.json())["users"]] == [EMAIL]

    await client.raw.close()
    await make_client(configured)  # a restart: nothing new
    assert len(_rows(configured, "SELECT id FROM users")) == 1
    assert len(_rows(configured, "SELECT id FROM audit_log WHERE action LIKE 'user.%'")) == 1


async def test_nothing_happens_when_an_administrator_exists(make_client, settings):
    client = await make_client(settings)
    await make_user(client.app, "root@example.org", "admin")
    await client.raw.close()
    configured = settings.replace(initial_admin_email=EMAIL)
    await make_client(configured)
    assert _rows(configured, "SELECT email, role FROM users") == [("root@example.org", "admin")]


async def test_a_member_with_that_email_becomes_the_administrator(make_client, settings):
    client = await make_client(settings)
    member = await make_user(client.app, EMAIL)
    await client.raw.close()
    configured = settings.replace(initial_admin_email=EMAIL)
    await make_client(configured)
    assert _rows(configured, "SELECT id, role FROM users") == [(member.id, "admin")]
    action, details = _rows(configured, "SELECT action, details FROM audit_log ORDER BY id DESC LIMIT 1")[0]
    assert action == "user.updated" and '"from": "member", "to": "admin"' in details


@pytest.mark.parametrize("value", ["owner", "owner@localhost", "a b@example.org", "@example.org"])
def test_a_malformed_address_is_refused_naming_the_setting(value):
    with pytest.raises(ConfigError) as raised:
        load({"AGENTSTEAD_INITIAL_ADMIN_EMAIL": value})
    assert "AGENTSTEAD_INITIAL_ADMIN_EMAIL" in str(raised.value) and "not an email address" in str(raised.value)
    assert load({"AGENTSTEAD_INITIAL_ADMIN_EMAIL": " owner@example.org "}).initial_admin_email == EMAIL
