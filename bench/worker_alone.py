"""Benchmark of one vote-stage worker on a pre-filled votes.raw, beside a bare loop.

1. Wait until the pipeline is idle, stop every worker, and (unless
   `--keep-sink`) the PostgreSQL sink, so the worker has the machine to itself.
2. Note votes.raw's end offsets, produce N raw votes for a fresh tenant (200
   zones, clientTs within the last 30 minutes), note the end offsets again:
   the span between them is the run's input.
3. Start ONE worker and time from its start until its `/stats` show all N
   votes judged `first` (each vote emitted once). The clock includes start-up
   and state recovery; the rate from readiness is printed too. The worker's
   CPU and peak RSS are sampled meanwhile. `--profile` attaches py-spy for
   `--profile-s` seconds once the worker is past 5% of the votes and writes
   `bench/profiles/worker.svg` (the flame graph) and `worker.txt` (raw stacks,
   summarised by bench/profile_summary.py).
4. Restart the sink, wait until it has stored the backlog, and run the bare
   confluent-kafka loop (bench/bare_loop.py) over exactly the same span,
   producing to a scratch topic that is deleted afterwards.
5. Print both rates and the ratio worker / bare, with the machine.

One worker is left running at the end.

Run: `.venv/bin/python -m bench.worker_alone [--votes 500000] [--profile]`
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx

from bench.bare_loop import end_offsets, run_bare_loop, scratch_topic, span_between, span_size
from bench.cpu_usage import group_seconds, neighbours_line, report, sample, thread_seconds
from bench.machine import describe_machine
from bench.process_memory import RssSampler, worker_pid
from bench.profile_summary import summarize
from bench.tenant import BenchTenant, fresh_tenant, require_loopback
from bench.worker_stats import sink_stats, wait_until_quiet
from devstack.processes import ReadinessTimeout
from devstack.python_services import SINK, worker
from devstack.raw_votes import RawVoteProducer, random_raw_votes
from devstack.workers import scale, stop_all
from sbp.settings import Settings, get_settings

PROFILES = Path(__file__).resolve().parent / "profiles"
CHUNK = 50_000
MAX_VOTES = 5_000_000


def produce_votes(
    settings: Settings, tenant: BenchTenant, n: int, seed: int, spread_s: int
) -> None:
    """N reproducible raw votes, encoded and produced in chunks to bound the memory used."""
    now = datetime.now(UTC)
    with RawVoteProducer(settings) as producer:
        for chunk, first in enumerate(range(0, n, CHUNK)):
            votes = random_raw_votes(
                tenant.tenant_id,
                tenant.building_id,
                tenant.zones,
                min(CHUNK, n - first),
                seed=seed + chunk,
                now=now,
                spread_s=spread_s,
            )
            for vote in votes:
                producer.produce_bytes(*producer.encode(vote))


@dataclass
class WorkerRun:
    started_to_ready_s: float | None = None
    started_to_first_emit_s: float | None = None
    started_to_done_s: float = 0.0
    stats: dict[str, int] = field(default_factory=dict)
    cpu_s: dict[str, float] = field(default_factory=dict)
    cpu_report: str = ""
    rss_line: str = ""
    rss_peak_mib: float = 0.0
    threads_s: dict[str, float] = field(default_factory=dict)


def _is_ready(client: httpx.Client, settings: Settings) -> bool:
    try:
        url = f"http://{settings.host}:{settings.worker_port(1)}/ready"
        return client.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _stats(client: httpx.Client, settings: Settings) -> dict[str, int]:
    url = f"http://{settings.host}:{settings.worker_port(1)}/stats"
    stats = client.get(url, timeout=5).json()
    return {k: v for k, v in stats.items() if isinstance(v, int) and not isinstance(v, bool)}


def _wait_for_pid(settings: Settings, limit_s: float = 30) -> int:
    deadline = time.monotonic() + limit_s
    while (pid := worker_pid(settings)) is None:
        if time.monotonic() > deadline:
            raise SystemExit("worker 1 did not start")
        time.sleep(0.05)
    return pid


def start_profilers(pid: int, seconds: int) -> list[subprocess.Popen[bytes]]:
    """Two py-spy samplers side by side: the flame graph, and raw stacks to rank the costs.

    `--nonblocking` reads the worker's memory without pausing it, so the run is
    not slowed beyond the samplers' own CPU (shown as `py-spy` in the CPU report).
    """
    PROFILES.mkdir(exist_ok=True)
    py_spy = Path(sys.executable).with_name("py-spy")
    common = [str(py_spy), "record", "--pid", str(pid), "--duration", str(seconds)]
    common += ["--rate", "100", "--nonblocking"]
    outputs = (("flamegraph", PROFILES / "worker.svg"), ("raw", PROFILES / "worker.txt"))
    return [
        subprocess.Popen(
            [*common, "--format", fmt, "-o", str(path)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for fmt, path in outputs
    ]


def time_worker(settings: Settings, n: int, args: argparse.Namespace) -> WorkerRun:
    run = WorkerRun()
    profilers: list[subprocess.Popen[bytes]] = []
    cpu_before = sample()
    started = time.perf_counter()
    scale(settings, 1, wait=False)
    pid = _wait_for_pid(settings)
    next_report, last_first, last_t = 5.0, 0, 0.0
    # One kept-alive client, polled twice a second: the poller's CPU is the worker's loss.
    with RssSampler(pid) as rss, httpx.Client() as client:
        while True:
            elapsed = time.perf_counter() - started
            if elapsed > args.timeout:
                raise SystemExit(f"worker not done after {args.timeout}s: {run.stats}")
            if worker(1).process(settings).pid() != pid:
                raise SystemExit("the worker exited during the run (see its log)")
            if run.started_to_ready_s is None and _is_ready(client, settings):
                run.started_to_ready_s = elapsed
            try:
                run.stats = _stats(client, settings)
            except httpx.HTTPError:
                time.sleep(0.2)  # its web server is not up yet
                continue
            first = run.stats.get("first", 0)
            if first and run.started_to_first_emit_s is None:
                run.started_to_first_emit_s = elapsed
            if args.profile and not profilers and first >= n // 20:
                profilers = start_profilers(pid, args.profile_s)
                print(f"  py-spy attached at t={elapsed:.1f}s for {args.profile_s}s")
            if first >= n:
                run.started_to_done_s = elapsed
                break
            if elapsed >= next_report:
                rate = (first - last_first) / max(1e-9, elapsed - last_t)
                print(f"  t={elapsed:6.1f}s  first {first:>8}  ({rate:,.0f} votes/s lately)")
                next_report, last_first, last_t = next_report + 5.0, first, elapsed
            time.sleep(0.5)
    cpu_after = sample()
    run.threads_s = thread_seconds(pid)  # the worker started in this run: whole lifetime
    run.cpu_s = group_seconds(cpu_before, cpu_after)
    run.cpu_report = report(cpu_before, cpu_after, run.started_to_done_s)
    run.rss_line, run.rss_peak_mib = rss.line("worker"), rss.peak_mib
    for profiler in profilers:
        profiler.wait(timeout=args.profile_s + 60)
    return run


def main(args: argparse.Namespace) -> None:
    settings = get_settings()
    require_loopback(settings)
    print("== worker alone: one vote-stage worker on a pre-filled votes.raw, and a bare loop ==")
    print(describe_machine())
    print(neighbours_line())
    if worker(1).process(settings).is_running():
        print(wait_until_quiet(settings, limit_s=300))
    tenant = fresh_tenant(settings, args.zones)
    stopped = stop_all(settings)
    sink_stopped = not args.keep_sink and SINK.down(settings)
    print(f"stopped workers {stopped}" + ("; stopped the PostgreSQL sink" if sink_stopped else ""))
    try:
        before = end_offsets(settings)
        t0 = time.perf_counter()
        produce_votes(settings, tenant, args.votes, args.seed, args.spread_s)
        produced_s = time.perf_counter() - t0
        span = span_between(before, end_offsets(settings))
        n = span_size(span)
        print(
            f"tenant {tenant.tenant_id} ({len(tenant.zones)} zones): produced {args.votes} raw "
            f"votes in {produced_s:.1f}s; span of votes.raw: {n} records over {len(span)} "
            "partitions"
        )
        if n != args.votes:
            print(f"warning: {n - args.votes} records in the span come from another producer")

        print(f"-- worker: 1 instance, {args.votes} votes --")
        run = time_worker(settings, args.votes, args)
    finally:
        if sink_stopped:
            try:
                SINK.up(settings)
            except ReadinessTimeout as exc:
                # Keep the worker's figures; the sink keeps retrying on its own.
                print(f"warning: the PostgreSQL sink did not come back: {str(exc)[:300]}")
        scale(settings, 1)  # whatever happened, one worker runs afterwards
    ready = run.started_to_ready_s or 0.0
    worker_rate = args.votes / run.started_to_done_s
    print(
        f"ready after {ready:.1f}s, first emit after {run.started_to_first_emit_s or 0:.1f}s, "
        f"all {args.votes} emitted after {run.started_to_done_s:.1f}s"
    )
    print(
        f"worker: {worker_rate:,.0f} votes/s from start "
        f"({args.votes / max(1e-9, run.started_to_done_s - ready):,.0f} votes/s from ready)"
    )
    print(f"worker /stats: {run.stats}")
    print(run.cpu_report)
    print(
        "worker threads: "
        + ", ".join(
            f"{kind} {s:.1f} cpu-s ({s / run.started_to_done_s:.2f} cores)"
            for kind, s in sorted(run.threads_s.items(), key=lambda kv: -kv[1])
        )
    )
    print(run.rss_line)
    if args.profile:
        print(f"flame graph: {PROFILES / 'worker.svg'}")
        print(summarize(PROFILES / "worker.txt", top=12))

    print("-- bare loop: consume, decode, migrate, dedup, encode, produce --")
    # The restarted sink stores the worker's output first; the bare loop gets a quiet machine.
    print(wait_until_quiet(settings, limit_s=900))
    print(neighbours_line())
    cpu_before = sample()
    with scratch_topic(settings) as topic:
        bare = run_bare_loop(settings, span, topic)
    print(
        f"bare loop: {bare.read} records ({bare.emitted} emitted, {bare.duplicates} duplicates, "
        f"{bare.invalid} invalid) in {bare.seconds:.2f}s: {bare.rate:,.0f} votes/s"
    )
    print(report(cpu_before, sample(), bare.seconds))
    print(
        f"ratio worker / bare: {worker_rate / bare.rate:.3f} from start, "
        f"{args.votes / max(1e-9, run.started_to_done_s - ready) / bare.rate:.3f} from ready "
        "(issue 6 aims at >= 0.3)"
    )
    try:
        print(f"sink /stats: {sink_stats(settings)}")
    except httpx.HTTPError:
        print("sink: not answering")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--votes", type=int, default=500_000, help="raw votes to pre-fill")
    parser.add_argument("--zones", type=int, default=200, help="zones seeded for the tenant")
    parser.add_argument(
        "--spread-s", type=int, default=30 * 60, help="clientTs up to this far back (s)"
    )
    parser.add_argument("--seed", type=int, default=500_000, help="random seed for the votes")
    parser.add_argument("--timeout", type=float, default=1800.0, help="give the worker up to (s)")
    parser.add_argument(
        "--keep-sink",
        action="store_true",
        help="leave the PostgreSQL sink running while the worker is timed (sharing the CPUs)",
    )
    parser.add_argument("--profile", action="store_true", help="py-spy the worker mid-run")
    parser.add_argument("--profile-s", type=int, default=30, help="seconds of py-spy sampling")
    args = parser.parse_args(argv)
    if not 1 <= args.votes <= MAX_VOTES:
        parser.error(f"--votes must be 1..{MAX_VOTES}")
    if not 1 <= args.spread_s <= 50 * 60:
        parser.error("--spread-s must be 1..3000 (inside the live windows)")
    return args


if __name__ == "__main__":
    main(parse_args())
