"""A page's first view, as the SPA would draw it once its first answers are in: app.init(url),
then app.update with each GET's answer (and the GETs those answers lead to, a few rounds at most),
then app.view; an answer that is not a success is handled as the SPA handles it (signed out: the
sign-in page). Effects a server cannot carry out for the browser end the attempt (NotHere): the
page is then left to the SPA, as it was before the app drew any page."""

from __future__ import annotations

import asyncio
import types
from typing import Awaitable, Callable

from .html import to_html

ROUNDS = 3            # init's GETs, then at most two more rounds the answers lead to

Answer = Callable[[str], Awaitable[tuple[int, str]]]


class NotHere(Exception):
    """The first view cannot be drawn here (an effect only the browser can carry out, an answer
    that is not a success): the SPA draws it."""


async def first_view(spa: types.SimpleNamespace, url: str, answer: Answer) -> tuple[str, dict[str, tuple[int, str]]]:
    """(HTML of the SPA's root element, made inert, {GET url: (status, body)} it was drawn from).
    `answer(url)` gives the app's own answer to a GET of url for the person loading the page."""
    app, runtime = spa.app, spa.runtime
    model, effects = app.init(url)
    answers: dict[str, tuple[int, str]] = {}
    for round_ in range(ROUNDS + 1):
        model, gets = _carry_out(app, runtime, model, effects)
        if not gets:
            break
        if round_ == ROUNDS:
            raise NotHere(f"still asking after {ROUNDS} rounds of answers")
        fresh = list(dict.fromkeys(fx.url for fx in gets if fx.url not in answers))
        for u, got in zip(fresh, await asyncio.gather(*(answer(u) for u in fresh))):
            answers[u] = got
        effects = []
        for fx in gets:
            for msg in _messages(app, runtime, fx, *answers[fx.url]):
                model, more = _update(app, msg, model)
                effects += more
    root = runtime.h("div", {"id": "app-root", "inert": True}, [app.view(model)])
    return to_html(root, runtime.rendered), answers


def _carry_out(app, runtime, model, effects) -> tuple[object, list]:
    """Effects the server can carry out itself, done: the GETs to answer remain."""
    gets, pending = [], list(effects or ())
    while pending:
        fx = pending.pop(0)
        if isinstance(fx, runtime.Http) and fx.method == "GET":
            gets.append(fx)
        elif isinstance(fx, runtime.Navigate) and fx.replace:
            # the SPA replaces the URL (/ -> /agents) and shows that page: so does its first view
            model, more = _update(app, app.UrlChanged(fx.path), model)
            pending += more
        elif not isinstance(fx, (runtime.Delay, runtime.Focus, runtime.LoadCode)):
            # those do not change what the first view shows: a timer (the view is drawn before it
            # fires), focus, fetching modules built apart (the app has them all)
            raise NotHere(f"{type(fx).__name__} is for the browser")
    return model, gets


def _messages(app, runtime, fx, status: int, body: str) -> list:
    """What the SPA dispatches for an answer (frontend/src/program.py: _got, then _fail)."""
    data = runtime.json_or_none(body)
    if 200 <= status < 300:
        return [runtime.reply_message(fx, status, data)] if fx.on_ok is not None else []
    err = runtime.ApiError.of(status, data)
    if status == 401 and err.code == "token_expired":
        raise NotHere("the access token expired: the browser refreshes it")
    return runtime.failed_messages(fx, err, app.Unauthorized)


def _update(app, msg, model):
    if msg is None:
        return model, []
    return app.update(msg, model)
