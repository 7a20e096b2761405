"""Top costs of a py-spy profile, from its raw (collapsed-stack) output.

A flame graph shows where the time goes but not as a table that can be
pasted into a report. py-spy's `--format raw` writes one line per distinct
stack, `frame;frame;…;leaf count`, outermost first, each frame written
`function (file:line)`. From it this module computes, per function:

- **self**: samples whose innermost Python frame is the function (time spent in
  its own code, including C extensions it calls such as fastavro or
  librdkafka, which have no Python frame of their own);
- **total**: samples with the function anywhere on the stack (counted once per
  stack even when it recurses);

and a split of self time by package (faust, aiokafka, the project's modules, …).
Percentages are of all samples, which exclude idle time (py-spy drops samples of
a thread waiting in a system call unless `--idle` is given).

Run: `.venv/bin/python -m bench.profile_summary bench/profiles/worker.txt [--top 15]`
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")
# First match wins, on py-spy's shortened paths (`faust/streams.py`, `asyncio/events.py`).
_PACKAGES = (
    ("faust", "faust/"),
    ("mode", "mode/"),
    ("aiokafka", "aiokafka/"),
    ("kafka (aiokafka's protocol layer)", "kafka/"),
    ("confluent_kafka", "confluent_kafka/"),
    ("fastavro", "fastavro/"),
    ("redis", "redis/"),
    ("asyncio", "asyncio/"),
    ("the project: streams/", "streams/"),
    ("the project: schemas/", "schemas/"),
    ("the project: sinks/", "sinks/"),
    ("the project: gateway/", "gateway/"),
)


# The vote-stage worker's areas of work, by a function on the stack; first match wins, so
# the stage's own steps come before the stage as a whole.
_AREAS = (
    ("stage: decode + migrate (_item)", "VoteStage._item"),
    ("stage: plan the batch (dedup lookups, buckets)", "plan_batch"),
    ("stage: produce emits + state (_apply)", "VoteStage._apply"),
    ("stage: await deliveries, record progress", "Deliveries.confirm"),
    ("stage: rest of the batch (cursors, grouping)", "VoteStage.handle"),
    ("live publishing (windows, Redis)", "LivePublisher.tick"),
    ("expiry sweep", "StateSweeper.tick"),
    ("faust: fetch and buffer records", "Fetcher._fetcher"),
    ("faust: fetch and buffer records", "Consumer._drain_messages"),
    ("faust: stream iteration, take_events, acks", "Stream._c_aiter"),
    ("faust: stream iteration, take_events, acks", "Stream.take_events"),
    ("faust: stream iteration, take_events, acks", "Agent._execute_actor"),
    ("faust: commits", "Consumer.commit"),
)


@dataclass(frozen=True)
class Frame:
    function: str
    file: str

    def __str__(self) -> str:
        return f"{self.function} ({self.file})"


def parse_frame(text: str) -> Frame:
    """`function (file:line)` → Frame without the line, so a function's lines add up."""
    match = _FRAME.match(text.strip())
    if match is None:
        return Frame(text.strip(), "?")
    return Frame(match["func"], _short_path(match["file"]))


def _short_path(path: str) -> str:
    for marker in ("site-packages/", "/lib/python3.11/", "/work/main/"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path


def parse_raw(text: str) -> list[tuple[list[Frame], int]]:
    """Stacks (outermost first) and their sample counts from py-spy's raw output."""
    stacks = []
    for line in text.splitlines():
        stack, _, count = line.rstrip().rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [parse_frame(f) for f in stack.split(";")]
        # py-spy prefixes the thread ("process 123:\"…\"" / "thread (0x…)") when asked to.
        frames = [f for f in frames if not f.function.startswith(("process ", "thread "))]
        stacks.append((frames, int(count)))
    return stacks


@dataclass(frozen=True)
class Costs:
    samples: int
    self_samples: Counter[Frame]
    total_samples: Counter[Frame]
    by_package: Counter[str]
    by_area: Counter[str]


def package_of(frame: Frame) -> str:
    for name, prefix in _PACKAGES:
        if frame.file.startswith(prefix):
            return name
    return "other: " + frame.file.split("/", 1)[0]


def area_of(frames: list[Frame]) -> str:
    names = {f.function for f in frames}
    for label, function in _AREAS:
        if function in names:
            return label
    return "event loop, timers and the rest"


def costs(stacks: list[tuple[list[Frame], int]]) -> Costs:
    self_samples: Counter[Frame] = Counter()
    total_samples: Counter[Frame] = Counter()
    by_package: Counter[str] = Counter()
    by_area: Counter[str] = Counter()
    samples = 0
    for frames, count in stacks:
        if not frames:
            continue
        samples += count
        self_samples[frames[-1]] += count
        by_package[package_of(frames[-1])] += count
        by_area[area_of(frames)] += count
        for frame in set(frames):
            total_samples[frame] += count
    return Costs(samples, self_samples, total_samples, by_package, by_area)


def render(c: Costs, top: int) -> str:
    def pct(n: int) -> str:
        return f"{100 * n / c.samples:5.1f}%"

    lines = [f"{c.samples} samples (idle excluded)", "", f"top {top} by self time:"]
    lines += [f"  {pct(n)}  {frame}" for frame, n in c.self_samples.most_common(top)]
    lines += ["", "by area of the vote-stage worker (whole stacks):"]
    lines += [f"  {pct(n)}  {name}" for name, n in c.by_area.most_common()]
    lines += ["", "self time by package:"]
    lines += [f"  {pct(n)}  {name}" for name, n in c.by_package.most_common()]
    lines += ["", f"top {top} by total time (callees included):"]
    lines += [f"  {pct(n)}  {frame}" for frame, n in c.total_samples.most_common(top)]
    return "\n".join(lines)


def main_thread_only(stacks: list[tuple[list[Frame], int]]) -> list[tuple[list[Frame], int]]:
    """Drop stacks of threads started with `threading` (their outermost frame is
    Thread._bootstrap): what is left is the main thread, the event loop."""
    return [(f, n) for f, n in stacks if not (f and f[0].function == "Thread._bootstrap")]


def summarize(path: Path, top: int = 15, *, main_only: bool = True) -> str:
    stacks = parse_raw(path.read_text())
    if not main_only:
        return render(costs(stacks), top)
    main = main_thread_only(stacks)
    others = sum(n for _f, n in stacks) - sum(n for _f, n in main)
    return (
        f"main thread only ({others} samples of other threads left out; py-spy counts a "
        "thread blocked inside a C call, such as librdkafka's poll, as busy)\n"
        + render(costs(main), top)
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("raw", type=Path, help="py-spy record --format raw output")
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--all-threads", action="store_true", help="keep every thread's stacks")
    args = parser.parse_args(argv)
    print(summarize(args.raw, args.top, main_only=not args.all_threads))


if __name__ == "__main__":
    main()
