"""Agentstead: a self-hosted AI agents platform for one VPS."""

from importlib.metadata import PackageNotFoundError, version as _version

try:
    __version__ = _version("agentstead")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"
