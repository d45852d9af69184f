"""Who answers the next message of a thread: another of your agents, or another model of the
agent's provider, for the next message only, or "from now on": then it is the thread's own
choice, kept by the server (PATCH /api/threads/{id}: every tab, client and reload sees it; the
page follows thread.updated). The server checks both (services/turn_choice.py). And who answered
each reply: the agent's name and the model, from the message (GET /api/threads/{id}) or its run
(as sent, or GET /api/runs).

Fields on the chat model: agent_id and thread_model (the thread's choice; thread_model None: the
agent's own), agents (yours, for names and the picker; None while loading), provider_models
({provider: [models]}, None until the picker first opens), picking, choice_agent / choice_model
(for the next message only; None: the thread's), choice_keep (the picker changes the thread's
choice: "From now on", ticked too when the thread has a choice of its own, see followed);
run_meta on the transcript ({run id: (agent id, model)})."""

from runtime import Update, Http, Focus, h, put

on = Update()
update = on.update
AGENT_FIELD = "turn-agent"


def _agent(model, agent_id):
    for a in model.agents or ():
        if a.get("id") == agent_id:
            return a
    return None


def _default(model, agent):
    """The model an agent answers with when a turn names none: the thread's for its agent."""
    if agent is not None and agent.get("id") == model.agent_id and model.thread_model:
        return model.thread_model
    return (agent or {}).get("model")


def chosen(model):
    """(agent, model name) answering the next message; agent None while the agents load."""
    agent = _agent(model, model.choice_agent or model.agent_id)
    return agent, model.choice_model or _default(model, agent)


def body(model):
    """What a turn sends besides its content: the choice, when it differs from the thread's."""
    out = {}
    if model.choice_agent and model.choice_agent != model.agent_id:
        out["agent_id"] = model.choice_agent
    agent = _agent(model, model.choice_agent or model.agent_id)
    if model.choice_model and (agent is None or model.choice_model != _default(model, agent)):
        out["model"] = model.choice_model
    return out


def after_turn(model, run):
    """A turn was accepted: note who answers it; a choice for one message only is spent."""
    meta = put(model.run_meta, run["id"], (run.get("agent_id"), run.get("model")))
    if model.choice_keep:
        return model.but(run_meta=meta)
    return model.but(run_meta=meta, choice_agent=None, choice_model=None, picking=False)


def followed(model, thread, saved=False):
    """The thread's choice as the server has it (GET, PATCH's answer, thread.updated: `saved`).
    The "from now on" box shows that the thread has a choice of its own: ticked for its own model
    (so after a reload), and for any choice saved from now on (thread.updated, from this tab or
    another). Never unticked from here (a choice of the agent's own model leaves it as it was),
    nor ticked while a choice for the next message only is pending."""
    if not thread or thread.get("id", thread.get("thread_id")) != model.thread_id or not thread.get("agent_id"):
        return model
    own = saved or thread.get("model") is not None
    keep = model.choice_keep or (own and model.choice_agent is None and model.choice_model is None)
    return model.but(agent_id=thread["agent_id"], thread_model=thread.get("model"), choice_keep=keep)


def _save(model, agent_id, name):
    """Make (agent, model name) the thread's choice from now on; a name that is the agent's own
    goes as null (the agent's own, whatever it becomes)."""
    agent = _agent(model, agent_id)
    body = {"agent_id": agent_id, "model": None if agent and name == agent.get("model") else name}
    return (model.but(choice_agent=None, choice_model=None, error=None),
            [Http("PATCH", "/api/threads/" + model.thread_id, body, Saved, SaveFailed)])


@on("thread")
def Saved(model, thread):
    return followed(model, thread)


@on("error")
def SaveFailed(model, error):
    return model.but(error=error.message)


