"""The project's Grafana dashboards: one of golden signals per service, and a tenant's health.

The metrics and recording rules they read are those of docs/metrics.md and
ops/prometheus/rules/. Where a recording rule holds the figure an alert reads, the
panel shows the rule, so the dashboard and the page agree. Where no rule fits, the
panel computes from the raw series:

- The gateway and the tenant service export the same request metrics, and the
  `sbp:http_*` rules sum over both (by route and tenant, not job); a service's own
  dashboard therefore selects its `job`.
- The tenant view may use those rules: the gateway labels the admin calls it
  forwards `none` (the tenant service authenticates them and labels them there), so
  a tenant's requests are counted once across the two services.

A ratio whose numerator has no series (no 5xx yet: such series appear with the first
one) would be no data rather than 0; `or vector(0)` keeps it a figure.
Health probes are left out of traffic and errors, as in the rules: a 503 from
/readyz is the probe doing its job.
"""

from __future__ import annotations

from sbp.dashboards.grafana import Dashboard, Panel, Query, Threshold, Variable

RATE = "$__rate_interval"
NOT_PROBES = 'route!~"/healthz|/readyz"'
# The objectives and alert thresholds of ops/prometheus/rules/, drawn on the panels.
LAG_OBJECTIVE = 5000
LATENCY_OBJECTIVE_S = 5
DLQ_DEPTH_ALERT = 1000
DLQ_DEPTH_STALE_S = 300
GATEWAY_5XX_ALERT = 0.05
TENANT_LABEL_CAP = 50
# Burn rates over the 1% budget at which the slow (6x) and fast (14.4x) alerts fire.
BURN = (Threshold(0.06, "orange"), Threshold(0.144, "red"))


def rate(metric: str, selector: str, by: str = "", window: str = RATE) -> str:
    grouping = f"sum by ({by}) " if by else "sum"
    series = f"{metric}{{{selector}}}" if selector else metric
    return f"{grouping}(rate({series}[{window}]))"


def quantile(q: float, histogram: str, selector: str, by: str = "") -> str:
    labels = f"{by}, le" if by else "le"
    series = f"{histogram}_bucket{{{selector}}}" if selector else f"{histogram}_bucket"
    return f"histogram_quantile({q}, sum by ({labels}) (rate({series}[{RATE}])))"


def ratio(part: str, whole: str) -> str:
    """part / whole, 0 (not no data) while `part` has no series."""
    return f"({part} or vector(0)) / {whole}"


def up(job: str, when_down: str = "") -> Panel:
    scraped = f"1 while Prometheus scrapes the {job} target, 0 while it does not answer."
    return Panel(
        "Up",
        f"{scraped} {when_down}" if when_down else scraped,
        (Query(f'up{{job="{job}"}}', "{{instance}}"),),
        unit="none",
        kind="stat",
        width=6,
        height=5,
        base_color="red",
        thresholds=(Threshold(1, "green"),),
    )


def stat(
    title: str,
    description: str,
    query: Query,
    unit: str,
    thresholds: tuple[Threshold, ...] = (),
    base_color: str = "green",
) -> Panel:
    """One current figure, a quarter of a row wide: the first thing an on-call engineer reads."""
    return Panel(
        title,
        description,
        (query,),
        unit,
        kind="stat",
        width=6,
        height=5,
        thresholds=thresholds,
        base_color=base_color,
    )


def http_service(job: str, service: str) -> tuple[Panel, ...]:
    """Traffic, errors and latency of a Starlette service's RED middleware."""
    sel = f'job="{job}",{NOT_PROBES}'
    requests = rate("sbp_http_requests_total", sel)
    errors_5xx = rate("sbp_http_requests_total", f'{sel},status=~"5.."')
    return (
        up(job),
        stat(
            "Requests/s",
            f"Requests the {service} answered, probes excluded.",
            Query(requests, "requests/s"),
            "reqps",
        ),
        stat(
            "5xx ratio",
            f"Share of the {service}'s answers that are 5xx (probes excluded). The gateway "
            "pages above 5% for 5 minutes (SbpGateway5xxRateHigh).",
            Query(ratio(errors_5xx, requests), "5xx"),
            "percentunit",
            thresholds=(Threshold(0.01, "orange"), Threshold(GATEWAY_5XX_ALERT, "red")),
        ),
        Panel(
            "Traffic by route",
            "Requests per second per route template and method.",
            (
                Query(
                    rate("sbp_http_requests_total", sel, "route, method"),
                    "{{method}} {{route}}",
                ),
            ),
            "reqps",
        ),
        Panel(
            "Answers by status",
            "Requests per second by HTTP status.",
            (Query(rate("sbp_http_requests_total", sel, "status"), "{{status}}"),),
            "reqps",
        ),
        Panel(
            "Errors by route",
            "4xx (the caller's: rejected input, a missing or expired token, a rate limit) "
            "and 5xx (ours) per route. No data: no error answered in the range.",
            (
                Query(
                    rate("sbp_http_requests_total", f'{sel},status=~"[45].."', "route, status"),
                    "{{status}} {{route}}",
                ),
            ),
            "reqps",
        ),
        Panel(
            "Latency p50 by route",
            "Median time from a request's arrival to the start of its response (for an SSE "
            "stream: the time to open it).",
            (
                Query(
                    quantile(0.5, "sbp_http_request_duration_seconds", sel, "route"),
                    "{{route}}",
                ),
            ),
            "s",
        ),
        Panel(
            "Latency p99 by route",
            "99th percentile of the same duration. Above 10 s it shows as 10 s (the "
            "histogram's top bucket).",
            (
                Query(
                    quantile(0.99, "sbp_http_request_duration_seconds", sel, "route"),
                    "{{route}}",
                ),
            ),
            "s",
        ),
    )


