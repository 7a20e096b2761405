"""Background processes that the dev stack owns, tracked by pid files.

Only a process whose pid file we wrote, and whose command line still carries the
marker we started it with, is ever signalled: `sbp dev down` never touches a
system PostgreSQL or Redis that happens to listen nearby.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

# Children started by this process: kept so they are reaped (no zombies) and
# not garbage-collected while running, which Python reports as a leak.
_children: dict[int, subprocess.Popen[bytes]] = {}


class ReadinessTimeout(RuntimeError):
    """A service did not pass its readiness check in time; the message says where to look."""


@dataclass(frozen=True)
class ManagedProcess:
    name: str
    run_dir: Path
    # A string that must appear in /proc/<pid>/cmdline for the pid to count as ours,
    # so a recycled pid is never mistaken for the service.
    marker: str

    @property
    def pid_file(self) -> Path:
        return self.run_dir / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.run_dir / f"{self.name}.log"

    def pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            return None
        if self.marker.encode() not in cmdline:
            return None
        if _is_zombie(pid):
            return None
        return pid

    def is_running(self) -> bool:
        return self.pid() is not None

    def start(
        self,
        argv: Sequence[str],
        *,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        user: str | None = None,
    ) -> int:
        """Start detached (own session) unless already running; returns the pid."""
        existing = self.pid()
        if existing is not None:
            return existing
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_file, "ab") as log:
            proc = subprocess.Popen(
                list(argv),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=cwd,
                # Drop root's groups too: with group root kept, a root-owned
                # folder's group bits (often none) would apply instead of "other".
                user=user,
                group=user,
                extra_groups=[] if user is not None else None,
                start_new_session=True,
            )
        _children[proc.pid] = proc
        self.pid_file.write_text(f"{proc.pid}\n")
        return proc.pid

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 30.0) -> bool:
        """Signal our process and wait for it to exit; SIGKILL after the timeout."""
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        os.kill(pid, sig)
        if not _wait_exit(pid, timeout):
            os.kill(pid, signal.SIGKILL)
            _wait_exit(pid, 10.0)
        self.pid_file.unlink(missing_ok=True)
        return True

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log yet)"


def wait_until_ready(
    proc: ManagedProcess,
    check: Callable[[], bool],
    timeout: float,
) -> None:
    """Poll `check` until it passes; fail fast if the process died meanwhile.

    Liveness here is by pid alone: a service may rewrite its command line while
    starting (redis does), so the marker is only for recognising a pid file.
    """
    deadline = time.monotonic() + timeout
    interval = 0.05
    try:
        pid = int(proc.pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        pid = -1
    while True:
        if check():
            return
        if pid < 0 or _is_zombie(pid):
            raise ReadinessTimeout(
                f"{proc.name} exited before it became ready; log {proc.log_file}:\n"
                f"{proc.log_tail()}"
            )
        if time.monotonic() > deadline:
            raise ReadinessTimeout(
                f"{proc.name} not ready after {timeout:.0f}s; log {proc.log_file}:\n"
                f"{proc.log_tail()}"
            )
        # A short back-off between readiness probes, not a fixed sleep.
        time.sleep(interval)
        interval = min(interval * 2, 0.5)


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def _wait_exit(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    child = _children.get(pid)
    while time.monotonic() < deadline:
        if child is not None:
            if child.poll() is not None:
                del _children[pid]
                return True
        elif not Path(f"/proc/{pid}").exists() or _is_zombie(pid):
            return True
        time.sleep(0.05)
    return False


def grant_traverse(path: Path) -> None:
    """Let a service user (postgres, redis) reach a dir that lives under root-owned folders.

    Only the search (x) bit is added, and only where it is missing, so nothing
    becomes listable or readable that was not before.
    """
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            os.chmod(parent, mode | 0o001)
