"""Where the dashboards' JSON lives (ops/grafana/<uid>.json), and the text each file holds."""

from __future__ import annotations

import json
from pathlib import Path

from sbp.dashboards.catalog import DASHBOARDS
from sbp.dashboards.grafana import render
from sbp.settings import REPO_ROOT

OUT = REPO_ROOT / "ops" / "grafana"


def rendered() -> dict[Path, str]:
    """Each dashboard's path and its JSON text, as it must be committed."""
    return {
        OUT / f"{d.uid}.json": json.dumps(render(d), indent=2, ensure_ascii=False) + "\n"
        for d in DASHBOARDS
    }


def stale() -> list[Path]:
    """The files missing or different from what the catalog makes."""
    return [p for p, text in rendered().items() if not p.is_file() or p.read_text() != text]
