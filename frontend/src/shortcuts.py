"""Keyboard shortcuts: which key does what, and the list of them (`?`).

program.py hands every keydown of the page to `key(event)`; a shortcut is a single key pressed
outside text fields (typing is never taken over), without Ctrl, Alt or Meta. `?` opens the
list, a dialog that keeps focus inside it while open (Tab stays on its button), closes with
Escape or its button and gives focus back to where it was. Escape elsewhere goes to the page
(it stops editing). The chat's actions arrive at the chat page as Shortcut(action)
(chat_keys.py); every one of them is also a button or a field reachable with Tab."""

from runtime import message, h, Focus

Shortcut = message("Shortcut", "action")   # a page's action by key (chat_keys.py)
ShowShortcuts = message("ShowShortcuts", "shown")
Escape = message("Escape")

DIALOG = "shortcuts"
CLOSE = "shortcuts-close"

# (key, action sent to the page, what it does); "" : handled elsewhere, listed for people
KEYS = (
    ("?", "", "Show this list (Escape closes it)"),
    ("/", "search", "Search your chats"),
    ("n", "new", "New chat with this thread's agent"),
    ("j", "next", "Next chat in the list"),
    ("k", "prev", "Previous chat in the list"),
    ("i", "compose", "Write a message (Enter sends, Shift+Enter: new line)"),
    ("a", "pick", "Choose the agent or model for the next message"),
    ("s", "stop", "Stop the reply being written"),
    ("r", "regenerate", "Regenerate the last answer"),
    ("e", "edit", "Edit your last message (Escape cancels)"),
    ("c", "copy", "Copy the last answer"),
)
ACTIONS = {k: action for k, action, _ in KEYS if action}
TYPING = ("INPUT", "TEXTAREA", "SELECT")


def _typing(target):
    # an SVG element (a workflow step) has no isContentEditable: JsProxy raises on a missing name
    return target is not None and (str(getattr(target, "tagName", "") or "").upper() in TYPING
                                   or bool(getattr(target, "isContentEditable", False)))


def _open_dialog(document):
    return document is not None and document.getElementById(DIALOG) is not None


def key(ev):
    """The message for a key pressed anywhere on the page, or None (the browser does its own)."""
    if ev.ctrlKey or ev.metaKey or ev.altKey or ev.isComposing:
        return None
    k = ev.key
    doc = ev.target.ownerDocument if ev.target is not None else None
    if _open_dialog(doc):
        if k == "Tab":               # the list's one control keeps focus while it is open
            ev.preventDefault()
            doc.getElementById(CLOSE).focus()
            return None
        if k == "Escape" or k == "?":
            ev.preventDefault()
            return ShowShortcuts(False)
        return None
    if k == "Escape":
        return Escape()
    if _typing(ev.target):
        return None
    if k == "?":
        ev.preventDefault()
        return ShowShortcuts(True)
    action = ACTIONS.get(k)
    if action is None:
        return None
    ev.preventDefault()
    return Shortcut(action)


def shown(model, show):
    """The app's change: the list opened (focus to its Close button, the focused element noted)
    or closed (focus back)."""
    if bool(show) == bool(model.shortcuts):
        return model
    return model.but(shortcuts=bool(show)), [Focus(CLOSE, True) if show else Focus(None, False)]


def view():
    """The list, as a modal dialog over the page."""
    return h("div", {"class": "overlay", "key": "shortcuts"}, h("div", {
        "id": DIALOG, "class": "card dialog", "role": "dialog", "aria-modal": "true",
        "aria-labelledby": "shortcuts-title"}, [
        h("h2", {"id": "shortcuts-title"}, "Keyboard shortcuts"),
        h("p", {"class": "muted"}, "Single keys, outside text fields. Tab reaches every button and field."),
        h("dl", {"class": "keys"}, [x for k, _, what in KEYS for x in (h("dt", {}, h("kbd", {}, k)), h("dd", {}, what))]),
        h("button", {"type": "button", "id": CLOSE, "onclick": ShowShortcuts(False)}, "Close")]))
