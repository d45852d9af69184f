"""monitoring/agentstead.rules.yml: valid for Prometheus, every alert unit-tested by
promtool (fires on a bad series, quiet on good ones), and every alert has its runbook."""

from __future__ import annotations

import re
import shutil
import subprocess

import yaml

from ..support.prom import MONITORING, ROOT, binary

RULES = MONITORING / "agentstead.rules.yml"
RULE_TESTS = MONITORING / "agentstead.rules.test.yml"
RUNBOOK = ROOT / "docs" / "monitoring.md"
RUNBOOK_URL = "https://github.com/agentstead/agentstead/blob/main/docs/monitoring.md#"


def alerts() -> list[dict]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def promtool(*args: str, cwd=MONITORING) -> subprocess.CompletedProcess:
    return subprocess.run([binary("promtool"), *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_prometheus_accepts_the_rules():
    done = promtool("check", "rules", RULES.name)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(alerts())} rules found" in done.stdout


def test_promtool_unit_tests_pass():
    done = promtool("test", "rules", RULE_TESTS.name)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout + done.stderr


def test_every_alert_is_tested_firing_and_quiet():
    tested: dict[str, set[str]] = {}
    for group in yaml.safe_load(RULE_TESTS.read_text())["tests"]:
        for case in group.get("alert_rule_test", []):
            tested.setdefault(case["alertname"], set()).add("fires" if case["exp_alerts"] else "quiet")
    names = [rule["alert"] for rule in alerts()]
    assert len(names) == len(set(names)), "two alerts share a name"
    missing = {name: {"fires", "quiet"} - tested.get(name, set()) for name in names}
    assert not {name: gap for name, gap in missing.items() if gap}, "alerts without a firing and a quiet case"
    assert set(tested) <= set(names), "tests for alerts that do not exist"


def test_the_unit_tests_catch_a_broken_rule(tmp_path):
    """The harness can fail: a rule that never fires breaks the promtool tests."""
    shutil.copy(RULE_TESTS, tmp_path)
    broken = RULES.read_text().replace('expr: up{job="agentstead"} == 0', 'expr: up{job="agentstead"} == 42')
    assert broken != RULES.read_text()
    (tmp_path / RULES.name).write_text(broken)
    done = promtool("test", "rules", RULE_TESTS.name, cwd=tmp_path)
    assert done.returncode != 0 and "AgentsteadDown" in done.stdout + done.stderr


def _anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, spaces to '-', other punctuation dropped."""
    out = set()
    for line in markdown.splitlines():
        match = re.match(r"^#{1,6}\s+(.*)$", line)
        if match:
            out.add(re.sub(r"[^a-z0-9 _-]", "", match.group(1).strip().lower()).replace(" ", "-"))
    return out


def test_every_alert_has_severity_text_and_a_runbook_entry():
    anchors = _anchors(RUNBOOK.read_text())
    for rule in alerts():
        name = rule["alert"]
        assert rule["labels"]["severity"] in ("critical", "warning"), name
        notes = rule["annotations"]
        assert notes["summary"] and notes["description"], name
        assert notes["runbook_url"] == RUNBOOK_URL + name.lower(), name
        assert name.lower() in anchors, f"docs/monitoring.md has no section for {name}"


def test_the_runbook_documents_no_alert_that_does_not_exist():
    documented = set(re.findall(r"^### (Agentstead\w+)", RUNBOOK.read_text(), re.M))
    assert documented == {rule["alert"] for rule in alerts()}


def test_the_manual_monitoring_table_lists_every_alert_with_its_severity():
    readme = (ROOT / "docs" / "operations.md").read_text()
    section = readme[readme.index("\n## Monitoring\n"):readme.index("\n## Troubleshooting\n")]
    rows = {m.group(1): m.group(2) for m in re.finditer(r"^\| (Agentstead\w+)( \(critical\))? \|", section, re.M)}
    assert set(rows) == {rule["alert"] for rule in alerts()}
    for rule in alerts():
        assert bool(rows[rule["alert"]]) == (rule["labels"]["severity"] == "critical"), rule["alert"]
