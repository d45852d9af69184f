"""monitoring/grafana/agentstead.json: every query is PromQL that Prometheus accepts,
with only the variables the dashboard defines. (tests/system/test_prometheus.py runs
each one against live data and checks the metrics they name exist.)"""

from __future__ import annotations

import re
import subprocess

import yaml

from ..support.prom import binary
from ..support.promql import EXAMPLE_VALUES, dashboard, dashboard_queries, metric_names, with_values


def test_the_dashboard_has_queries_and_one_datasource_variable():
    board = dashboard()
    assert board["uid"] == "agentstead" and len(dashboard_queries()) >= 25
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    for panel in board["panels"]:
        if panel["type"] != "row":
            # The datasource the importer picks, never a uid from someone's Grafana.
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))


def test_every_variable_a_query_uses_is_defined():
    defined = {v["name"] for v in dashboard()["templating"]["list"]} | {"__rate_interval", "__range", "__interval"}
    used = {name for _, expr in dashboard_queries() for name in re.findall(r"\$\{?(\w+)", expr)}
    assert used <= defined and used <= set(EXAMPLE_VALUES)


def test_promtool_accepts_every_query(tmp_path):
    rules = [{"record": f"dashboard:query_{i}", "expr": with_values(expr)}
             for i, (_, expr) in enumerate(dashboard_queries())]
    path = tmp_path / "dashboard.rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}, sort_keys=False))
    done = subprocess.run([binary("promtool"), "check", "rules", str(path)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(rules)} rules found" in done.stdout


def test_promtool_refuses_a_broken_query(tmp_path):
    """The check above can fail: an unbalanced expression is refused."""
    path = tmp_path / "broken.rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "x", "rules": [
        {"record": "x:y", "expr": with_values(dashboard_queries()[0][1]) + ")"}]}]}))
    done = subprocess.run([binary("promtool"), "check", "rules", str(path)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode != 0


def test_metric_names_are_read_from_promql():
    assert metric_names('histogram_quantile(0.99, sum by (route, le) (rate(a_bucket{route!~"/ws|x"}[5m])))') \
        == {"a_bucket"}
    assert metric_names("time() - (b_seconds{job=\"x\"} > 0)") == {"b_seconds"}
    assert metric_names("x / on (instance) group_left c and d unless e offset 5m") == {"x", "c", "d", "e"}
    assert metric_names('sum(increase(t_total[1h])) * 2.5 / 1e6') == {"t_total"}
    assert metric_names('up{job="agentstead"} == 0') == {"up"}
