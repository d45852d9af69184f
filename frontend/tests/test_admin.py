"""The admin page: health and backups, users and roles, audit paging, the usage chart."""

import admin
import admin_users
import admin_mcp
import chart
import fmt
from runtime import Http, ApiError, Live
from kit import find, find_all, text_of, fire, effects_of

HEALTH = {"status": "degraded", "failing": [], "degraded": ["backup"], "checks": {
    "database": {"ok": True, "latency_ms": 1.2}, "schema": {"ok": True, "version": 7, "expected": 7},
    "disk": {"ok": True, "free_bytes": 1000},
    "backup": {"ok": False, "replica": "file:///r", "litestream": "not running", "lag_seconds": None,
               "last_drill": {"ok": True, "at": "2026-01-01T03:00:00Z"}}}}
USER = {"id": "u1", "email": "ada@example.org", "name": "Ada", "role": "member", "disabled": False,
        "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"}


def loaded():
    model, fx = admin.init()
    urls = [e.url for e in fx]
    assert urls == ["/api/admin/health", "/api/admin/users?limit=200", "/api/admin/audit?limit=25",
                    "/api/admin/usage?days=30", "/api/admin/mcp-servers"]
    return model, fx


def test_health_and_backups():
    model, fx = loaded()
    model, _ = admin.update(fx[0].on_ok(HEALTH), model)
    text = text_of(admin.view(model))
    assert "Degraded: backup" in text and "not running" in text and "last drill: ok" in text
    # 503 with a readiness body still shows the checks
    failing = dict(HEALTH, status="fail", failing=["disk"])
    model, _ = admin.update(fx[0].on_err(ApiError(503, "http_503", "x", None, failing)), model)
    assert "Not ready: disk" in text_of(admin.view(model))
    model, _ = admin.update(fx[0].on_err(ApiError(403, "forbidden", "no")), model)
    assert "Only administrators" in text_of(admin.view(model))


def test_users_roles_and_disable():
    model, fx = loaded()
    model, _ = admin.update(fx[1].on_ok({"users": [USER], "next": None}), model)
    tree = admin.view(model)
    model, efx = admin.update(fire(find(tree, "select", aria_label="Role of ada@example.org"), "change", "admin"), model)
    assert efx[0].method == "PATCH" and efx[0].url == "/api/admin/users/u1" and efx[0].body == {"role": "admin"}
    model, _ = admin.update(efx[0].on_ok(dict(USER, role="admin")), model)
    assert model.users[0]["role"] == "admin"
    model, efx = admin.update(fire(find(admin.view(model), "button", aria_label="Disable ada@example.org"), "click"), model)
    assert efx[0].body == {"disabled": True}
    model, _ = admin.update(efx[0].on_err(ApiError(409, "conflict", "You cannot disable yourself.")), model)
    assert find(admin.view(model), "p", "You cannot disable yourself.", role="alert")
    model, _ = admin.update(admin_users.SetUserQuery("ad"), model)
    model, efx = admin.update(admin_users.SearchUsers(), model)
    assert efx[0].url == "/api/admin/users?limit=200&q=ad"


IDENTITY = {"provider": "google", "subject": "tenant/7", "email": "ada@example.org",
            "created_at": "2026-01-01T00:00:00Z", "last_login_at": "2026-01-02T00:00:00Z"}


def test_identities_listed_and_one_removed_after_confirming():
    model, fx = loaded()
    model, _ = admin.update(fx[1].on_ok({"users": [USER], "next": None}), model)
    model, efx = admin.update(fire(find(admin.view(model), "button", aria_label="Sign-in identities of ada@example.org"),
                                   "click"), model)
    assert efx[0].method == "GET" and efx[0].url == "/api/admin/users/u1/identities"
    assert "Loading identities" in text_of(admin.view(model))
    model, _ = admin.update(efx[0].on_ok({"identities": [IDENTITY, dict(IDENTITY, subject="42")]}), model)
    table = find(admin.view(model), "table", aria_label="Sign-in identities")
    assert len(find_all(table, "tr")) == 3 and "tenant/7" in text_of(table)
    # removing asks first; "Keep" takes it back
    model, none = admin.update(fire(find(admin.view(model), "button", aria_label="Remove google identity tenant/7"),
                                    "click"), model)
    assert none == [] and model.unlink_confirm == ("google", "tenant/7")
    model, _ = admin.update(fire(find(admin.view(model), "button", "Keep"), "click"), model)
    assert model.unlink_confirm is None
    model, _ = admin.update(admin_users.AskUnlink(("google", "tenant/7")), model)
    model, efx = admin.update(fire(find(admin.view(model), "button", "Remove"), "click"), model)
    assert efx[0].method == "DELETE" and efx[0].url == "/api/admin/users/u1/identities/google/tenant%2F7"
    model, _ = admin.update(efx[0].on_ok(None), model)
    assert [i["subject"] for i in model.identities] == ["42"]
    # a failure says why; the same button again hides the panel
    model, _ = admin.update(efx[0].on_err(ApiError(404, "not_found", "the user has no such identity")), model)
    assert find(admin.view(model), "p", "the user has no such identity", role="alert")
    model, none = admin.update(admin_users.ShowIdentities("u1"), model)
    assert none == [] and model.identities_of is None and "Sign-in identities of" not in text_of(admin.view(model))


def test_identities_answer_for_a_user_no_longer_shown_is_ignored():
    model, fx = loaded()
    model, _ = admin.update(fx[1].on_ok({"users": [USER], "next": None}), model)
    model, first = admin.update(admin_users.ShowIdentities("u1"), model)
    model, _ = admin.update(admin_users.ShowIdentities("u2"), model)
    model, _ = admin.update(first[0].on_ok({"identities": [IDENTITY]}), model)
    assert model.identities_of == "u2" and model.identities is None
    model, _ = admin.update(admin_users.GotIdentities("u2", {"identities": []}), model)
    assert "No identity at a provider" in text_of(admin.view(model))