def lag_panels(group: str) -> tuple[Panel, ...]:
    return (
        Panel(
            "Lag per partition",
            f"Records each partition holds that {group} has not finished with.",
            (Query(f'sbp_consumer_lag_records{{group="{group}"}}', "{{topic}} {{partition}}"),),
            "short",
        ),
        Panel(
            "Lag, whole group",
            f"The lag summed over partitions; the objective is at most {LAG_OBJECTIVE:,} "
            "records 99% of the time.",
            (Query(f'sbp:consumer_lag_records:sum{{group="{group}"}}', "{{topic}}"),),
            "short",
            thresholds=(Threshold(LAG_OBJECTIVE, "red"),),
        ),
        Panel(
            "Lag objective: time over it",
            "Share of each window the group spent over the lag objective. The slow-burn "
            "ticket needs 6% over 6 h, the fast-burn page 14.4% over 1 h.",
            tuple(
                Query(f'sbp:consumer_lag_slo:error_ratio{w}{{group="{group}"}}', w)
                for w in ("5m", "1h", "6h")
            ),
            "percentunit",
            thresholds=BURN,
        ),
        Panel(
            "Rebalances",
            "Partitions taken on and revoked per 5 minutes: a steady stream of them is a "
            "group that keeps rebalancing.",
            (
                Query(
                    f'sum(increase(sbp_consumer_partitions_assigned_total{{group="{group}"}}[5m]))',
                    "assigned",
                ),
                Query(
                    f'sum(increase(sbp_consumer_partitions_revoked_total{{group="{group}"}}[5m]))',
                    "revoked",
                ),
            ),
            "short",
        ),
    )


def new_dead_letters(group: str) -> Panel:
    return Panel(
        "New dead letters by reason (15 min)",
        f"Records {group} sent to votes.dlq over the last 15 minutes, by reason: what "
        "SbpDeadLettersArriving reads (runbooks/dead-letters.md). 0 until the first one.",
        (
            Query(
                f'sum by (reason) (sbp:dlq_records:increase15m{{group="{group}"}}) '
                "or on () vector(0)",
                "{{reason}}",
            ),
        ),
        "short",
        thresholds=(Threshold(1, "orange"),),
    )


GATEWAY = Dashboard(
    uid="sbp-gateway",
    title="sbp / gateway",
    description="The public API's golden signals: traffic, errors and latency per route.",
    panels=(
        *http_service("sbp-gateway", "gateway"),
        Panel(
            "Tenant labels in use",
            "Tenants with a label of their own in each gateway process; past the cap "
            f"({TENANT_LABEL_CAP} by default) the rest are counted as `other`.",
            (Query('sbp_http_tenant_labels{job="sbp-gateway"}', "{{instance}}"),),
            "short",
            thresholds=(Threshold(TENANT_LABEL_CAP, "orange"),),
        ),
    ),
)

