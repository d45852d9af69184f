"""Small validators for request documents: each failure names the field (JSON pointer)."""

from __future__ import annotations

from typing import Any

from . import storable
from .errors import ApiError


def fail(pointer: str, message: str) -> ApiError:
    return ApiError(422, "validation_failed", f"{pointer}: {message}",
                    details={"errors": [{"pointer": pointer, "message": message}]})


def document(body: Any, allowed: set[str]) -> dict:
    if not isinstance(body, dict):
        raise fail("", "must be a JSON object")
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise fail(f"/{unknown[0]}", "is not a known field")
    return body


def string(body: dict, key: str, *, required: bool = False, min_len: int = 0, max_len: int = 200) -> str | None:
    if key not in body or body[key] is None:
        if required:
            raise fail(f"/{key}", "is required")
        return None
    value = body[key]
    if not isinstance(value, str):
        raise fail(f"/{key}", "must be a string")
    value = value.strip()
    if not min_len <= len(value) <= max_len:
        raise fail(f"/{key}", f"must be {min_len} to {max_len} characters")
    return value


def integer(body: dict, key: str, *, lo: int, hi: int) -> int | None:
    if key not in body or body[key] is None:
        return None
    value = body[key]
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise fail(f"/{key}", f"must be an integer from {lo} to {hi}")
    return value


def boolean(body: dict, key: str) -> bool | None:
    if key not in body or body[key] is None:
        return None
    if not isinstance(body[key], bool):
        raise fail(f"/{key}", "must be true or false")
    return body[key]


def choice(body: dict, key: str, options: tuple[str, ...]) -> str | None:
    if key not in body or body[key] is None:
        return None
    if body[key] not in options:
        raise fail(f"/{key}", f"must be one of {', '.join(options)}")
    return body[key]


def query_int(value: str | None, name: str, *, default: int, lo: int, hi: int) -> int:
    if value is None:
        return default
    number = storable.decimal(value)
    if number is None or not lo <= number <= hi:
        raise ApiError(400, "bad_request", f"query parameter {name} must be an integer from {lo} to {hi}")
    return number
