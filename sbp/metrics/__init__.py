"""Prometheus metrics shared by every service: bounded labels, lag arithmetic, exposition.

Each service defines its own metrics next to its code (gateway/request_metrics.py,
streams/worker_metrics.py, sinks/timescale/sink_metrics.py) in a registry of its
own, and serves them on an internal port, never on the public API
(docs/metrics.md lists every metric and where it is served).
"""

from prometheus_client import disable_created_metrics

# A `_created` series beside every counter and histogram doubles the series a
# scrape carries, and no rule or dashboard here reads them.
disable_created_metrics()  # type: ignore[no-untyped-call]