WORKER = Dashboard(
    uid="sbp-worker",
    title="sbp / vote-stage worker",
    description="The faust vote stage: votes judged, lag on votes.raw, ingest to publish "
    "latency, rebalances, replays and gaps, dead letters.",
    panels=(
        up(
            "sbp-worker",
            "Down for 2 minutes pages (SbpWorkerDown): its partitions' lag is then unreported.",
        ),
        stat(
            "Lag",
            f"Records of votes.raw the stage has not finished with (objective: at most "
            f"{LAG_OBJECTIVE:,}).",
            Query('sbp:consumer_lag_records:sum{group="sbp-worker"}', "records"),
            "short",
            thresholds=(Threshold(LAG_OBJECTIVE, "red"),),
        ),
        stat(
            "Ingest to publish p99",
            f"99th percentile over 5 minutes (objective: {LATENCY_OBJECTIVE_S} s for 99% "
            "of votes).",
            Query("sbp:ingest_to_publish_seconds:p99_5m", "p99"),
            "s",
            thresholds=(Threshold(LATENCY_OBJECTIVE_S, "red"),),
        ),
        stat(
            "Partitions held",
            "votes.raw partitions the workers hold, summed over workers.",
            Query('sum(sbp_consumer_partitions_held{group="sbp-worker"})', "partitions"),
            "short",
        ),
        Panel(
            "Throughput",
            "Votes judged per second by outcome (first seen, replayed after a crash, "
            "duplicate dropped), and zone snapshots written to Redis.",
            (
                Query(rate("sbp_vote_stage_votes_total", "", "outcome"), "votes {{outcome}}"),
                Query(rate("sbp_live_snapshots_published_total", ""), "snapshots published"),
            ),
            "cps",
        ),
        Panel(
            "Ingest to publish latency",
            "From a vote's receipt at the gateway to its zone's windows in Redis (where SSE "
            "reads them). Re-driven and replayed votes keep their receipt time and show slow.",
            (
                Query(quantile(0.5, "sbp_ingest_to_publish_seconds", ""), "p50"),
                Query("sbp:ingest_to_publish_seconds:p99_5m", "p99 (5 min)"),
            ),
            "s",
            thresholds=(Threshold(LATENCY_OBJECTIVE_S, "red"),),
        ),
        Panel(
            "Latency objective: votes over 5 s",
            "Share of votes slower than 5 s to the live windows, per window. Slow burn: "
            "6% over 6 h; fast burn: 14.4% over 1 h.",
            tuple(
                Query(f"sbp:ingest_to_publish_slo:error_ratio{w}", w) for w in ("5m", "1h", "6h")
            ),
            "percentunit",
            thresholds=BURN,
        ),
        *lag_panels("sbp-worker"),
        Panel(
            "Replays, re-reads and gaps (5 min)",
            "Votes re-emitted after a crash, records re-read below the stage's progress or "
            "past a gap, gaps sought back, and seeks for quiet partitions.",
            (
                Query(
                    'sum(increase(sbp_vote_stage_votes_total{outcome="replay"}[5m]))',
                    "votes replayed",
                ),
                Query(
                    "sum by (reason) (increase(sbp_vote_stage_records_skipped_total[5m]))",
                    "skipped {{reason}}",
                ),
                Query("sum(increase(sbp_vote_stage_gaps_repaired_total[5m]))", "gaps repaired"),
                Query(
                    "sum by (reason) (increase(sbp_vote_stage_seeks_total[5m]))",
                    "seeks {{reason}}",
                ),
            ),
            "short",
        ),
        new_dead_letters("sbp-worker"),
        Panel(
            "Dead letters by reason, since start",
            "Each worker's count since it started, by reason; a series appears with the "
            "first dead letter of its reason.",
            (
                Query(
                    'sum by (instance, reason) (sbp_dlq_records_total{group="sbp-worker"})',
                    "{{instance}} {{reason}}",
                ),
            ),
            "short",
        ),
        Panel(
            "Timer errors (5 min)",
            "Timer ticks that failed (each retried on the next tick). 0 until the first.",
            (
                Query(
                    "sum by (timer) (increase(sbp_worker_timer_errors_total[5m])) "
                    "or on () vector(0)",
                    "{{timer}}",
                ),
            ),
            "short",
            thresholds=(Threshold(1, "orange"),),
        ),
    ),
)

