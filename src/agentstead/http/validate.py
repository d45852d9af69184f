"""Small validators for request documents: each failure names the field (JSON pointer).

A field is absent or has a value: null is refused unless a validator is told it means
something (`nullable=True`, e.g. daily_token_budget: null restores the default).
openapi.yaml says the same for each field."""

from __future__ import annotations

from typing import Any

from . import storable
from ..errors import Refused, invalid


fail = invalid   # 422 validation_failed naming the field


def document(body: Any, allowed: set[str], unknown_field: str = "is not a known field") -> dict:
    if not isinstance(body, dict):
        raise fail("", "must be a JSON object")
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise fail(f"/{unknown[0]}", unknown_field)
    return body


def _absent(body: dict, key: str, nullable: bool = False) -> bool:
    if key not in body:
        return True
    if body[key] is None:
        if nullable:
            return True
        raise fail(f"/{key}", "must not be null (leave the field out instead)")
    return False


def string(body: dict, key: str, *, required: bool = False, min_len: int = 0, max_len: int = 200) -> str | None:
    """Trimmed; at most max_len characters as sent, at least min_len once trimmed
    (openapi.yaml: maxLength, and pattern \\S when min_len is 1)."""
    if _absent(body, key):
        if required:
            raise fail(f"/{key}", "is required")
        return None
    value = body[key]
    if not isinstance(value, str):
        raise fail(f"/{key}", "must be a string")
    if len(value) > max_len:
        raise fail(f"/{key}", f"must be at most {max_len} characters")
    value = value.strip()
    if len(value) < min_len:
        raise fail(f"/{key}", f"must have at least {min_len} characters besides spaces")
    return value


def integer(body: dict, key: str, *, lo: int, hi: int, nullable: bool = False) -> int | None:
    if _absent(body, key, nullable):
        return None
    value = body[key]
    if isinstance(value, float) and value.is_integer():
        value = int(value)   # JSON Schema's integer: 30.0 is 30
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise fail(f"/{key}", f"must be an integer from {lo} to {hi}")
    return value


def number(body: dict, key: str, *, lo: float, hi: float) -> float | None:
    if _absent(body, key):
        return None
    value = body[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
        raise fail(f"/{key}", f"must be a number from {lo:g} to {hi:g}")
    return float(value)


def string_list(body: dict, key: str) -> list[str] | None:
    if _absent(body, key):
        return None
    value = body[key]
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise fail(f"/{key}", "must be a list of strings")
    return value


def boolean(body: dict, key: str) -> bool | None:
    if _absent(body, key):
        return None
    if not isinstance(body[key], bool):
        raise fail(f"/{key}", "must be true or false")
    return body[key]


def choice(body: dict, key: str, options: tuple[str, ...]) -> str | None:
    if _absent(body, key):
        return None
    if body[key] not in options:
        raise fail(f"/{key}", f"must be one of {', '.join(options)}")
    return body[key]


def query_int(value: str | None, name: str, *, default: int, lo: int, hi: int) -> int:
    if value is None:
        return default
    number = storable.decimal(value)
    if number is None or not lo <= number <= hi:
        raise Refused(400, "bad_request", f"query parameter {name} must be an integer from {lo} to {hi}")
    return number
