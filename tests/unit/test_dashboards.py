"""The Grafana dashboards in ops/grafana/: generated from sbp/dashboards/catalog.py and
committed as generated, well formed for Grafana's import, every expression valid PromQL
(promtool), and every metric they read documented in docs/metrics.md.

Whether each expression returns series from the real services is proved by
tests/integration/test_dashboards.py.
"""

from __future__ import annotations

import json
import re
import subprocess
from itertools import combinations
from pathlib import Path
from typing import Any

import pytest
import yaml

from sbp.dashboards.files import OUT, rendered, stale
from sbp.dashboards.grafana import DATASOURCE, GRID_COLUMNS, expand, expressions
from sbp.settings import REPO_ROOT
from tests.debian_prometheus import binary

RULE_FILES = sorted((REPO_ROOT / "ops" / "prometheus" / "rules").glob("*.yml"))
METRICS_DOC = REPO_ROOT / "docs" / "metrics.md"
# What Grafana would put in place of the variables: any valid value parses alike.
SAMPLE_VALUES = {"__rate_interval": "1m", "tenant": "t-example"}
HISTOGRAM_SERIES = re.compile(r"_(bucket|count|sum)$")


def committed() -> dict[str, dict[str, Any]]:
    return {path.name: json.loads(path.read_text()) for path in sorted(OUT.glob("*.json"))}


def test_the_committed_json_is_what_the_catalog_makes() -> None:
    outdated = [p.name for p in stale()]
    assert not outdated, f"run `python -m sbp.dashboards`: {outdated} differ from the catalog"
    # No dashboard left behind by a rename or a removal.
    assert {p.name for p in OUT.glob("*.json")} == {p.name for p in rendered()}


def test_a_dashboard_per_service_and_the_tenant_view() -> None:
    uids = [model["uid"] for model in committed().values()]
    assert sorted(uids) == sorted(
        ["sbp-gateway", "sbp-worker", "sbp-pg-sink", "sbp-admin", "sbp-tenant-health"]
    )
    # Grafana keys a dashboard by uid: 8 to 40 characters, unique.
    assert all(8 <= len(uid) <= 40 for uid in uids)


@pytest.mark.parametrize("name", sorted(committed()))
def test_each_dashboard_is_well_formed(name: str) -> None:
    model = committed()[name]
    variables = {v["name"]: v for v in model["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    ids = [panel["id"] for panel in model["panels"]]
    assert len(ids) == len(set(ids)), f"{name}: duplicate panel ids"
    for panel in model["panels"]:
        assert panel["targets"], f"{name}: {panel['title']} has no query"
        assert panel["datasource"] == DATASOURCE
        assert panel["fieldConfig"]["defaults"]["unit"], f"{name}: {panel['title']} has no unit"
        for target in panel["targets"]:
            assert target["expr"].strip(), f"{name}: {panel['title']} has an empty query"
            assert target["datasource"] == DATASOURCE
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs))
    # Every variable an expression uses is defined on the dashboard (or Grafana's own).
    used = {
        m.group(1) or m.group(2)
        for _, expr in expressions(model)
        for m in re.finditer(r"\$(?:\{(\w+)\}|(\w+))", expr)
    }
    assert used <= set(variables) | {"__rate_interval"}, f"{name}: undefined {used}"


@pytest.mark.parametrize("name", sorted(committed()))
def test_panels_fit_the_grid_without_overlapping(name: str) -> None:
    boxes = [(p["title"], p["gridPos"]) for p in committed()[name]["panels"]]
    for title, box in boxes:
        assert box["x"] >= 0 and box["x"] + box["w"] <= GRID_COLUMNS, title
    for (a, p), (b, q) in combinations(boxes, 2):
        apart = (
            p["x"] + p["w"] <= q["x"]
            or q["x"] + q["w"] <= p["x"]
            or p["y"] + p["h"] <= q["y"]
            or q["y"] + q["h"] <= p["y"]
        )
        assert apart, f"{name}: {a} overlaps {b}"


def test_every_expression_is_valid_promql(tmp_path: Path) -> None:
    """promtool parses each expression (variables filled in) as a recording rule's."""
    promtool = binary("promtool")
    rules = []
    for name, model in committed().items():
        queries = [expr for _, expr in expressions(model)]
        queries += [
            v["query"]["query"] for v in model["templating"]["list"] if v["type"] == "query"
        ]
        for i, expr in enumerate(queries):
            # A variable's label_values(selector, label): the selector is PromQL.
            selector = re.fullmatch(r"label_values\((.*), \w+\)", expr)
            rules.append(
                {
                    "record": f"dashboard:{name.removesuffix('.json').replace('-', '_')}:{i}",
                    "expr": expand(selector.group(1) if selector else expr, SAMPLE_VALUES),
                }
            )
    path = tmp_path / "dashboards.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    result = subprocess.run(
        [promtool, "check", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout


def documented_names() -> set[str]:
    """Names in backquotes in docs/metrics.md; `a:b{5m,1h}` stands for a:b5m and a:b1h."""
    names: set[str] = set()
    pattern = r"`([a-z_:][a-z0-9_:]*)(?:\{([\w,]+)\})?`"
    for name, variants in re.findall(pattern, METRICS_DOC.read_text()):
        names.update(name + v for v in (variants.split(",") if variants else [""]))
    return names


def recorded_names() -> set[str]:
    return {
        str(rule["record"])
        for path in RULE_FILES
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
        if "record" in rule
    }


def metric_names(expr: str) -> set[str]:
    """The series names an expression reads: identifiers outside quotes, not calls."""
    unquoted = re.sub(r'"[^"]*"', "", expr)
    names = set(re.findall(r"\b([a-z_][a-z0-9_:]*)\b(?!\s*\()", unquoted))
    return {n for n in names if n.startswith(("sbp_", "sbp:")) or n == "up"}


def test_every_metric_read_is_documented_and_every_rule_recorded() -> None:
    documented = documented_names() | {"up"}  # `up`: Prometheus's own, per target
    recorded = recorded_names()
    read = {
        n for model in committed().values() for _, e in expressions(model) for n in metric_names(e)
    }
    assert read, "no metric names found: the pattern is broken"
    undocumented = {
        n for n in read if n not in documented and HISTOGRAM_SERIES.sub("", n) not in documented
    }
    assert not undocumented, f"read by a dashboard, not in docs/metrics.md: {undocumented}"
    unrecorded = {n for n in read if ":" in n} - recorded
    assert not unrecorded, f"no recording rule in ops/prometheus/rules makes {unrecorded}"
