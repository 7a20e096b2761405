"""Benchmark of the whole vote path under a sustained load: gateway → worker → SSE and PostgreSQL.

For `--duration` seconds (300 by default) it offers `--rate` votes/s (5,000)
to `POST /api/v1/votes/batch` in batches of `--batch` (100), signed in turn by
`--users` occupants (50) of a fresh tenant, over `--zones` seeded zones (200;
`--hot` puts every vote in the first 4). Requests are scheduled at a fixed
pace (open loop) and sent over one keep-alive connection per user with the
light client of bench/http_client.py; a request whose slot comes while every
connection is busy waits, and the backlog is reported.

Measured:

- **achieved rate**: votes answered `accepted`, per second of load;
- **worker lag** every 2 s: votes accepted so far minus votes the vote stage
  judged `first` (its /stats, summed over workers), with the least-squares
  trend over the load; the PostgreSQL sink's lag the same way;
- **ingest→SSE latency**: an fm subscribes to the building's SSE stream
  (bench/sse_watch.py). The k-th vote a zone had accepted is reflected when the
  zone's published 60-minute count first reaches k (bench/latency_match.py);
  latency is that receipt time minus the time the gateway's `accepted` answer
  arrived. The same pairing against the Redis Stream id's timestamp gives the
  worker's part (ingest→publish) without the SSE hop;
- **PostgreSQL**: the tenant's rows equal the accepted votes, exactly;
- **RSS peaks** of the gateway and every worker, and CPU per process.

After the load it waits (up to `--drain-s`) until the worker, the SSE counts
and PostgreSQL have every accepted vote, and says how long each took. The run
exits non-zero if a count is not exact.

Run: `.venv/bin/python -m bench.end_to_end [--duration 300] [--rate 5000] [--hot]`
"""

from __future__ import annotations

import argparse
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass

import httpx
import psycopg

from bench.cpu_usage import neighbours_line, report, sample
from bench.http_client import percentile, run_fast
from bench.latency_match import Matched, match, merge, slope, split_by, weighted_percentiles
from bench.machine import describe_machine
from bench.pipeline_throughput import stored_rows
from bench.process_memory import RssSampler, find_gateway_pid, worker_pid
from bench.sse_watch import SseWatch
from bench.tenant import BenchTenant, fresh_tenant, require_loopback
from bench.vote_load import Load, Votes, offer
from bench.worker_stats import CountersAcrossRestarts, wait_until_quiet
from devstack.workers import running
from identity.dev_cli import mint_dev_token
from sbp.settings import Settings, get_settings

HOT_ZONES = 4
MINUTE_TURN_S = 10.0


@dataclass
class LagSample:
    t: float
    accepted: int
    judged: int
    stored: int

    @property
    def worker_lag(self) -> int:
        return self.accepted - self.judged

    @property
    def sink_lag(self) -> int:
        return self.accepted - self.stored


class LagWatch:
    """Samples how far the vote stage and the sink are behind the gateway, every `every_s`."""

    def __init__(self, settings: Settings, load: Load, every_s: float = 2.0) -> None:
        self.settings = settings
        self.load = load
        self.every_s = every_s
        self.samples: list[LagSample] = []
        self.counters = CountersAcrossRestarts(settings)
        self._lock = threading.Lock()
        self._t0 = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="lag-watch", daemon=True)

    def __enter__(self) -> LagWatch:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def now(self) -> LagSample:
        accepted = self.load.accepted  # read first: the stages can only be behind it
        with self._lock:
            done = self.counters.since_start()
        return LagSample(
            time.monotonic() - self._t0,
            accepted,
            done.get("worker.first", 0),
            done.get("sink.inserted", 0),
        )

    def _loop(self) -> None:
        next_print = 10.0
        while not self._stop.wait(self.every_s):
            try:
                s = self.now()
            except httpx.HTTPError as exc:
                print(f"  lag sample failed: {exc!r}")
                continue
            self.samples.append(s)
            if s.t >= next_print:
                print(
                    f"  t={s.t:5.0f}s  accepted {s.accepted:>9}  worker lag {s.worker_lag:>7}  "
                    f"sink lag {s.sink_lag:>7}"
                )
                next_print += 10.0


