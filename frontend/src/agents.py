"""The agents page: your agents, a form to create one, and a button to chat with each."""

from runtime import Msg, Http, Navigate, h, text, memo

FIELDS = ("name", "instructions")


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


class StartChat(Msg):
    def __init__(self, agent_id):
        self.agent_id = agent_id


class ThreadCreated(Msg):
    def __init__(self, thread):
        self.thread = thread


class ChatFailed(Msg):
    def __init__(self, error):
        self.error = error


class Model:
    def __init__(self, agents=None, form=None, errors=None, form_error=None, saving=False, load_error=None):
        self.agents = agents                      # None while loading
        self.form = form or {"name": "", "instructions": ""}
        self.errors = errors or {}                # field -> message, from error.details.errors[].pointer
        self.form_error = form_error
        self.saving = saving
        self.load_error = load_error

    def but(self, **changes):
        m = Model(self.agents, self.form, self.errors, self.form_error, self.saving, self.load_error)
        for k, v in changes.items():
            setattr(m, k, v)
        return m


def init():
    return Model(), [Http("GET", "/api/agents?limit=200", None, lambda d: GotAgents(d["agents"]), LoadFailed)]


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
    if isinstance(msg, SetField):
        form = dict(model.form)
        form[msg.field] = msg.value
        errors = dict(model.errors)
        errors.pop(msg.field, None)
        return model.but(form=form, errors=errors), []
    if isinstance(msg, Submit):
        if model.saving:
            return model, []
        body = {"name": model.form["name"]}
        if model.form["instructions"].strip():
            body["instructions"] = model.form["instructions"]
        return model.but(saving=True, form_error=None), [Http("POST", "/api/agents", body, Created, CreateFailed)]
    if isinstance(msg, Created):
        return Model(agents=[msg.agent] + list(model.agents or [])), []
    if isinstance(msg, CreateFailed):
        fields, form_error = field_errors(msg.error)
        return model.but(saving=False, errors=fields, form_error=form_error), []
    if isinstance(msg, StartChat):
        return model, [Http("POST", "/api/threads", {"agent_id": msg.agent_id}, ThreadCreated, ChatFailed)]
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


def _agent_row(agent):
    return h("li", {"class": "agent"}, [
        h("div", {}, [h("strong", {}, agent["name"]),
                      h("span", {"class": "muted"}, " · %s · v%d" % (agent["model"], agent["version"]))]),
        h("button", {"type": "button", "onclick": StartChat(agent["id"])}, "Chat"),
    ])


def view(model):
    if model.agents is None:
        listing = h("p", {"class": "muted"}, "Loading agents…")
    elif model.agents:
        listing = h("ul", {"class": "list", "aria-label": "Agents"},
                    [memo(_agent_row, a, key=a["id"]) for a in model.agents])
    else:
        listing = h("p", {"class": "muted"}, "No agents yet. Create your first one below.")
    return h("section", {"aria-labelledby": "agents-title"}, [
        h("h1", {"id": "agents-title"}, "Agents"),
        model.load_error and h("p", {"class": "alert", "role": "alert"}, model.load_error),
        listing,
        h("form", {"class": "card", "novalidate": True, "onsubmit": Submit(), "aria-labelledby": "new-agent"}, [
            h("h2", {"id": "new-agent"}, "New agent"),
            _field(model, "name", "Name"),
            _field(model, "instructions", "Instructions", multiline=True),
            model.form_error and h("p", {"class": "alert", "role": "alert"}, model.form_error),
            h("button", {"type": "submit", "disabled": model.saving}, "Creating…" if model.saving else "Create agent"),
        ]),
    ])
