"""The runbooks' commands really run: each shell line in a runbook is executed against
the live stack, except those that would tear it down, whose CLI is checked instead."""

from __future__ import annotations

import re
import shlex
import subprocess
import time
from pathlib import Path

import pytest

from devstack import stack as devstack
from sbp.settings import REPO_ROOT, Settings

RUNBOOKS = sorted((REPO_ROOT / "runbooks").glob("*.md"))
# Commands that would stop the stack the other tests use are checked with --help
# instead of being run.
DISRUPTIVE = ("sbp dev down",)


def shell_lines(path: Path) -> list[str]:
    lines = []
    for block in re.findall(r"```sh\n(.*?)```", path.read_text(), flags=re.S):
        for line in block.splitlines():
            command = line.split("  #", 1)[0].strip()
            if command:
                lines.append(command)
    return lines


CASES = [(p.name, line) for p in RUNBOOKS for line in shell_lines(p)]


def test_every_runbook_has_commands() -> None:
    assert RUNBOOKS
    for path in RUNBOOKS:
        assert shell_lines(path), f"{path.name} names no command"


@pytest.fixture(scope="module")
def settled(stack: Settings) -> Settings:
    """The drills before this module restart brokers and move partitions; a worker
    can still be rejoining its group (static membership waits out the session) when
    they end. A runbook is run on a settled stack: every service ready twice in a row."""
    deadline = time.monotonic() + 240
    streak = 0
    while streak < 2:
        assert time.monotonic() < deadline, devstack.status(stack)
        streak = streak + 1 if all(s.ready for s in devstack.status(stack)) else 0
        time.sleep(5)
    return stack


@pytest.mark.parametrize(("runbook", "line"), CASES, ids=[f"{r}:{c}" for r, c in CASES])
def test_runbook_command_runs(settled: Settings, runbook: str, line: str) -> None:
    if any(marker in line for marker in DISRUPTIVE):
        argv = [*shlex.split(line), "--help"]
    else:
        argv = ["bash", "-c", line]
    result = subprocess.run(
        argv, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, f"{runbook}: {line}\n{result.stdout}\n{result.stderr}"
