"""Resident memory (RSS) of the stack's processes, sampled from /proc during a run.

The issue's memory limits are peaks under load, so a background thread samples
the process every 200 ms and keeps the highest value seen.
"""

from __future__ import annotations

import threading
from pathlib import Path

from devstack.python_services import worker
from sbp.settings import Settings


def find_gateway_pid(settings: Settings) -> int | None:
    """The uvicorn process serving `settings.gateway_port` (never a profiler wrapping it)."""
    wanted = (b"gateway.app:create_app", f"--port\0{settings.gateway_port}\0".encode())
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            comm = (entry / "comm").read_text().strip()
        except OSError:
            continue
        if comm != "py-spy" and all(w in cmdline for w in wanted):
            return int(entry.name)
    return None


def worker_pid(settings: Settings, instance: int = 1) -> int | None:
    """The pid of vote-stage worker `instance`, from the dev stack's pid file."""
    return worker(instance).process(settings).pid()


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class RssSampler:
    """The peak RSS of one process, sampled every `every_s` from a background thread."""

    def __init__(self, pid: int, every_s: float = 0.2) -> None:
        self.pid = pid
        self.start_mib = rss_mib(pid)
        self.peak_mib = self.end_mib = self.start_mib
        self._every = every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()
        try:
            self.end_mib = rss_mib(self.pid)
        except OSError:
            return  # the process is gone; the peak stands
        self.peak_mib = max(self.peak_mib, self.end_mib)

    def _loop(self) -> None:
        while not self._stop.wait(self._every):
            try:
                self.peak_mib = max(self.peak_mib, rss_mib(self.pid))
            except OSError:
                return  # the process went away; the run reports the failure itself

    def line(self, name: str) -> str:
        return (
            f"{name} RSS MiB: {self.start_mib:.0f} before, peak {self.peak_mib:.0f}, "
            f"{self.end_mib:.0f} after"
        )
