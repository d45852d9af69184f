"""The one error type: a request the app refuses, with a stable code for the client.

Services, the runner's entry points and handlers raise `Refused`; the middleware
`http/middleware.py: json_errors` turns it into `{"error": {"code", "message",
"request_id", "details"?}}` with its status, in one place. `details.errors` lists
JSON pointers into the request for validation failures (`invalid`, `invalid_all`).
"""

from __future__ import annotations

from typing import Any, Iterable


class Refused(Exception):
    """A refusal meant for the client: HTTP status, stable code, message, optional details
    and response headers (Retry-After, WWW-Authenticate)."""

    def __init__(self, status: int, code: str, message: str, *, details: dict[str, Any] | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.details = details
        self.headers = headers or {}


def invalid(pointer: str, message: str) -> Refused:
    """422 validation_failed for one field, named by its JSON pointer."""
    return Refused(422, "validation_failed", f"{pointer}: {message}",
                   details={"errors": [{"pointer": pointer, "message": message}]})


def invalid_all(problems: Iterable[tuple[str, str]]) -> Refused:
    """422 validation_failed for several fields: (pointer, message) pairs, the first in the message."""
    errors = [{"pointer": pointer, "message": message} for pointer, message in problems]
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return Refused(422, "validation_failed", f"{errors[0]['pointer']}: {errors[0]['message']}{more}",
                   details={"errors": errors})


def not_found(what: str) -> Refused:
    return Refused(404, "not_found", f"no such {what}")
