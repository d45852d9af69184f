"""Timestamps as stored: UTC ISO 8601 with a fixed width, so text order is time order."""

from __future__ import annotations

import datetime as dt

_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).strftime(_FORMAT)


def now_iso() -> str:
    return iso(now())


def later_iso(seconds: float) -> str:
    return iso(now() + dt.timedelta(seconds=seconds))


def parse(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, _FORMAT).replace(tzinfo=dt.timezone.utc)
