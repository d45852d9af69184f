"""The agents page: your agents, a form to create or edit one (instructions, model, tools),
and a button to chat with each."""

from runtime import Msg, Http, Navigate, h, text, memo, Record, key_for

FIELDS = ("name", "instructions", "model", "tools")
TOOLS = ("current_time", "calculator", "http_get", "ask_human")


class Msg(Msg):
    pass


class GotAgents(Msg):
    def __init__(self, agents):
        self.agents = agents


class LoadFailed(Msg):
    def __init__(self, error):
        self.error = error


class SetField(Msg):
    def __init__(self, field, value):
        self.field, self.value = field, value


class Submit(Msg):
    pass


class Created(Msg):
    def __init__(self, agent):
        self.agent = agent


class CreateFailed(Msg):
    def __init__(self, error):
        self.error = error


class GotModels(Msg):
    def __init__(self, body):
        self.body = body


class ToggleTool(Msg):
    def __init__(self, tool):
        self.tool = tool


class Edit(Msg):
    def __init__(self, agent_id):
        self.agent_id = agent_id


class CancelEdit(Msg):
    pass


class AskDelete(Msg):
    """Ask to confirm deleting an agent (None: never mind)."""

    def __init__(self, agent_id):
        self.agent_id = agent_id


class Delete(Msg):
    def __init__(self, agent_id):
        self.agent_id = agent_id


class Deleted(Msg):
    def __init__(self, agent_id):
        self.agent_id = agent_id


class StartChat(Msg):
    def __init__(self, agent_id):
        self.agent_id = agent_id


class ThreadCreated(Msg):
    def __init__(self, thread):
        self.thread = thread


class ChatFailed(Msg):
    def __init__(self, error):
        self.error = error


def blank():
    return {"name": "", "instructions": "", "model": "", "tools": ()}


class Model(Record):
    def __init__(self, agents=None, form=None, errors=None, form_error=None, saving=False, load_error=None):
        self.agents = agents                      # None while loading
        self.form = form or blank()
        self.errors = errors or {}                # field -> message, from error.details.errors[].pointer
        self.form_error = form_error
        self.saving = saving
        self.load_error = load_error
        self.editing = None                       # id of the agent being edited; None: a new one
        self.models = ()                          # (provider, model) pairs offered
        self.tools = {}                           # tool name -> description (from /api/models)
        self.confirm = None                       # id of the agent whose deletion awaits a yes
        self.idem = None                          # (Idempotency-Key, what it was sent with) of the last create


def init():
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


def update(msg, model):
    if isinstance(msg, GotAgents):
        return model.but(agents=msg.agents, load_error=None), []
    if isinstance(msg, LoadFailed):
        return model.but(agents=[], load_error=msg.error.message), []
    if isinstance(msg, GotModels):
        tools = {t["name"]: t.get("description", "") for t in msg.body.get("tools") or ()}
        return model.but(models=models_of(msg.body), tools=tools), []
    if isinstance(msg, SetField):
        form = dict(model.form)
        form[msg.field] = msg.value
        errors = dict(model.errors)
        errors.pop(msg.field, None)
        return model.but(form=form, errors=errors), []
    if isinstance(msg, ToggleTool):
        form = dict(model.form)
        form["tools"] = tuple(t for t in TOOLS if (t in model.form["tools"]) != (t == msg.tool))
        return model.but(form=form), []
    if isinstance(msg, Edit):
        agent = [a for a in model.agents or () if a["id"] == msg.agent_id]
        if not agent:
            return model, []
        a = agent[0]
        form = {"name": a["name"], "instructions": a.get("instructions") or "",
                "model": "%s/%s" % (a.get("provider"), a.get("model")), "tools": tuple(a.get("tools") or ())}
        return model.but(editing=a["id"], form=form, errors={}, form_error=None), []
    if isinstance(msg, CancelEdit):
        return model.but(editing=None, form=blank(), errors={}, form_error=None), []
    if isinstance(msg, Submit):
        if model.saving:
            return model, []
        body = {"name": model.form["name"], "tools": list(model.form["tools"])}
        if model.form["instructions"].strip() or model.editing:
            body["instructions"] = model.form["instructions"]
        if model.form["model"]:
            body["provider"], _, body["model"] = model.form["model"].partition("/")
        if model.editing:
            return model.but(saving=True, form_error=None), [
                Http("PATCH", "/api/agents/" + model.editing, body, Created, CreateFailed)]
        idem = key_for(model.idem, ("agent", body))   # the same form sent again: the same key (no duplicate)
        return model.but(saving=True, form_error=None, idem=idem), [
            Http("POST", "/api/agents", body, Created, CreateFailed, key=idem[0])]
    if isinstance(msg, Created):
        rest = [a for a in model.agents or () if a["id"] != msg.agent["id"]]
        return model.but(agents=[msg.agent] + rest, form=blank(), errors={}, form_error=None, saving=False,
                         editing=None, idem=None), []
    if isinstance(msg, CreateFailed):
        fields, form_error = field_errors(msg.error)
        return model.but(saving=False, errors=fields, form_error=form_error), []
    if isinstance(msg, AskDelete):
        return model.but(confirm=msg.agent_id), []
    if isinstance(msg, Delete):
        return model.but(confirm=None), [Http("DELETE", "/api/agents/" + msg.agent_id, None,
                                              lambda _, i=msg.agent_id: Deleted(i), ChatFailed)]
    if isinstance(msg, Deleted):
        changes = {"agents": [a for a in model.agents or () if a["id"] != msg.agent_id]}
        if model.editing == msg.agent_id:
            changes.update(editing=None, form=blank(), errors={})
        return model.but(**changes), []
    if isinstance(msg, StartChat):
        body = {"agent_id": msg.agent_id}
        idem = key_for(model.idem, ("thread", body))   # a second click before the answer: one thread
        return model.but(idem=idem), [Http("POST", "/api/threads", body, ThreadCreated, ChatFailed, key=idem[0])]
    if isinstance(msg, ThreadCreated):
        return model, [Navigate("/chat/" + msg.thread["id"])]
    if isinstance(msg, ChatFailed):
        return model.but(load_error=msg.error.message), []
    return model, []


