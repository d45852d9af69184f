"""Conversation controls on a thread: regenerate the last answer, edit a message and run again."""

from __future__ import annotations

from aiohttp import web

from ..auth.access import requires
from ..keys import CONVERSATION
from . import validate as v
from .authn import principal_of
from .bodies import json_body
from .idempotency import idempotent, recorder
from .threads import TURN_FIELDS, _posted, turn_choice


@requires("write")
@idempotent
async def regenerate(request: web.Request) -> web.Response:
    # the body is optional: without one the thread's agent answers again with its model
    body = v.document(await json_body(request), TURN_FIELDS) if request.body_exists else {}
    run = await request.app[CONVERSATION].regenerate(principal_of(request), request.match_info["id"],
                                                     recorder(request, _posted), turn_choice(body))
    return _posted(run).response()


@requires("write")
@idempotent
async def edit_message(request: web.Request) -> web.Response:
    body = v.document(await json_body(request), {"content"} | TURN_FIELDS)
    content = v.string(body, "content", required=True, min_len=1, max_len=100_000)
    run = await request.app[CONVERSATION].edit(principal_of(request), request.match_info["id"],
                                               request.match_info["message_id"], content, recorder(request, _posted),
                                               turn_choice(body))
    return _posted(run).response()
