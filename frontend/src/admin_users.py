"""The admin page's users and roles: find a user, change a role, disable or enable an account,
and see a user's sign-in identities (removing one settles an identity_conflict). The admin
page's model holds the fields (users, users_error, user_query, user_error, identities_of,
identities, identities_error, unlink_confirm); its update table includes this one."""

from runtime import Update, Http, h, memo
from ui import alert, listing, note, select, table, typed
import fmt


def users_request(q):
    return Http("GET", "/api/admin/users" + fmt.query({"limit": 200, "q": q}), None, GotUsers, UsersFailed)


def identities_request(user_id):
    return Http("GET", "/api/admin/users/%s/identities" % user_id, None, lambda body: GotIdentities(user_id, body),
                IdentitiesFailed)


def why(error):
    if error.status == 403:
        return "Only administrators can see this."
    if error.status == 404:
        return "This server does not offer it yet."
    return error.message


on = Update()


@on("body")
def GotUsers(model, body):
    return model.but(users=body.get("users") or [], users_error=None)


@on("error")
def UsersFailed(model, error):
    return model.but(users=[], users_error=why(error))


@on("value")
def SetUserQuery(model, value):
    return model.but(user_query=value)


@on()
def SearchUsers(model):
    return model, [users_request(model.user_query.strip())]


@on("user_id role")
def SetRole(model, user_id, role):
    return model.but(user_error=None), [Http("PATCH", "/api/admin/users/" + user_id, {"role": role},
                                             UserSaved, UserFailed)]


@on("user_id disabled")
def SetDisabled(model, user_id, disabled):
    return model.but(user_error=None), [Http("PATCH", "/api/admin/users/" + user_id, {"disabled": disabled},
                                             UserSaved, UserFailed)]


@on("user")
def UserSaved(model, user):
    return model.but(users=[user if u["id"] == user["id"] else u for u in model.users or ()])


@on("error")
def UserFailed(model, error):
    # the select shows the old value again: re-render from the unchanged list
    return model.but(user_error=error.message, users=list(model.users or ()))


@on("user_id")
def ShowIdentities(model, user_id):
    if model.identities_of == user_id:   # the same button again hides them
        return model.but(identities_of=None, identities=None, identities_error=None, unlink_confirm=None)
    return (model.but(identities_of=user_id, identities=None, identities_error=None, unlink_confirm=None),
            [identities_request(user_id)])


@on("user_id body")
def GotIdentities(model, user_id, body):
    if user_id != model.identities_of:   # an answer for a user no longer shown
        return model
    return model.but(identities=body.get("identities") or [], identities_error=None)


@on("error")
def IdentitiesFailed(model, error):
    return model.but(identities=None, identities_error=why(error))


@on("key")
def AskUnlink(model, key):
    """Ask to confirm removing an identity: key is (provider, subject), or None (keep it)."""
    return model.but(unlink_confirm=key)


@on("user_id provider subject")
def Unlink(model, user_id, provider, subject):
    url = "/api/admin/users/%s/identities/%s/%s" % (user_id, fmt.quote(provider), fmt.quote(subject))
    return model.but(unlink_confirm=None, identities_error=None), [Http(
        "DELETE", url, None, lambda _: Unlinked(user_id, provider, subject), UnlinkFailed)]


@on("error")
def UnlinkFailed(model, error):
    return model.but(identities_error=error.message, identities=list(model.identities or ()))


@on("user_id provider subject")
def Unlinked(model, user_id, provider, subject):
    if user_id != model.identities_of:
        return model
    return model.but(identities=[i for i in model.identities or () if (i["provider"], i["subject"]) != (provider, subject)])


# ---------------------------------------------------------------- view

def _user_row(u):
    name = u.get("email")
    return h("tr", {"class": "disabled" if u.get("disabled") else ""}, [
        h("td", {}, u.get("email")),
        h("td", {}, u.get("name") or ""),
        h("td", {}, select({"aria-label": "Role of " + name}, (("member", "member"), ("admin", "admin")),
                           u.get("role"), lambda ev, i=u["id"]: SetRole(i, ev.target.value))),
        h("td", {}, [
            h("span", {"class": "status " + ("s-failed" if u.get("disabled") else "s-succeeded")},
              "Disabled" if u.get("disabled") else "Active"), " ",
            h("button", {"type": "button", "class": "secondary" if u.get("disabled") else "danger",
                         "aria-label": ("Enable " if u.get("disabled") else "Disable ") + name,
                         "onclick": SetDisabled(u["id"], not u.get("disabled"))},
              "Enable" if u.get("disabled") else "Disable")]),
        h("td", {}, fmt.when(u.get("created_at"))),
        h("td", {}, h("button", {"type": "button", "class": "secondary", "aria-label": "Sign-in identities of " + name,
                                 "onclick": ShowIdentities(u["id"])}, "Identities")),
    ])


def _identity_row(user_id, i, confirming):
    key = (i["provider"], i["subject"])
    if confirming:
        action = [h("button", {"type": "button", "class": "danger",
                               "onclick": Unlink(user_id, i["provider"], i["subject"])}, "Remove"), " ",
                  h("button", {"type": "button", "class": "secondary", "onclick": AskUnlink(None)}, "Keep")]
    else:
        action = h("button", {"type": "button", "class": "secondary",
                              "aria-label": "Remove %s identity %s" % (i["provider"], i["subject"]),
                              "onclick": AskUnlink(key)}, "Remove…")
    return h("tr", {}, [h("td", {}, i["provider"]), h("td", {}, h("code", {}, i["subject"])), h("td", {}, i["email"]),
                        h("td", {}, fmt.when(i.get("last_login_at"))), h("td", {}, action)])


def _identities(model):
    if model.identities_of is None:
        return None
    who = model.identities_of
    for u in model.users or ():
        if u["id"] == model.identities_of:
            who = u.get("email")
    body = None if model.identities is None and model.identities_error else listing(
        model.identities, "Loading identities…", "No identity at a provider: this user signs in with links an admin "
        "makes.", lambda identities: table("Sign-in identities", ("Provider", "Subject", "Email", "Last sign-in", ""), [
            _identity_row(model.identities_of, i, model.unlink_confirm == (i["provider"], i["subject"]))
            for i in identities]))
    return h("section", {"class": "identities", "aria-label": "Sign-in identities"}, [
        h("h3", {}, "Sign-in identities of " + who),
        note("Remove an identity only once you know the person: that provider account then no longer signs in "
             "here, and the next sign-in at that provider with this verified address joins this account (how an "
             "identity conflict is settled)."),
        alert(model.identities_error),
        body,
    ])


def section(model):
    """Find, the users' table, a failed change, and the identities of the user picked."""
    search = h("form", {"class": "row", "role": "search", "onsubmit": SearchUsers()}, [
        h("label", {"for": "user-q"}, "Find"),
        h("input", {"id": "user-q", "type": "search", "value": model.user_query, "placeholder": "email or name",
                    "oninput": typed(SetUserQuery)}),
        h("button", {"type": "submit", "class": "secondary"}, "Search"),
    ])
    body = listing(model.users, "Loading users…", "No users match.", lambda users: table(
        "Users", ("Email", "Name", "Role", "State", "Created", ""), [memo(_user_row, u, key=u["id"]) for u in users]),
        model.users_error)
    return [search, alert(model.user_error), body, _identities(model)]
