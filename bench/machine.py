"""Describes the machine a benchmark ran on, printed with every figure.

Figures from a 2-core VM and a 32-core workstation are not comparable; the
description makes a pasted result self-explaining. Parsing is kept apart from
reading /proc so it can be checked against any cpuinfo text.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def parse_cpuinfo(text: str) -> dict[str, str]:
    """Model name, logical CPUs, physical cores and whether it runs under a hypervisor."""
    model = "unknown"
    logical = 0
    cores: set[tuple[str, str]] = set()
    physical_id = core_id = ""
    hypervisor = False
    for line in text.splitlines():
        name, _, value = (part.strip() for part in line.partition(":"))
        if name == "processor":
            logical += 1
        elif name == "model name" and model == "unknown":
            model = value
        elif name == "physical id":
            physical_id = value
        elif name == "core id":
            core_id = value
            cores.add((physical_id, core_id))
        elif name == "flags" and "hypervisor" in value.split():
            hypervisor = True
    return {
        "model": model,
        "logical": str(logical or os.cpu_count() or 0),
        "physical": str(len(cores)) if cores else "unknown",
        "virtualised": "yes" if hypervisor else "no",
    }


def parse_meminfo_gib(text: str) -> float:
    for line in text.splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / (1024 * 1024)
    return 0.0


def describe_machine() -> str:
    """A few lines naming CPU, cores, memory, Python and kernel, plus the current load."""
    cpu = parse_cpuinfo(_read("/proc/cpuinfo"))
    mem_gib = parse_meminfo_gib(_read("/proc/meminfo"))
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    uname = platform.uname()
    return "\n".join(
        [
            f"cpu:     {cpu['model']}, {cpu['logical']} logical CPUs "
            f"({cpu['physical']} cores), virtualised: {cpu['virtualised']}",
            f"memory:  {mem_gib:.1f} GiB",
            f"python:  {platform.python_implementation()} {platform.python_version()}",
            f"kernel:  {uname.system} {uname.release} {uname.machine}",
            f"load:    {load} (1/5/15 min, when the run started)",
        ]
    )


if __name__ == "__main__":
    print(describe_machine())