def latency_report(load: Load, watch: SseWatch, zones: tuple[str, ...]) -> list[str]:
    observed = watch.by_zone()
    lines = []
    for label, by_send, use_publish in (
        ("ingest→SSE (answer → SSE receipt)", False, False),
        ("ingest→Redis (answer → stream append)", False, True),
        ("send→SSE (request sent → SSE receipt)", True, False),
    ):
        parts: list[Matched] = []
        for zone in zones:
            obs = sorted(
                (o.published_at if use_publish else o.received_at, o.count)
                for o in observed.get(zone, [])
            )
            parts.append(match(load.zone_points(zone, by_send=by_send), obs))
        merged = merge(parts)
        lines.append(f"{label:<40} {_percentiles(merged)}, {merged.unmatched} never seen")
        if not by_send and not use_publish:
            # The worker republishes every zone when the minute turns (windows slide); a
            # vote seen in the seconds after it may have waited behind that wave.
            turn, rest = split_by(merged, lambda t: t % 60 < MINUTE_TURN_S)
            turn_label = f"  seen < {MINUTE_TURN_S:.0f} s after a minute turned"
            lines.append(f"{turn_label:<40} {_percentiles(turn)}")
            lines.append(f"{'  seen at other times':<40} {_percentiles(rest)}")
    return lines


def _percentiles(matched: Matched) -> str:
    if not matched.votes:
        return "no votes"
    p = weighted_percentiles(matched.latencies, (50, 99, 100))
    return f"p50 {p[50]:6.2f}s  p99 {p[99]:6.2f}s  max {p[100]:6.2f}s  [{matched.votes} votes]"


