"""The agents page: your agents, a form to create or edit one (instructions, model, tools),
and a button to chat with each."""

from runtime import Update, Http, Navigate, h, memo, put, Record, key_for
from ui import alert, listing, field, described, checks, select, typed

FIELDS = ("name", "instructions", "model", "tools")
TOOLS = ("current_time", "calculator", "http_get", "ask_human")


def blank():
    return {"name": "", "instructions": "", "model": "", "tools": ()}


class Model(Record):
    def __init__(self):
        self.agents = None                        # None while loading
        self.form = blank()
        self.errors = {}                          # field -> message, from error.details.errors[].pointer
        self.form_error = None
        self.saving = False
        self.load_error = None
        self.editing = None                       # id of the agent being edited; None: a new one
        self.models = ()                          # (provider, model) pairs offered
        self.tools = {}                           # tool name -> description (from /api/models)
        self.mcp_tools = ()                       # (name, server, description) of MCP tools offered to you
        self.confirm = None                       # id of the agent whose deletion awaits a yes
        self.idem = None                          # (Idempotency-Key, what it was sent with) of the last create


def init(_=None):
    return Model(), [Http("GET", "/api/agents?limit=200", None, lambda d: GotAgents(d["agents"]), LoadFailed),
                     Http("GET", "/api/models", None, GotModels, lambda e: GotModels({}))]


def models_of(body):
    """(provider, model) pairs: each provider's configured models (its default first)."""
    out = []
    for p in body.get("providers") or ():
        names = [p.get("default_model")] + [m for m in p.get("configured_models") or () if m != p.get("default_model")]
        out += [(p["provider"], m) for m in names if m]
    return tuple(out)


def field_errors(error):
    """{field: message} for fields of this form; anything else becomes a form-level message."""
    fields, rest = {}, []
    for pointer, message in error.field_errors().items():
        name = pointer.lstrip("/").split("/")[0]
        if name in FIELDS:
            fields[name] = message
        else:
            rest.append((pointer + ": " if pointer else "") + message)
    return fields, "; ".join(rest) or (None if fields else error.message)


on = Update()
update = on.update


@on("agents")
def GotAgents(model, agents):
    return model.but(agents=agents, load_error=None)


@on("error")
def LoadFailed(model, error):
    return model.but(agents=[], load_error=error.message)


@on("body")
def GotModels(model, body):
    listed = body.get("tools") or ()
    tools = {t["name"]: t.get("description", "") for t in listed if t.get("source", "builtin") == "builtin"}
    mcp = tuple((t["name"], t.get("server", ""), t.get("description", "")) for t in listed if t.get("source") == "mcp")
    return model.but(models=models_of(body), tools=tools, mcp_tools=mcp)


@on("field value")
def SetField(model, field, value):
    return model.but(form=put(model.form, field, value), errors=put(model.errors, field, None))


@on("tool")
def ToggleTool(model, tool):
    chosen = model.form["tools"]
    order = TOOLS + tuple(m[0] for m in model.mcp_tools)
    # a tool no longer offered (its server's grant withdrawn) stays until unticked
    kept = tuple(t for t in chosen if t not in order and t != tool)
    return model.but(form=put(model.form, "tools", tuple(t for t in order if (t in chosen) != (t == tool)) + kept))


@on("agent_id")
def Edit(model, agent_id):
    agent = [a for a in model.agents or () if a["id"] == agent_id]
    if not agent:
        return model
    a = agent[0]
    form = {"name": a["name"], "instructions": a.get("instructions") or "",
            "model": "%s/%s" % (a.get("provider"), a.get("model")), "tools": tuple(a.get("tools") or ())}
    return model.but(editing=a["id"], form=form, errors={}, form_error=None)


@on()
def CancelEdit(model):
    return model.but(editing=None, form=blank(), errors={}, form_error=None)


@on()
def Submit(model):
    if model.saving:
        return model
    body = {"name": model.form["name"], "tools": list(model.form["tools"])}
    if model.form["instructions"].strip() or model.editing:
        body["instructions"] = model.form["instructions"]
    if model.form["model"]:
        body["provider"], _, body["model"] = model.form["model"].partition("/")
    if model.editing:
        return model.but(saving=True, form_error=None), [
            Http("PATCH", "/api/agents/" + model.editing, body, Saved, SaveFailed)]
    idem = key_for(model.idem, ("agent", body))   # the same form sent again: the same key (no duplicate)
    return model.but(saving=True, form_error=None, idem=idem), [
        Http("POST", "/api/agents", body, Saved, SaveFailed, key=idem[0])]


@on("agent")
def Saved(model, agent):
    rest = [a for a in model.agents or () if a["id"] != agent["id"]]
    return model.but(agents=[agent] + rest, form=blank(), errors={}, form_error=None, saving=False,
                     editing=None, idem=None)


@on("error")
def SaveFailed(model, error):
    fields, form_error = field_errors(error)
    return model.but(saving=False, errors=fields, form_error=form_error)


@on("agent_id")
def AskDelete(model, agent_id):
    """Ask to confirm deleting an agent (None: never mind)."""
    return model.but(confirm=agent_id)


@on("agent_id")
def Delete(model, agent_id):
    return model.but(confirm=None), [Http("DELETE", "/api/agents/" + agent_id, None,
                                          lambda _: Deleted(agent_id), ActionFailed)]


