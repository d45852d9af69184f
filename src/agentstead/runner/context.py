"""What the model is sent: the instructions, the tools and the newest messages that fit.

Every model call gets a prompt budget in tokens: the provider's `context_tokens`
(one number, or one per model) or AGENTSTEAD_LLM_CONTEXT_TOKENS. The system
prompt and the tool schemas are counted first; then messages are taken from the
newest back, a group at a time, while they fit: an assistant message that calls
tools and the tool results that answer it are one group (never split: a provider
refuses a tool result without its call). The newest group is always sent, even
alone over budget: the history is cut at the old end, never at the new one. No
summary of what was left out is made.

Tokens are estimated, not counted: ceil(UTF-8 bytes / 3) of the text (content,
tool names and arguments), plus 4 per message. Real tokenizers give about 4 bytes
a token for English and 1–3 for other scripts, so the estimate stays under the
budget for English and most text; tiktoken (in the lock, via langchain-openai)
would need its BPE files fetched from the internet at first use, which an
appliance and the tests must not do.

The read is bounded the same way (runner._starting): the run's thread is read
newest first, a page at a time, until the budget is covered, so a run's cost does
not grow with its thread.
"""

from __future__ import annotations

import json
from typing import Iterable, Sequence

from langchain_core.messages import AIMessage, BaseMessage, ToolMessage

PER_MESSAGE = 4
BYTES_PER_TOKEN = 3


def _tokens(n_bytes: int) -> int:
    return -(-n_bytes // BYTES_PER_TOKEN)


def text_tokens(text: str) -> int:
    return _tokens(len(text.encode()))


def estimate(content: str, tool_calls: Iterable[dict] | None = None) -> int:
    """A message's estimated tokens: its text and its tool calls' names and arguments."""
    size = len(content.encode())
    for call in tool_calls or ():
        size += len(str(call.get("name", "")).encode()) + len(json.dumps(call.get("args") or {}).encode())
    return PER_MESSAGE + _tokens(size)


def estimate_message(message: BaseMessage) -> int:
    content = message.content if isinstance(message.content, str) else json.dumps(message.content)
    return estimate(content, getattr(message, "tool_calls", None))


def budget_of(provider: dict, model: str, default: int) -> int:
    """The prompt budget of `model` at `provider`: its context_tokens (a number, or by
    model), else the global default."""
    own = provider.get("context_tokens")
    if isinstance(own, dict):
        own = own.get(model)
    return own or default


def schemas_tokens(schemas: Sequence[dict]) -> int:
    return _tokens(len(json.dumps(list(schemas)).encode())) if schemas else 0


def groups(messages: Sequence[BaseMessage]) -> list[list[BaseMessage]]:
    """Messages in order, cut into what must travel together: a tool result joins the
    assistant message before it (the one that called the tool)."""
    out: list[list[BaseMessage]] = []
    for message in messages:
        if isinstance(message, ToolMessage) and out and isinstance(out[-1][0], AIMessage) and out[-1][0].tool_calls:
            out[-1].append(message)
        else:
            out.append([message])
    return out


def fit(messages: Sequence[BaseMessage], room: int) -> list[BaseMessage]:
    """The newest whole groups whose estimate fits in `room` tokens, in order; the newest
    group always. A tool result whose call was left out is never first."""
    kept: list[list[BaseMessage]] = []
    used = 0
    for group in reversed(groups(messages)):
        cost = sum(estimate_message(m) for m in group)
        if kept and used + cost > room:
            break
        kept.append(group)
        used += cost
    window = [m for group in reversed(kept) for m in group]
    while len(window) > 1 and isinstance(window[0], ToolMessage):   # its call was left out (or never stored)
        window.pop(0)
    return window
