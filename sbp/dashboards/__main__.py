"""Write the dashboards' JSON into ops/grafana/ (`--check`: only report stale files)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from sbp.dashboards.catalog import DASHBOARDS
from sbp.dashboards.grafana import render
from sbp.settings import REPO_ROOT

OUT = REPO_ROOT / "ops" / "grafana"


def files() -> dict[Path, str]:
    """Each dashboard's path and its JSON text, as committed."""
    return {OUT / f"{d.uid}.json": as_text(render(d)) for d in DASHBOARDS}


def as_text(model: dict[str, Any]) -> str:
    return json.dumps(model, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    wanted = files()
    stale = [p for p, text in wanted.items() if not p.is_file() or p.read_text() != text]
    if "--check" in argv:
        for path in stale:
            print(f"stale: {path.relative_to(REPO_ROOT)}")
        return 1 if stale else 0
    OUT.mkdir(parents=True, exist_ok=True)
    for path in stale:
        path.write_text(wanted[path])
        print(f"wrote {path.relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