@on("agent_id")
def Deleted(model, agent_id):
    changes = {"agents": [a for a in model.agents or () if a["id"] != agent_id]}
    if model.editing == agent_id:
        changes.update(editing=None, form=blank(), errors={})
    return model.but(**changes)


@on("agent_id")
def StartChat(model, agent_id):
    body = {"agent_id": agent_id}
    idem = key_for(model.idem, ("thread", body))   # a second click before the answer: one thread
    return model.but(idem=idem), [Http("POST", "/api/threads", body, ThreadCreated, ActionFailed, key=idem[0])]


@on("thread")
def ThreadCreated(model, thread):
    return model, [Navigate("/chat/" + thread["id"])]


@on("error")
def ActionFailed(model, error):
    return model.but(load_error=error.message)


# ---------------------------------------------------------------- view

def _field(model, name, label, multiline=False):
    fid, err = "agent-" + name, model.errors.get(name)
    attrs = dict(described(fid, err), name=name, value=model.form[name],
                 oninput=lambda ev: SetField(name, ev.target.value))
    control = h("textarea", dict(attrs, rows="4")) if multiline else h("input", dict(attrs, type="text",
                                                                                    autocomplete="off"))
    return field(fid, label, control, err)


def _agent_row(agent, confirming=False):
    tools = agent.get("tools") or ()
    name = agent["name"]
    if confirming:
        actions = [h("span", {}, "Delete %s? Its past runs stay. " % name),
                   h("button", {"type": "button", "class": "danger", "onclick": Delete(agent["id"]),
                                "aria-label": "Confirm: delete " + name}, "Yes, delete"),
                   h("button", {"type": "button", "class": "secondary", "onclick": AskDelete(None)}, "Keep")]
    else:
        actions = [
            h("button", {"type": "button", "class": "secondary", "onclick": Edit(agent["id"]),
                         "aria-label": "Edit " + name}, "Edit"),
            h("button", {"type": "button", "class": "secondary", "onclick": AskDelete(agent["id"]),
                         "aria-label": "Delete " + name}, "Delete"),
            h("button", {"type": "button", "onclick": StartChat(agent["id"]),
                         "aria-label": "Chat with " + name}, "Chat")]
    return h("li", {"class": "agent"}, [
        h("div", {}, [h("strong", {}, agent["name"]),
                      h("span", {"class": "muted"}, " · %s · v%d" % (agent["model"], agent["version"])),
                      tools and h("div", {"class": "muted small"}, "Tools: " + ", ".join(tools))]),
        h("div", {"class": "row"}, actions),
    ])


def _model_field(model):
    if not model.models:
        return None
    err = model.errors.get("model")
    options = [("", "Default")] + [("%s/%s" % pm, "%s (%s)" % (pm[1], pm[0])) for pm in model.models]
    return field("agent-model", "Model", select(described("agent-model", err), options, model.form["model"],
                                                typed(_set_model)), err)


def _set_model(value):
    return SetField("model", value)


def _mcp_tools(model):
    """MCP tools (`server.tool`): their descriptions are the servers' text, shown as untrusted quotes."""
    if not model.mcp_tools:
        return None
    return h("fieldset", {"class": "field"}, [
        h("legend", {}, "MCP tools"),
        h("p", {"class": "muted small"}, "Descriptions come from the MCP servers, not from Agentstead."),
        h("div", {"class": "checks"}, [h("label", {"class": "check"}, [
            h("input", {"type": "checkbox", "name": "tool", "value": name, "checked": name in model.form["tools"],
                        "onchange": ToggleTool(name)}), " " + name,
            h("q", {"class": "untrusted muted small", "title": "Text from the MCP server %s (untrusted)"
                             % server}, description or "(no description)")])
            for name, server, description in model.mcp_tools]),
    ])


def view(model):
    agents = listing(model.agents, "Loading agents…", "No agents yet. Create your first one below.", lambda agents: h(
        "ul", {"class": "list", "aria-label": "Agents"}, [memo(_agent_row, a, model.confirm == a["id"], key=a["id"])
                                                         for a in agents]))
    return h("section", {"aria-labelledby": "agents-title"}, [
        h("h1", {"id": "agents-title"}, "Agents"),
        alert(model.load_error),
        agents,
        h("form", {"class": "card", "novalidate": True, "onsubmit": Submit(), "aria-labelledby": "new-agent"}, [
            h("h2", {"id": "new-agent"}, "Edit agent" if model.editing else "New agent"),
            _field(model, "name", "Name"),
            _field(model, "instructions", "Instructions", multiline=True),
            _model_field(model),
            checks("Tools", "tool", TOOLS, model.form["tools"], ToggleTool, model.tools, model.errors.get("tools")),
            _mcp_tools(model),
            alert(model.form_error),
            h("div", {"class": "row"}, [
                h("button", {"type": "submit", "disabled": model.saving},
                  ("Saving…" if model.saving else "Save changes") if model.editing else
                  ("Creating…" if model.saving else "Create agent")),
                model.editing and h("button", {"type": "button", "class": "secondary", "onclick": CancelEdit()},
                                    "Cancel")]),
        ]),
    ])
