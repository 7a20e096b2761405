"""Write the dashboards' JSON into ops/grafana/ (`--check`: only list the stale files)."""

from __future__ import annotations

import sys

from sbp.dashboards.files import OUT, rendered, stale
from sbp.settings import REPO_ROOT


def main(argv: list[str]) -> int:
    outdated = stale()
    if "--check" in argv:
        for path in outdated:
            print(f"stale: {path.relative_to(REPO_ROOT)}")
        return 1 if outdated else 0
    OUT.mkdir(parents=True, exist_ok=True)
    wanted = rendered()
    for path in outdated:
        path.write_text(wanted[path])
        print(f"wrote {path.relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