def answered_by(model, m):
    """"Agent name · model" for a reply (or "Agent" when nothing says)."""
    agent_id, name = m.get("agent_id"), m.get("model")
    if agent_id is None and m.get("run_id") in model.run_meta:
        agent_id, name = model.run_meta[m["run_id"]]
    agent = _agent(model, agent_id)
    label = agent.get("name") if agent else "Agent"
    return label + " · " + name if name else label


def from_runs(meta, runs):
    """run_meta with the runs of GET /api/runs."""
    for r in runs:
        if r.get("id") and r.get("agent_id") and r["id"] not in meta:
            meta = put(meta, r["id"], (r["agent_id"], r.get("model")))
    return meta


@on("agents")
def GotAgents(model, agents):
    return model.but(agents=agents or [])


@on("body")
def GotModels(model, body):
    models = {}
    for p in (body or {}).get("providers") or ():
        models[p.get("provider")] = list(p.get("configured_models") or p.get("available_models") or ())
    return model.but(provider_models=models)


@on("error")
def ModelsFailed(model, error):
    return model.but(provider_models={}, error=error.message)


@on("shown")
def Pick(model, shown):
    """Open the picker (its agent field focused) or close it."""
    if not shown:
        return model.but(picking=False)
    fx = [Focus(AGENT_FIELD, False)]
    if model.provider_models is None:
        fx.append(Http("GET", "/api/models", None, GotModels, ModelsFailed))
    return model.but(picking=True), fx


@on("value")
def ChooseAgent(model, value):
    # another agent: its own model unless one is chosen again
    if model.choice_keep:
        return _save(model, value, None) if value != model.agent_id else model
    return model.but(choice_agent=None if value == model.agent_id else value, choice_model=None)


@on("value")
def ChooseModel(model, value):
    agent, name = chosen(model)
    if model.choice_keep and agent:
        return _save(model, agent["id"], value) if value != name else model
    return model.but(choice_model=None if agent and value == _default(model, agent) else value)


@on("shown")
def Keep(model, shown):
    """From now on: what is chosen becomes the thread's (now, and each change while ticked)."""
    model = model.but(choice_keep=bool(shown))
    if not shown or not body(model):
        return model
    agent, name = chosen(model)
    return _save(model, agent["id"], name) if agent else model


def _models(model, agent):
    if agent is None:
        return []
    listed = (model.provider_models or {}).get(agent.get("provider")) or []
    return listed if agent.get("model") in listed else [agent.get("model")] + listed


def _select(fid, label, value, options, on_change):
    return [h("label", {"for": fid}, label),
            h("select", {"id": fid, "onchange": lambda ev: on_change(ev.target.value)}, [
                h("option", {"value": v, "selected": v == value}, text) for v, text in options])]


def view(model):
    """One line saying who answers next, with a way to change it."""
    agent, name = chosen(model)
    who = ((agent or {}).get("name") or "the thread's agent") + (" · " + name if name else "")
    if not model.picking:
        changed = bool(body(model))
        return h("div", {"class": "turn-pick row muted"}, [
            h("span", {}, ["Next answer: ", h("strong" if changed else "span", {}, who),
                           " (this message only)" if changed else "", " "]),
            h("button", {"type": "button", "class": "link", "aria-keyshortcuts": "a", "onclick": Pick(True)},
              "Change")])
    agents = [(a["id"], a.get("name") or a["id"]) for a in model.agents or ()]
    return h("div", {"class": "turn-pick card", "role": "group", "aria-label": "Who answers next"},
             _select(AGENT_FIELD, "Agent", (agent or {}).get("id"), agents, ChooseAgent)
             + _select("turn-model", "Model", name, [(m, m) for m in _models(model, agent)], ChooseModel)
             + [h("label", {"class": "check"}, [
                 h("input", {"type": "checkbox", "checked": model.choice_keep,
                             "onchange": lambda ev: Keep(ev.target.checked)}), " From now on, in this thread (else the next message only)"]),
                h("button", {"type": "button", "class": "secondary small", "onclick": Pick(False)}, "Done")])
