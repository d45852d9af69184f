"""PromQL in monitoring/: the expressions of the Grafana dashboard (with its variables
given example values) and the metric names an expression reads."""

from __future__ import annotations

import json
import re

from .prom import MONITORING

DASHBOARD = MONITORING / "grafana" / "agentstead.json"

# Grafana's built-in variables and the dashboard's own, with values a query can run with.
EXAMPLE_VALUES = {"__rate_interval": "1m", "__range": "1h", "__interval": "15s",
                  "instance": "127.0.0.1:47293", "usd_per_mtok": "2.5"}

_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset",
             "and", "or", "unless", "atan2", "inf", "nan"}
_CLAUSE = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_NAME = re.compile(r"(?<![\w.$])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?")


def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def dashboard_queries() -> list[tuple[str, str]]:
    """(panel title and refId, expression as Grafana writes it), for every query."""
    out = []
    for panel in dashboard()["panels"]:
        for target in panel.get("targets", []):
            out.append((f'{panel["title"]} {target["refId"]}', target["expr"]))
    return out


def with_values(expr: str, values: dict[str, str] = EXAMPLE_VALUES) -> str:
    """The expression with $name and ${name} replaced; KeyError for an unknown variable."""
    return re.sub(r"\$\{?(\w+)\}?", lambda m: values[m.group(1)], expr)


def metric_names(expr: str) -> set[str]:
    """Metric names an expression reads: identifiers that are not functions, keywords,
    label names (in {...} or a by/on clause), strings or durations."""
    text = re.sub(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'', '""', expr)   # strings
    text = re.sub(r"\{[^}]*\}", " ", text)                                # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)                               # ranges
    text = _CLAUSE.sub(" ", text)
    names = set()
    for match in _NAME.finditer(text):
        name, call = match.group(1), match.group(2)
        if call is None and name.lower() not in _KEYWORDS:
            names.add(name)
    return names