SINK = Dashboard(
    uid="sbp-pg-sink",
    title="sbp / PostgreSQL sink",
    description="The votes.accepted to PostgreSQL sink: rows written, batch latency, lag, "
    "the DLQ's depth.",
    panels=(
        up(
            "sbp-pg-sink",
            "Down for 2 minutes pages (SbpSinkDown): its lag is then unreported.",
        ),
        stat(
            "PostgreSQL",
            "1 while PostgreSQL answered the sink's last request.",
            Query("sbp_sink_database_up", "{{instance}}"),
            "none",
            base_color="red",
            thresholds=(Threshold(1, "green"),),
        ),
        stat(
            "Lag",
            f"Records of votes.accepted not yet stored and committed (objective: at most "
            f"{LAG_OBJECTIVE:,}).",
            Query('sbp:consumer_lag_records:sum{group="sbp-pg-sink"}', "records"),
            "short",
            thresholds=(Threshold(LAG_OBJECTIVE, "red"),),
        ),
        stat(
            "DLQ depth",
            "Dead letters retained in votes.dlq (an upper bound of those not yet "
            f"reprocessed); a ticket above {DLQ_DEPTH_ALERT:,} for 15 minutes.",
            Query("sbp:dlq_depth_records:sum", "{{topic}}"),
            "short",
            thresholds=(Threshold(DLQ_DEPTH_ALERT, "orange"),),
        ),
        Panel(
            "Rows written",
            "Rows per second inserted, or already stored (a replay: ON CONFLICT DO "
            "NOTHING), and records read in committed batches.",
            (
                Query(rate("sbp_sink_rows_total", "", "result"), "rows {{result}}"),
                Query(rate("sbp_sink_records_total", ""), "records"),
            ),
            "rowsps",
        ),
        Panel(
            "Batches and retries",
            "Batches stored and committed per second, and retries while PostgreSQL, the "
            "registry or the DLQ was unavailable.",
            (
                Query(rate("sbp_sink_batches_total", ""), "batches"),
                Query(rate("sbp_sink_retries_total", ""), "retries"),
            ),
            "ops",
        ),
        Panel(
            "Batch latency",
            "A batch from its arrival to its commit: decode, write (retries included), dead "
            "letters, commit.",
            (
                Query(quantile(0.5, "sbp_sink_batch_duration_seconds", ""), "p50"),
                Query(quantile(0.99, "sbp_sink_batch_duration_seconds", ""), "p99"),
            ),
            "s",
        ),
        *lag_panels("sbp-pg-sink"),
        Panel(
            "DLQ depth",
            "Dead letters retained in votes.dlq, by topic; Kafka keeps a record after it "
            "is reprocessed, so the depth falls only with retention.",
            (Query("sbp:dlq_depth_records:sum", "{{topic}}"),),
            "short",
            thresholds=(Threshold(DLQ_DEPTH_ALERT, "orange"),),
        ),
        Panel(
            "DLQ depth by reason",
            "The retained dead letters by errorCode, counted as they arrive; what is not "
            "counted yet (a backlog being caught up) is shown apart.",
            (
                Query("sum by (reason) (sbp_dlq_depth_by_reason_records)", "{{reason}}"),
                Query("sum(sbp_dlq_depth_by_reason_behind_records)", "not counted yet"),
            ),
            "short",
        ),
        Panel(
            "DLQ depth: age of the reading",
            f"Seconds since the depth was last read (every 15 s); a ticket past "
            f"{DLQ_DEPTH_STALE_S} s for 5 minutes (SbpDlqDepthStale). A failed read keeps "
            "the last figures, so the age grows.",
            (Query("time() - sbp_dlq_depth_read_timestamp_seconds", "{{instance}}"),),
            "s",
            thresholds=(Threshold(DLQ_DEPTH_STALE_S, "orange"),),
        ),
        new_dead_letters("sbp-pg-sink"),
    ),
)

ADMIN = Dashboard(
    uid="sbp-admin",
    title="sbp / tenant service",
    description="The tenant service (admin API): requests and errors per route, and the "
    "outbox relay to the config topics.",
    panels=(
        *http_service("sbp-admin", "tenant service"),
        Panel(
            "Outbox relay",
            "Outbox rows published to the config topics, and relay rounds that failed "
            "(each retried), per 5 minutes. Failed rounds delay config reaching the workers.",
            (
                Query("sum(increase(sbp_outbox_published_total[5m]))", "rows published"),
                Query("sum(increase(sbp_outbox_failed_rounds_total[5m]))", "failed rounds"),
            ),
            "short",
        ),
    ),
)

TENANT = Variable(
    name="tenant",
    label="Tenant",
    # Every labelled tenant, and `other` (those past a process's label cap).
    selector='sbp_http_requests_total{tenant!="none"}',
    metric_label="tenant",
)
T = 'tenant="$tenant"'
EVERY_TENANT = 'tenant!="none"'

