"""Where the CPU went during a timed run: seconds per stack process group, from /proc.

Every service shares the machine with the benchmark itself, so a throughput
figure means little without knowing who was busy. Processes are grouped by
their command line; anything unrecognised, or started outside this checkout
(other people's test runs on a shared machine, including a second stack), lands
in `other`, which is how noise shows up.
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from sbp.settings import REPO_ROOT, get_settings

_TICKS = os.sysconf("SC_CLK_TCK")
_ROOTS = (REPO_ROOT.resolve(), get_settings().state_dir.resolve())
# First match wins; the patterns are the stack's own command lines (devstack/).
_GROUPS = (
    ("py-spy", "py-spy"),
    ("pg-sink", "sinks.timescale.sink_worker"),
    ("gateway", "gateway.app"),
    ("worker", "streams.worker"),
    ("registry", "registry.app"),
    ("kafka", "kafka.Kafka"),
    ("postgres", "postgres"),
    ("redis", "redis-server"),
)


def _ours(pid: int) -> bool:
    """Started from this checkout: another checkout's stack (a CI run on other ports) is
    `other`, even though its command lines look like ours."""
    try:
        cwd = Path(f"/proc/{pid}/cwd").resolve()
    except OSError:
        return False
    return any(cwd.is_relative_to(root) for root in _ROOTS)


def _group(pid: int, cmdline: str) -> str:
    if pid == os.getpid():
        return "bench"
    if not _ours(pid):
        return "other"
    for name, pattern in _GROUPS:
        if pattern in cmdline:
            return name
    return "other"


def _process_seconds() -> dict[int, tuple[str, float]]:
    """pid → (group, user+system CPU seconds) for every process readable now."""
    seen: dict[int, tuple[str, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # the process ended while we looked
        # Fields after the parenthesised command name; utime and stime are 14th and 15th.
        fields = stat.rpartition(")")[2].split()
        seconds = (int(fields[11]) + int(fields[12])) / _TICKS
        seen[int(entry.name)] = (_group(int(entry.name), cmdline), seconds)
    return seen


def _machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies over all CPUs since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


@dataclass(frozen=True)
class CpuSample:
    processes: dict[int, tuple[str, float]]
    machine: tuple[int, int]


def sample() -> CpuSample:
    return CpuSample(_process_seconds(), _machine_ticks())


def group_seconds(start: CpuSample, end: CpuSample) -> dict[str, float]:
    """CPU seconds per group between two samples (a process started meanwhile counts whole)."""
    used: defaultdict[str, float] = defaultdict(float)
    for pid, (group, seconds) in end.processes.items():
        before = start.processes.get(pid)
        used[group] += seconds - (before[1] if before and before[0] == group else 0.0)
    return dict(used)


def report(start: CpuSample, end: CpuSample, wall_s: float) -> str:
    """CPU seconds per group between two samples, as cores used on average over the wall time."""
    used = group_seconds(start, end)
    busy = end.machine[0] - start.machine[0]
    total = max(1, end.machine[1] - start.machine[1])
    lines = [f"machine busy {100 * busy / total:.0f}% of all CPUs over {wall_s:.1f}s"]
    for group, seconds in sorted(used.items(), key=lambda kv: -kv[1]):
        if seconds >= 0.05:
            lines.append(f"  {group:<9} {seconds:7.1f} cpu-s  ({seconds / wall_s:4.2f} cores)")
    return "\n".join(lines)


def neighbours_line() -> str:
    """Test runs sharing the machine, named before a run: their CPU shows up as `other`."""
    runs = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(part.endswith(b"pytest") for part in argv[:2]):
            runs.append(b" ".join(argv).decode(errors="replace").strip()[:120])
    if not runs:
        return "neighbours: no test run on the machine"
    return "WARNING: test runs share the machine, figures will be noisy:\n  " + "\n  ".join(runs)


def top_snapshot(lines: int = 15) -> str:
    """The first lines of `top -b -n1`, for a glimpse of the machine mid-run."""
    import subprocess

    try:
        out = subprocess.run(
            ["top", "-b", "-n1", "-w", "160"], capture_output=True, text=True, timeout=10
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        return f"(top unavailable: {exc})"
    return "\n".join(out.splitlines()[:lines])


def thread_seconds(pid: int) -> dict[str, float]:
    """CPU seconds a process's threads used since they started, by kind of thread.

    The main thread runs the event loop; other Python threads (a producer's poll
    loop, faust's helpers) compete with it for the GIL; librdkafka's (`rdk:`)
    and RocksDB's threads run native code without it.
    """
    used: defaultdict[str, float] = defaultdict(float)
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            comm = (task / "comm").read_text().strip()
            fields = (task / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue  # the thread ended while we looked
        seconds = (int(fields[11]) + int(fields[12])) / _TICKS
        if int(task.name) == pid:
            kind = "main thread (event loop)"
        elif comm.startswith("rdk:"):
            kind = "librdkafka threads"
        elif comm.startswith("rocksdb:"):
            kind = "RocksDB threads"
        else:
            kind = "other Python threads"
        used[kind] += seconds
    return dict(used)
