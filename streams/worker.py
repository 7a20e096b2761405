"""Entry point of the faust worker: `python -m streams.worker` (run by `sbp dev up`)."""

from __future__ import annotations

import faust

from streams import app as app_module
from streams.agents import aggregator, processor  # noqa: F401  (registers agents)
from streams.serde import resolve_writers


def main() -> None:
    # faust creates only the last level of its data dir.
    app_module.settings.state_dir.joinpath("worker").mkdir(parents=True, exist_ok=True)
    # Fail at start, not mid-stream, if the registry does not know our schemas.
    resolve_writers()
    worker = faust.Worker(app_module.app, loglevel="info")
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()