def lag_report(samples: list[LagSample], duration: float) -> list[str]:
    during = [s for s in samples if s.t <= duration]
    if not during:
        return ["no lag samples"]
    # The first 10% is the ramp from zero; the trend is taken over the rest of the load.
    steady = [s for s in during if s.t >= 0.1 * duration] or during
    worker_trend = slope([(s.t, float(s.worker_lag)) for s in steady])
    sink_trend = slope([(s.t, float(s.sink_lag)) for s in steady])
    third = max(1, len(steady) // 3)
    first = sum(s.worker_lag for s in steady[:third]) / third
    last = sum(s.worker_lag for s in steady[-third:]) / third
    lines = [
        f"worker lag (votes accepted, not yet judged): max {max(s.worker_lag for s in during)}, "
        f"mean of first third {first:,.0f}, of last third {last:,.0f}, "
        f"trend {worker_trend:+,.1f} votes/s",
        f"sink lag (votes accepted, not yet stored): max {max(s.sink_lag for s in during)}, "
        f"at the end of the load {during[-1].sink_lag}, trend {sink_trend:+,.1f} votes/s",
    ]
    rate = during[-1].accepted / max(1e-9, during[-1].t)
    grows = worker_trend > 0.02 * rate
    lines.append(
        "worker lag "
        + ("GROWS: the worker does not keep up" if grows else "does not grow (trend < 2% of rate)")
    )
    lines.append("  t(s)   accepted   worker lag   sink lag")
    lines += [
        f"  {s.t:5.0f} {s.accepted:>10} {s.worker_lag:>12} {s.sink_lag:>10}"
        for s in during[:: max(1, len(during) // 15)]
    ]
    return lines


def drain(
    settings: Settings,
    tenant: BenchTenant,
    load: Load,
    lag: LagWatch,
    watch: SseWatch,
    limit_s: float,
) -> dict[str, float | None]:
    """Seconds after the load until the worker, the SSE counts and PostgreSQL had every vote."""
    expected = {zone: sum(counts) for zone, counts in load.counts.items()}
    done: dict[str, float | None] = {"worker": None, "sse": None, "postgres": None}
    t0 = time.monotonic()
    with psycopg.connect(settings.pg_dsn("app")) as conn:
        while None in done.values() and time.monotonic() - t0 < limit_s:
            elapsed = time.monotonic() - t0
            if done["worker"] is None and lag.now().judged >= load.accepted:
                done["worker"] = elapsed
            if done["sse"] is None:
                seen = {z: max(o.count for o in obs) for z, obs in watch.by_zone().items()}
                if all(seen.get(z, 0) >= n for z, n in expected.items()):
                    done["sse"] = elapsed
            if done["postgres"] is None and stored_rows(conn, tenant.tenant_id) >= load.accepted:
                done["postgres"] = elapsed
            time.sleep(0.5)
    return done


def _pids(settings: Settings) -> dict[str, int]:
    pids = {}
    gateway = find_gateway_pid(settings)
    if gateway is None:
        raise SystemExit(f"no gateway.app process found serving port {settings.gateway_port}")
    pids["gateway"] = gateway
    for instance in running(settings):
        pid = worker_pid(settings, instance)
        if pid is not None:
            pids[f"worker-{instance}"] = pid
    if len(pids) == 1:
        raise SystemExit("no vote-stage worker running (`.venv/bin/sbp dev up`)")
    return pids


def main(args: argparse.Namespace) -> None:
    settings = get_settings()
    require_loopback(settings)
    base = f"http://{settings.host}:{settings.gateway_port}"
    if httpx.get(f"{base}/readyz", timeout=5).status_code != 200:
        raise SystemExit("gateway not ready")
    pids = _pids(settings)
    print("== end to end: gateway → worker → SSE and PostgreSQL, sustained ==")
    print(describe_machine())
    print(neighbours_line())
    print(wait_until_quiet(settings, limit_s=300))

    tenant = fresh_tenant(settings, args.zones)
    zones = tenant.zones[:HOT_ZONES] if args.hot else tenant.zones
    ttl = int(args.duration + args.drain_s) + 600
    tokens = tenant.tokens(args.users, ttl_s=ttl)
    fm = mint_dev_token(settings, tenant.tenant_id, "bench-fm", "fm", [tenant.building_id], ttl)
    print(
        f"tenant {tenant.tenant_id}: {args.rate} votes/s offered for {args.duration}s in batches "
        f"of {args.batch} from {args.users} users over {len(zones)} zones"
        + (" (--hot)" if args.hot else "")
        + f"; processes {pids}"
    )
    watch = SseWatch(f"{base}/api/v1/buildings/{tenant.building_id}/stream", fm)
    watch.start()
    load = Load()
    votes = Votes(tenant, zones, args.seed)
    cpu_before = sample()
    with ExitStack() as stack:
        rss = {name: stack.enter_context(RssSampler(pid)) for name, pid in pids.items()}
        lag = stack.enter_context(LagWatch(settings, load))
        started = time.perf_counter()
        run_fast(offer(settings, tokens, votes, args, load))
        load_s = time.perf_counter() - started
        cpu = report(cpu_before, sample(), load_s)
        print(f"load done after {load_s:.1f}s; draining (up to {args.drain_s:.0f}s)")
        drained = drain(settings, tenant, load, lag, watch, args.drain_s)
    watch.stop()
    with psycopg.connect(settings.pg_dsn("app")) as conn:
        rows = stored_rows(conn, tenant.tenant_id)

    lat = sorted(load.latencies_s)
    print(f"-- results ({'hot: 4 zones' if args.hot else f'{len(zones)} zones'}) --")
    print(
        f"offered {args.rate:,} votes/s for {args.duration}s; sent {load.requests} requests; "
        f"accepted {load.accepted} votes: {load.accepted / load_s:,.0f} votes/s achieved"
    )
    if lat:
        print(
            f"request latency: p50 {1000 * percentile(lat, 50):.0f} ms, "
            f"p99 {1000 * percentile(lat, 99):.0f} ms, max {1000 * lat[-1]:.0f} ms; "
            f"slot backlog max {load.backlog_max}, {load.late_sends} sends >100 ms late"
        )
    if load.resent:
        print(
            "re-sent after a transport error: "
            + ", ".join(f"{k} x{v}" for k, v in load.resent.items())
        )
    if load.failures:
        print("not accepted: " + ", ".join(f"{k} x{v}" for k, v in load.failures.most_common()))
    print("\n".join(lag_report(lag.samples, args.duration)))
    print(
        "after the load: "
        + ", ".join(
            f"{name} complete after {'-' if s is None else f'{s:.1f}s'}"
            for name, s in drained.items()
        )
    )
    print("\n".join(latency_report(load, watch, zones)))
    print(f"SSE: {len(watch.observations)} aggregate events, {watch.reconnects} reconnects")
    if lag.counters.restarts:
        print(f"WARNING: processes restarted during the run: {dict(lag.counters.restarts)}")
    exact = rows == load.accepted
    verdict = "exact" if exact else "NOT EXACT"
    print(f"PostgreSQL: {rows} rows for {load.accepted} accepted votes: {verdict}")
    for name, sampler in rss.items():
        print(sampler.line(name))
    print(cpu)
    if not exact or None in drained.values():
        raise SystemExit("the run did not end exact: see above")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--duration", type=float, default=300.0, help="seconds of load")
    parser.add_argument("--rate", type=int, default=5_000, help="votes/s offered")
    parser.add_argument("--batch", type=int, default=100, help="votes per request (1-100)")
    parser.add_argument("--users", type=int, default=50, help="occupants (one connection each)")
    parser.add_argument("--zones", type=int, default=200, help="zones seeded for the tenant")
    parser.add_argument("--hot", action="store_true", help=f"every vote in {HOT_ZONES} zones")
    parser.add_argument("--drain-s", type=float, default=300.0, help="wait after the load (s)")
    parser.add_argument("--seed", type=int, default=5_000, help="random seed for the votes")
    args = parser.parse_args(argv)
    if not 1 <= args.duration <= 3600:
        parser.error("--duration must be 1..3600")
    if not 1 <= args.batch <= 100:
        parser.error("--batch must be 1..100")
    if not 1 <= args.users <= 500:
        parser.error("--users must be 1..500")
    if args.zones < (HOT_ZONES if args.hot else 1):
        parser.error(f"--zones must be at least {HOT_ZONES} with --hot")
    return args


if __name__ == "__main__":
    main(parse_args())
