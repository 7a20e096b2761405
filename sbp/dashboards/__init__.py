"""Grafana dashboards for the services' metrics, generated as JSON into ops/grafana/.

catalog.py is the source: what each dashboard shows, in PromQL over the metrics and
recording rules of docs/metrics.md. grafana.py turns it into Grafana's dashboard JSON
model; files.py says where it goes. `python -m sbp.dashboards` writes the files, and
tests/unit/test_dashboards.py fails while a committed file differs from the catalog's.
"""
