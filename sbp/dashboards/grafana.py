"""Grafana's dashboard JSON model (the classic model that Grafana imports), built from a few
plain descriptions: pure data, no I/O.

A dashboard here is a list of panels, each with its PromQL expressions, a unit and,
where a value has a limit worth seeing, thresholds. The builder lays the panels out
left to right on Grafana's 24-column grid, numbers them (ids are unique within a
dashboard), and points every panel and query at the `datasource` variable, so an
importer chooses the Prometheus data source once, on the dashboard.

Expressions may use `$__rate_interval` (Grafana widens it to cover at least four
scrapes) and the dashboard's own variables (`$tenant`); nothing else Grafana-specific.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

# The classic JSON model as Grafana 10 writes it; older and newer versions migrate it on import.
SCHEMA_VERSION = 39
GRID_COLUMNS = 24
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
TAG = "sbp"


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str = ""


@dataclass(frozen=True)
class Threshold:
    """A colour from `value` upwards (the base colour applies below the first)."""

    value: float
    color: str


@dataclass(frozen=True)
class Panel:
    title: str
    description: str
    queries: tuple[Query, ...]
    # A Grafana unit id: reqps, s, percentunit, short, cps, bool_yes_no, ...
    unit: str
    kind: str = "timeseries"  # or "stat": one current figure per series
    width: int = 12
    height: int = 8
    thresholds: tuple[Threshold, ...] = ()
    base_color: str = "green"
    min_value: float | None = 0


@dataclass(frozen=True)
class Variable:
    """A query variable whose values are one label's values on a metric (Grafana's
    `label_values(selector, label)`)."""

    name: str
    label: str
    selector: str
    metric_label: str

    @property
    def definition(self) -> str:
        return f"label_values({self.selector}, {self.metric_label})"


@dataclass(frozen=True)
class Dashboard:
    uid: str
    title: str
    description: str
    panels: tuple[Panel, ...]
    variables: tuple[Variable, ...] = field(default=())


def _thresholds(panel: Panel) -> dict[str, Any]:
    steps: list[dict[str, Any]] = [{"color": panel.base_color, "value": None}]
    steps += [{"color": t.color, "value": t.value} for t in panel.thresholds]
    return {"mode": "absolute", "steps": steps}


def _targets(panel: Panel) -> list[dict[str, Any]]:
    return [
        {
            "refId": chr(ord("A") + i),
            "datasource": dict(DATASOURCE),
            "editorMode": "code",
            "expr": query.expr,
            "legendFormat": query.legend or "__auto",
            "range": True,
        }
        for i, query in enumerate(panel.queries)
    ]


def _field_config(panel: Panel) -> dict[str, Any]:
    defaults: dict[str, Any] = {"unit": panel.unit, "thresholds": _thresholds(panel)}
    if panel.min_value is not None:
        defaults["min"] = panel.min_value
    if panel.kind == "timeseries":
        defaults["color"] = {"mode": "palette-classic"}
        defaults["custom"] = {
            "drawStyle": "line",
            "lineWidth": 1,
            "fillOpacity": 10,
            "showPoints": "never",
            "spanNulls": False,
            # The limits drawn as dashed lines, so a figure's distance to them shows.
            "thresholdsStyle": {"mode": "dashed" if panel.thresholds else "off"},
        }
    else:
        defaults["color"] = {"mode": "thresholds"}
    return {"defaults": defaults, "overrides": []}


def _options(panel: Panel) -> dict[str, Any]:
    if panel.kind == "timeseries":
        return {
            "legend": {
                "displayMode": "table",
                "placement": "bottom",
                "showLegend": True,
                "calcs": ["lastNotNull", "max"],
            },
            "tooltip": {"mode": "multi", "sort": "desc"},
        }
    return {
        "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        "colorMode": "background",
        "graphMode": "area",
        "justifyMode": "auto",
        "orientation": "auto",
        "textMode": "auto",
    }


def _layout(panels: tuple[Panel, ...]) -> list[dict[str, int]]:
    """Left to right, wrapping to a new row (below the row's tallest panel) when full."""
    positions = []
    x = y = row_height = 0
    for panel in panels:
        if x + panel.width > GRID_COLUMNS:
            x, y, row_height = 0, y + row_height, 0
        positions.append({"h": panel.height, "w": panel.width, "x": x, "y": y})
        x += panel.width
        row_height = max(row_height, panel.height)
    return positions


def _variable(variable: Variable) -> dict[str, Any]:
    return {
        "name": variable.name,
        "label": variable.label,
        "type": "query",
        "datasource": dict(DATASOURCE),
        "definition": variable.definition,
        "query": {"query": variable.definition, "refId": f"{variable.name}-values"},
        # 2: refreshed whenever the time range changes, so new tenants appear.
        "refresh": 2,
        "sort": 1,
        "regex": "",
        "includeAll": False,
        "multi": False,
        "current": {},
        "options": [],
        "hide": 0,
    }


DATASOURCE_VARIABLE = {
    "name": "datasource",
    "label": "Prometheus",
    "type": "datasource",
    "query": "prometheus",
    "regex": "",
    "current": {},
    "options": [],
    "refresh": 1,
    "hide": 0,
    "includeAll": False,
    "multi": False,
}


def render(dashboard: Dashboard) -> dict[str, Any]:
    """The dashboard as Grafana's JSON model, ready for import."""
    panels = [
        {
            "id": number,
            "type": panel.kind,
            "title": panel.title,
            "description": panel.description,
            "datasource": dict(DATASOURCE),
            "gridPos": position,
            "fieldConfig": _field_config(panel),
            "options": _options(panel),
            "targets": _targets(panel),
        }
        for number, (panel, position) in enumerate(
            zip(dashboard.panels, _layout(dashboard.panels), strict=True), start=1
        )
    ]
    return {
        "id": None,
        "uid": dashboard.uid,
        "title": dashboard.title,
        "description": dashboard.description,
        "tags": [TAG],
        "timezone": "utc",
        "editable": True,
        # 1: a shared crosshair, so one moment lines up across panels.
        "graphTooltip": 1,
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-3h", "to": "now"},
        "timepicker": {},
        "annotations": {"list": []},
        # Every sbp dashboard one click away from the others.
        "links": [
            {
                "type": "dashboards",
                "title": "sbp dashboards",
                "tags": [TAG],
                "asDropdown": True,
                "includeVars": False,
                "keepTime": True,
            }
        ],
        "templating": {"list": [dict(DATASOURCE_VARIABLE), *map(_variable, dashboard.variables)]},
        "panels": panels,
    }


VARIABLE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")


def expand(expr: str, values: Mapping[str, str]) -> str:
    """`expr` with Grafana's `$name` / `${name}` replaced as a dashboard would: what
    Prometheus then evaluates. A variable without a value is an error, never left in."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in values:
            raise KeyError(f"no value for ${name} in {expr!r}")
        return values[name]

    return VARIABLE.sub(value, expr)


def expressions(model: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(panel title, expr) for every query of every panel of a dashboard's JSON model."""
    for panel in model["panels"]:
        for target in panel["targets"]:
            yield panel["title"], target["expr"]
