"""The body of POST /v1/chat/completions, checked: what the endpoint honours, what it
ignores (the agent's own settings decide) and what it refuses with a 400 naming the
parameter (docs/protocols.md lists each)."""

from __future__ import annotations

import dataclasses
from typing import Any

from ..errors import Refused

IGNORED = {"temperature", "top_p", "max_tokens", "max_completion_tokens", "presence_penalty", "frequency_penalty",
           "seed", "user", "metadata", "store", "parallel_tool_calls", "reasoning_effort", "service_tier"}
# Parameters whose neutral values are accepted; anything else asks for what an agent does not do.
NEUTRAL = {"n": (None, 1), "tools": (None, []), "functions": (None, []), "tool_choice": (None, "none", "auto"),
           "function_call": (None, "none", "auto"), "logprobs": (None, False), "top_logprobs": (None, 0),
           "stop": (None, [], ""), "logit_bias": (None, {}), "audio": (None,), "prediction": (None,),
           "modalities": (None, ["text"]), "web_search_options": (None,)}
ROLES = {"system", "developer", "user", "assistant"}
MAX_MESSAGES = 1000
MAX_TEXT = 100_000


def bad(param: str, message: str, code: str = "invalid_value") -> Refused:
    return Refused(400, code, message, details={"param": param})


@dataclasses.dataclass(frozen=True)
class Completion:
    model: str
    messages: list[tuple[str, str]]
    stream: bool
    include_usage: bool


def _text(content: Any, where: str) -> str:
    """A message's content as text: a string, or a list of text parts."""
    if isinstance(content, str):
        text = content
    elif isinstance(content, list):
        parts = []
        for i, part in enumerate(content):
            if not isinstance(part, dict) or part.get("type") not in ("text", "refusal"):
                raise bad(f"{where}[{i}]", "only text content parts are supported (type \"text\"); images, "
                          "audio and files are not", "unsupported_content")
            value = part.get("text", part.get("refusal"))
            if not isinstance(value, str):
                raise bad(f"{where}[{i}].text", "must be a string")
            parts.append(value)
        text = "".join(parts)
    else:
        raise bad(where, "must be a string or a list of text parts")
    if len(text) > MAX_TEXT:
        raise bad(where, f"must be at most {MAX_TEXT} characters", "string_above_max_length")
    return text


def _message(i: int, m: Any) -> tuple[str, str]:
    where = f"messages[{i}]"
    if not isinstance(m, dict):
        raise bad(where, "must be an object with role and content")
    role = m.get("role")
    if role in ("tool", "function") or m.get("tool_calls") or m.get("function_call"):
        raise bad(where, "client-side tools are not supported: the agent runs its own tools, and their "
                  "results are part of its reply", "unsupported_parameter")
    if role not in ROLES:
        raise bad(f"{where}.role", f"must be one of {', '.join(sorted(ROLES))}")
    unknown = sorted(set(m) - {"role", "content", "name", "refusal", "audio"})
    if unknown:
        raise bad(f"{where}.{unknown[0]}", "is not a known field of a message", "unknown_parameter")
    content = m.get("content")
    if content is None and role == "assistant":
        content = m.get("refusal") or ""
    return role, _text(content, f"{where}.content")


def completion(body: Any) -> Completion:
    """The checked request; a Refused (400) naming the parameter otherwise."""
    if not isinstance(body, dict):
        raise bad("", "the body must be a JSON object")
    known = {"model", "messages", "stream", "stream_options"} | IGNORED | set(NEUTRAL)
    unknown = sorted(set(body) - known)
    if unknown:
        raise bad(unknown[0], f"unrecognized request argument supplied: {unknown[0]}", "unknown_parameter")
    for name, neutral in NEUTRAL.items():
        if name in body and body[name] not in neutral:
            raise bad(name, f"{name} is not supported: an agent's reply is one text, written with its own "
                      "tools and settings (docs/protocols.md)", "unsupported_parameter")
    if body.get("response_format") not in (None, {"type": "text"}):
        raise bad("response_format", "only the text response format is supported", "unsupported_parameter")
    model = body.get("model")
    if not isinstance(model, str) or not model.strip() or len(model) > 200:
        raise bad("model", "name an agent (its name or id; GET /v1/models lists them)")
    raw = body.get("messages")
    if not isinstance(raw, list) or not raw:
        raise bad("messages", "must be a non-empty list of messages")
    if len(raw) > MAX_MESSAGES:
        raise bad("messages", f"must hold at most {MAX_MESSAGES} messages")
    messages = [_message(i, m) for i, m in enumerate(raw)]
    if messages[-1][0] != "user" or not messages[-1][1].strip():
        raise bad(f"messages[{len(messages) - 1}]", "the last message must be the user's, with some text")
    stream = body.get("stream")
    if stream not in (None, True, False):
        raise bad("stream", "must be true or false")
    options = body.get("stream_options")
    if options is not None and (not isinstance(options, dict) or set(options) - {"include_usage",
                                                                                 "include_obfuscation"}):
        raise bad("stream_options", "only include_usage is supported")
    return Completion(model.strip(), messages, bool(stream), bool((options or {}).get("include_usage")))
