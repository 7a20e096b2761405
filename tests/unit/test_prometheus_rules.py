"""The alert and recording rules: valid for promtool, their unit tests pass (series that
fire and series that must not), and they read only metrics the services export.

promtool comes from Debian's `prometheus` package (scripts/setup installs it). In CI
(`CI=true`) a missing promtool fails this module; elsewhere it is skipped with a note.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry

from gateway.request_metrics import RequestMetrics
from sbp.settings import REPO_ROOT
from sinks.timescale.sink_metrics import SinkMetrics
from sinks.timescale.sink_web import SinkStats
from streams.dlq_depth import DlqDepth
from streams.worker_metrics import WorkerMetrics, WorkerSnapshot

PROMETHEUS = REPO_ROOT / "ops" / "prometheus"
RULE_FILES = sorted((PROMETHEUS / "rules").glob("*.yml"))
RULE_TESTS = sorted((PROMETHEUS / "tests").glob("*.yml"))
# Series Prometheus itself makes for every target.
BUILTIN = {"up"}


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        message = "promtool is missing: apt-get install prometheus (scripts/setup does)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


def run(*args: str | Path) -> None:
    result = subprocess.run(
        [promtool(), *map(str, args)],
        cwd=PROMETHEUS,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, f"promtool {args[0]} failed:\n{result.stdout}\n{result.stderr}"


def test_rules_and_config_pass_promtool_checks() -> None:
    assert RULE_FILES
    run("check", "rules", *RULE_FILES)
    run("check", "config", "prometheus.yml")


def test_rule_unit_tests_pass() -> None:
    assert RULE_TESTS
    run("test", "rules", *RULE_TESTS)


def rules() -> list[dict[str, object]]:
    return [
        rule
        for path in RULE_FILES
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
    ]


def test_every_alert_has_a_summary_and_an_existing_runbook() -> None:
    alerts = [r for r in rules() if "alert" in r]
    assert alerts
    for alert in alerts:
        annotations = alert["annotations"]
        assert isinstance(annotations, dict)
        assert annotations.get("summary"), alert["alert"]
        assert (REPO_ROOT / annotations["runbook_url"]).is_file(), alert["alert"]


def test_every_alert_has_a_unit_test_that_fires_it_and_one_that_must_not() -> None:
    tested = "\n".join(path.read_text() for path in RULE_TESTS)
    for alert in (r["alert"] for r in rules() if "alert" in r):
        fired = re.search(rf"alertname: {alert}\n\s+exp_alerts:\n\s+- exp_labels", tested)
        assert fired, f"{alert} has no test in which it fires"
        quiet = re.search(rf"alertname: {alert}\n\s+exp_alerts: \[\]", tested)
        assert quiet, f"{alert} has no test in which it must stay quiet"


def exported_names() -> set[str]:
    """Every series name the gateway, the worker and the sink can expose."""
    registries: list[CollectorRegistry] = [
        RequestMetrics(CollectorRegistry(), 1).registry,
        WorkerMetrics(WorkerSnapshot).registry,
        SinkMetrics(SinkStats(), DlqDepth(dict, every_s=60)).registry,
    ]
    names: set[str] = set()
    for registry in registries:
        for family in registry.collect():
            suffixes = {
                "counter": ("_total",),
                "histogram": ("_bucket", "_count", "_sum"),
            }.get(family.type, ("",))
            names.update(family.name + suffix for suffix in suffixes)
    return names


def test_rules_read_only_metrics_the_services_export() -> None:
    exported = exported_names() | BUILTIN
    recorded = {str(r["record"]) for r in rules() if "record" in r}
    for rule in rules():
        expr = str(rule["expr"])
        # Metric names: identifiers not followed by `(` (functions) nor inside quotes.
        unquoted = re.sub(r'"[^"]*"', "", expr)
        names = set(re.findall(r"\b([a-z_][a-z0-9_:]*)\b(?!\s*\()", unquoted))
        metrics = {n for n in names if n.startswith(("sbp_", "sbp:")) or n in BUILTIN}
        unknown = metrics - exported - recorded
        assert not unknown, f"{rule.get('alert') or rule.get('record')} reads {unknown}"
