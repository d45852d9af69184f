"""Why a run failed, in words for the client: never a stack trace."""

from __future__ import annotations

import asyncio

import openai
from langgraph.errors import GraphRecursionError


class RunFailure(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


def failure_of(exc: BaseException) -> RunFailure:
    """A clear reason for the client; never a stack trace."""
    if isinstance(exc, RunFailure):
        return exc
    if isinstance(exc, openai.AuthenticationError):
        return RunFailure("provider_auth_failed", "the model provider refused the API key")
    if isinstance(exc, openai.NotFoundError):
        return RunFailure("model_not_found", "the model provider does not know this model")
    if isinstance(exc, openai.RateLimitError):
        return RunFailure("provider_rate_limited", "the model provider kept answering 429 after retries")
    if isinstance(exc, openai.APITimeoutError):
        return RunFailure("provider_timeout", "the model provider did not answer in time")
    if isinstance(exc, openai.APIConnectionError):
        return RunFailure("provider_unreachable", "the model provider cannot be reached")
    if isinstance(exc, openai.APIStatusError):
        return RunFailure("provider_error", f"the model provider answered {exc.status_code}")
    if isinstance(exc, GraphRecursionError):
        return RunFailure("max_steps_exceeded", "the agent used all its steps without finishing")
    if isinstance(exc, asyncio.TimeoutError):
        return RunFailure("run_timeout", "the run took longer than the configured limit")
    return RunFailure("internal_error", "the run failed; the server log has the details")
