"""The admin page's MCP servers (docs/mcp.md): each server's status, its error, who may use it,
and its tools. A tool's description is the MCP server's text, not ours: it is shown as quoted,
untrusted text. The admin page's model holds the fields (mcp, mcp_error, mcp_refreshing); its
update table includes this one."""

from runtime import Update, Http, h
from ui import alert, listing, note, table
from admin_users import why
import fmt


def servers_request():
    return Http("GET", "/api/admin/mcp-servers", None, GotServers, ServersFailed)


on = Update()


@on("body")
def GotServers(model, body):
    return model.but(mcp=body.get("servers") or [], mcp_error=None)


@on("error")
def ServersFailed(model, error):
    return model.but(mcp=[], mcp_error=why(error))


@on("name")
def RefreshServer(model, name):
    return model.but(mcp_refreshing=name), [Http("POST", "/api/admin/mcp-servers/%s/refresh" % name, None,
                                                 Refreshed, ServersFailed)]


@on("server")
def Refreshed(model, server):
    servers = [server if s.get("name") == server.get("name") else s for s in model.mcp or ()]
    return model.but(mcp=servers, mcp_refreshing=None)


def untrusted(text):
    """A server's own words, marked as such (never markup: text nodes only)."""
    return h("blockquote", {"class": "untrusted muted small", "title": "Text from the MCP server (untrusted)"},
             text or "(no description)")


def _server(s, refreshing):
    ok = s.get("status") == "ok"
    who = ", ".join(list(s.get("roles") or ()) + list(s.get("users") or ())) or "nobody"
    return h("li", {"class": "card"}, [
        h("div", {"class": "row"}, [
            h("strong", {}, s.get("name", "")), " ",
            h("span", {"class": "status " + ("s-succeeded" if ok else "s-failed")},
              "OK" if ok else ("Not yet asked" if s.get("status") == "unknown" else "Failing")),
            h("button", {"type": "button", "class": "secondary", "disabled": refreshing,
                         "onclick": RefreshServer(s.get("name", ""))}, "Refreshing…" if refreshing else "Refresh")]),
        h("p", {"class": "muted small"}, "%s · used by %s · %ss, %s characters · tools listed %s" % (
            s.get("url", ""), who, s.get("timeout_seconds"), s.get("max_output"), fmt.when(s.get("refreshed_at")))),
        alert(s.get("error")),
        table("Tools of " + s.get("name", ""), ("Tool", "Description (from the server, untrusted)"),
              [h("tr", {}, [h("th", {"scope": "row"}, t.get("name", "")), h("td", {}, untrusted(t.get("description")))])
               for t in s.get("tools") or ()]),
        note("Not on the allow-list: " + ", ".join(s["left_out"])) if s.get("left_out") else None,
    ])


def section(model):
    if model.mcp_error:
        return [alert(model.mcp_error)]
    return [listing(model.mcp, "Loading MCP servers…", "No MCP servers are configured (AGENTSTEAD_MCP_SERVERS).",
                    lambda servers: h("ul", {"class": "list", "aria-label": "MCP servers"},
                                      [_server(s, model.mcp_refreshing == s.get("name")) for s in servers]))]