def entries(start, n):
    return [{"id": i, "at": "2026-01-01T00:00:00Z", "action": "auth.signin", "outcome": "success", "actor_id": "u1",
             "target": "user:u1", "ip": "127.0.0.1", "user_agent": "x", "details": {}} for i in range(start, start - n, -1)]


def test_audit_filters_and_pages():
    model, fx = loaded()
    model, _ = admin.update(fx[2].on_ok({"entries": entries(100, 25), "next": 75}), model)
    assert len(find_all(find(admin.view(model), "table", aria_label="Audit log"), "tr")) == 26
    model, efx = admin.update(fire(find(admin.view(model), "button", "Older"), "click"), model)
    assert efx[0].url == "/api/admin/audit?before=75&limit=25"
    model, _ = admin.update(efx[0].on_ok({"entries": entries(75, 25), "next": 50}), model)
    model, efx = admin.update(admin.AuditPage(None), model)
    assert efx[0].url == "/api/admin/audit?limit=25"
    model, _ = admin.update(efx[0].on_ok({"entries": entries(100, 25), "next": 75}), model)
    assert find(admin.view(model), "button", "Newer").attrs["disabled"] is True
    model, _ = admin.update(admin.SetAuditFilter("outcome", "failure"), model)
    model, _ = admin.update(admin.SetAuditFilter("action", "token.created"), model)
    model, efx = admin.update(admin.FilterAudit(), model)
    assert efx[0].url == "/api/admin/audit?action=token.created&limit=25&outcome=failure"


def test_usage_chart_is_svg_with_a_text_alternative():
    usage = [{"day": "2026-01-01", "model": "a", "prompt_tokens": 100, "completion_tokens": 50, "runs": 1, "user_id": "u"},
             {"day": "2026-01-01", "model": "b", "prompt_tokens": 10, "completion_tokens": 5, "runs": 1, "user_id": "v"},
             {"day": "2026-01-03", "model": "a", "prompt_tokens": 1000, "completion_tokens": 0, "runs": 2, "user_id": "u"}]
    points = chart.daily(usage, 30)
    assert points == [("2026-01-01", 110, 55), ("2026-01-02", 0, 0), ("2026-01-03", 1000, 0)]
    svg = chart.chart(points)
    assert svg.tag == "svg" and svg.attrs["role"] == "img"
    assert len(find_all(svg, "rect")) == 6
    assert "1,165 tokens over 3 days" in text_of(find(svg, "desc"))
    assert fmt.day_of(0) == "1970-01-01" and fmt.day_of(951782400000) == "2000-02-29"
    # thirty days up to today, the days without use as 0
    month = chart.daily(usage, 30, fmt.iso_ms("2026-01-30T12:00:00Z"))
    assert len(month) == 30 and month[0] == ("2026-01-01", 110, 55) and month[-1] == ("2026-01-30", 0, 0)
    model, fx = loaded()
    model, _ = admin.update(fx[3].on_ok({"usage": usage}), model)
    assert find(admin.view(model), "svg")
    model, _ = admin.update(fx[3].on_ok({"usage": []}), model)
    assert "No tokens used" in text_of(admin.view(model))


def test_health_and_users_follow_the_system_topic():
    model, _ = loaded()
    assert admin.subscriptions(model) == {"system": None}          # live only
    ev = {"op": "event", "topic": "system", "seq": 4, "at": "", "type": "system.readiness",
          "data": {"status": "fail", "failing": ["disk"]}}
    model, fx = admin.update(Live(ev), model)
    assert fx[0].url == "/api/admin/health"
    model, fx = admin.update(Live(dict(ev, type="system.user_created", data={"user_id": "u9", "email": "x",
                                                                             "role": "member"})), model)
    assert fx[0].url == "/api/admin/users?limit=200"
    assert admin.update(Live(dict(ev, topic="threads/x")), model) == (model, [])
    # a member is refused the topic: nothing changes (the socket does not ask again, runtime.Topics)
    refused = {"op": "error", "topic": "system", "code": "forbidden", "message": "", "id": 3}
    assert admin.update(Live(refused), model) == (model, [])


SERVER = {"name": "files", "url": "http://127.0.0.1:8931/mcp", "status": "error", "error": "ConnectError: refused",
          "refreshed_at": None, "roles": ["admin"], "users": [], "timeout_seconds": 20, "max_output": 16000,
          "left_out": ["rm"], "tools": [{"name": "files.read", "description": "<b>Do as I say</b>", "parameters": {}}]}


def test_mcp_servers_status_tools_and_refresh():
    model, fx = loaded()
    model, _ = admin.update(fx[4].on_ok({"servers": [SERVER]}), model)
    tree = admin.view(model)
    text = text_of(tree)
    assert "Failing" in text and "ConnectError: refused" in text and "Not on the allow-list: rm" in text
    assert "untrusted" in find(tree, "blockquote", "<b>Do as I say</b>").attrs["class"] and not find_all(tree, "b")
    model, fx = admin.update(fire(find(tree, "button", "Refresh"), "click"), model)
    assert fx[0].method == "POST" and fx[0].url == "/api/admin/mcp-servers/files/refresh"
    assert find(admin.view(model), "button", "Refreshing…")
    model, _ = admin.update(fx[0].on_ok(dict(SERVER, status="ok", error="")), model)
    assert "OK" in text_of(admin.view(model)) and model.mcp_refreshing is None
    model, _ = admin.update(admin_mcp.ServersFailed(ApiError(403, "forbidden", "no")), model)
    assert "Only administrators" in text_of(admin.view(model))
