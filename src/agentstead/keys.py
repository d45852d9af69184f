"""Typed application keys, all in one place."""

from __future__ import annotations

import weakref

from aiohttp import web

from .buildinfo import BuildInfo
from .metrics import Metrics
from .auth.access import Principal
from .auth.ratelimit import RateLimiter
from .services.identity import IdentityService
from .settings import Settings
from .store.db import Database

SETTINGS = web.AppKey("settings", Settings)
DB = web.AppKey("db", Database)
METRICS = web.AppKey("metrics", Metrics)
BUILD = web.AppKey("build", BuildInfo)
STARTED_AT = web.AppKey("started_at", float)
OPENAPI = web.AppKey("openapi", dict)
WEBSOCKETS = web.AppKey("websockets", weakref.WeakSet)
IDENTITY = web.AppKey("identity", IdentityService)
RATE_AUTH = web.AppKey("rate_auth", RateLimiter)
RATE_API = web.AppKey("rate_api", RateLimiter)

PRINCIPAL = web.RequestKey("principal", Principal)