def _field(model, name, label, multiline=False):
    err = model.errors.get(name)
    attrs = {"id": "agent-" + name, "name": name, "value": model.form[name],
             "oninput": lambda ev: SetField(name, ev.target.value),
             "aria-invalid": "true" if err else None,
             "aria-describedby": ("agent-%s-error" % name) if err else None}
    control = h("textarea", dict(attrs, rows="4")) if multiline else h("input", dict(attrs, type="text",
                                                                                    autocomplete="off"))
    return h("div", {"class": "field" + (" invalid" if err else "")}, [
        h("label", {"for": "agent-" + name}, label),
        control,
        err and h("p", {"class": "field-error", "id": "agent-%s-error" % name}, err),
    ])


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
    current = model.form["model"]
    options = [h("option", {"value": "", "selected": not current}, "Default")] + [
        h("option", {"value": "%s/%s" % pm, "selected": current == "%s/%s" % pm}, "%s (%s)" % (pm[1], pm[0]))
        for pm in model.models]
    return h("div", {"class": "field" + (" invalid" if err else "")}, [
        h("label", {"for": "agent-model"}, "Model"),
        h("select", {"id": "agent-model", "onchange": lambda ev: SetField("model", ev.target.value)}, options),
        err and h("p", {"class": "field-error", "id": "agent-model-error"}, err),
    ])


def _tools_field(model):
    err = model.errors.get("tools")
    return h("fieldset", {"class": "field"}, [
        h("legend", {}, "Tools"),
        h("div", {"class": "checks"}, [h("label", {"class": "check", "title": model.tools.get(t, "")}, [
            h("input", {"type": "checkbox", "name": "tool", "value": t, "checked": t in model.form["tools"],
                        "onchange": ToggleTool(t)}), " " + t]) for t in TOOLS]),
        err and h("p", {"class": "field-error"}, err),
    ])


def view(model):
    if model.agents is None:
        listing = h("p", {"class": "muted"}, "Loading agents…")
    elif model.agents:
        listing = h("ul", {"class": "list", "aria-label": "Agents"},
                    [memo(_agent_row, a, model.confirm == a["id"], key=a["id"]) for a in model.agents])
    else:
        listing = h("p", {"class": "muted"}, "No agents yet. Create your first one below.")
    return h("section", {"aria-labelledby": "agents-title"}, [
        h("h1", {"id": "agents-title"}, "Agents"),
        model.load_error and h("p", {"class": "alert", "role": "alert"}, model.load_error),
        listing,
        h("form", {"class": "card", "novalidate": True, "onsubmit": Submit(), "aria-labelledby": "new-agent"}, [
            h("h2", {"id": "new-agent"}, "Edit agent" if model.editing else "New agent"),
            _field(model, "name", "Name"),
            _field(model, "instructions", "Instructions", multiline=True),
            _model_field(model),
            _tools_field(model),
            model.form_error and h("p", {"class": "alert", "role": "alert"}, model.form_error),
            h("div", {"class": "row"}, [
                h("button", {"type": "submit", "disabled": model.saving},
                  ("Saving…" if model.saving else "Save changes") if model.editing else
                  ("Creating…" if model.saving else "Create agent")),
                model.editing and h("button", {"type": "button", "class": "secondary", "onclick": CancelEdit()},
                                    "Cancel")]),
        ]),
    ])