TENANT_HEALTH = Dashboard(
    uid="sbp-tenant-health",
    title="sbp / tenant health",
    description="One tenant's requests, errors and latency across the gateway and the "
    "tenant service, and the tenants that stand out. `other` holds the tenants past a "
    "process's label cap.",
    variables=(TENANT,),
    panels=(
        stat(
            "Requests/s",
            "The tenant's requests over 5 minutes, gateway and tenant service.",
            Query(f"sum(sbp:http_requests:rate5m{{{T}}})", "requests/s"),
            "reqps",
        ),
        stat(
            "5xx ratio",
            "Share of the tenant's requests answered 5xx over 5 minutes.",
            Query(
                ratio(
                    f"sum(sbp:http_errors_5xx:rate5m{{{T}}})",
                    f"sum(sbp:http_requests:rate5m{{{T}}})",
                ),
                "5xx",
            ),
            "percentunit",
            thresholds=(Threshold(0.01, "orange"), Threshold(GATEWAY_5XX_ALERT, "red")),
        ),
        stat(
            "4xx ratio",
            "Share of the tenant's requests rejected with 4xx (input, role, rate limit): "
            "a rising one is often a client release or an integration gone wrong.",
            Query(
                ratio(
                    rate("sbp_http_requests_total", f'{T},{NOT_PROBES},status=~"4.."'),
                    rate("sbp_http_requests_total", f"{T},{NOT_PROBES}"),
                ),
                "4xx",
            ),
            "percentunit",
            thresholds=(Threshold(0.05, "orange"), Threshold(0.25, "red")),
        ),
        stat(
            "Latency p99",
            "99th percentile of the tenant's request durations.",
            Query(quantile(0.99, "sbp_http_request_duration_seconds", f"{T},{NOT_PROBES}"), "p99"),
            "s",
        ),
        Panel(
            "Requests by route",
            "The tenant's requests per second per route (5-minute rate).",
            (Query(f"sbp:http_requests:rate5m{{{T}}}", "{{route}}"),),
            "reqps",
        ),
        Panel(
            "Answers by status",
            "The tenant's requests per second by HTTP status.",
            (Query(rate("sbp_http_requests_total", f"{T},{NOT_PROBES}", "status"), "{{status}}"),),
            "reqps",
        ),
        Panel(
            "Latency by route",
            "p50 and p99 of the tenant's request durations per route.",
            (
                Query(
                    quantile(
                        0.5, "sbp_http_request_duration_seconds", f"{T},{NOT_PROBES}", "route"
                    ),
                    "p50 {{route}}",
                ),
                Query(
                    quantile(
                        0.99, "sbp_http_request_duration_seconds", f"{T},{NOT_PROBES}", "route"
                    ),
                    "p99 {{route}}",
                ),
            ),
            "s",
        ),
        Panel(
            "Error ratios",
            "Share of the tenant's requests answered 5xx and 4xx.",
            (
                Query(
                    ratio(
                        f"sum(sbp:http_errors_5xx:rate5m{{{T}}})",
                        f"sum(sbp:http_requests:rate5m{{{T}}})",
                    ),
                    "5xx",
                ),
                Query(
                    ratio(
                        rate("sbp_http_requests_total", f'{T},{NOT_PROBES},status=~"4.."'),
                        rate("sbp_http_requests_total", f"{T},{NOT_PROBES}"),
                    ),
                    "4xx",
                ),
            ),
            "percentunit",
        ),
        Panel(
            "Busiest tenants",
            "The ten tenants with the most requests (5-minute rate).",
            (
                Query(
                    f"topk(10, sum by (tenant) (sbp:http_requests:rate5m{{{EVERY_TENANT}}}))",
                    "{{tenant}}",
                ),
            ),
            "reqps",
        ),
        Panel(
            "Tenants with the most 5xx",
            "The ten tenants with the highest share of 5xx answers (5-minute rate).",
            (
                Query(
                    "topk(10, (sum by (tenant) "
                    f"(sbp:http_errors_5xx:rate5m{{{EVERY_TENANT}}}) or sum by (tenant) "
                    f"(sbp:http_requests:rate5m{{{EVERY_TENANT}}}) * 0) / sum by (tenant) "
                    f"(sbp:http_requests:rate5m{{{EVERY_TENANT}}}))",
                    "{{tenant}}",
                ),
            ),
            "percentunit",
        ),
        Panel(
            "Slowest tenants",
            "The ten tenants with the highest p99 request duration.",
            (
                Query(
                    "topk(10, "
                    + quantile(
                        0.99,
                        "sbp_http_request_duration_seconds",
                        f"{EVERY_TENANT},{NOT_PROBES}",
                        "tenant",
                    )
                    + ")",
                    "{{tenant}}",
                ),
            ),
            "s",
        ),
        Panel(
            "Tenant labels in use",
            "Tenants with a label of their own per process; past the cap "
            f"({TENANT_LABEL_CAP} by default) new tenants show only as `other`.",
            (Query("sbp_http_tenant_labels", "{{job}} {{instance}}"),),
            "short",
            thresholds=(Threshold(TENANT_LABEL_CAP, "orange"),),
        ),
    ),
)

DASHBOARDS = (GATEWAY, WORKER, SINK, ADMIN, TENANT_HEALTH)
