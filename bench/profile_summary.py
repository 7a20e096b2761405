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


def package_of(frame: Frame) -> str:
    for name, prefix in _PACKAGES:
        if frame.file.startswith(prefix):
            return name
    return "other: " + frame.file.split("/", 1)[0]


def costs(stacks: list[tuple[list[Frame], int]]) -> Costs:
    self_samples: Counter[Frame] = Counter()
    total_samples: Counter[Frame] = Counter()
    by_package: Counter[str] = Counter()
    samples = 0
    for frames, count in stacks:
        if not frames:
            continue
        samples += count
        self_samples[frames[-1]] += count
        by_package[package_of(frames[-1])] += count
        for frame in set(frames):
            total_samples[frame] += count
    return Costs(samples, self_samples, total_samples, by_package)


def render(c: Costs, top: int) -> str:
    def pct(n: int) -> str:
        return f"{100 * n / c.samples:5.1f}%"

    lines = [f"{c.samples} samples (idle excluded)", "", f"top {top} by self time:"]
    lines += [f"  {pct(n)}  {frame}" for frame, n in c.self_samples.most_common(top)]
    lines += ["", "self time by package:"]
    lines += [f"  {pct(n)}  {name}" for name, n in c.by_package.most_common()]
    lines += ["", f"top {top} by total time (callees included):"]
    lines += [f"  {pct(n)}  {frame}" for frame, n in c.total_samples.most_common(top)]
    return "\n".join(lines)


def summarize(path: Path, top: int = 15) -> str:
    return render(costs(parse_raw(path.read_text())), top)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("raw", type=Path, help="py-spy record --format raw output")
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args(argv)
    print(summarize(args.raw, args.top))


if __name__ == "__main__":
    main()
