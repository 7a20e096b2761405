"""The dead-letter counter every consumer exports, one series per group and reason."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from prometheus_client.core import CounterMetricFamily


def dead_letter_family(
    group: str, known_reasons: Iterable[str], counts: Mapping[str, int]
) -> CounterMetricFamily:
    """`sbp_dlq_records_total` of one consumer group: every reason it can give, at 0
    until its first letter (a series that first appears at 1 is no increase to
    `increase()`, so the alert would miss it), plus any other reason it counted."""
    family = CounterMetricFamily(
        "sbp_dlq_records",
        "Records sent to votes.dlq, by consumer group and reason (errorCode).",
        labels=["group", "reason"],
    )
    for reason in sorted({*known_reasons, *counts}):
        family.add_metric([group, reason], counts.get(reason, 0))
    return family
