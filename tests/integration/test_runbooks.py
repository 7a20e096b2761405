"""The runbooks' commands really run and do what they say: each shell line in a runbook
is executed against the live stack and its output must show the effect its comment
promises after `⇒` (tests/integration/runbook_commands.py), except the lines that would
tear the stack down, whose CLI is checked instead, and those of a runbook that a drill
runs in order under load, asserting the effects between them (`RUN_BY_DRILLS`)."""

from __future__ import annotations

import re
import shlex
import subprocess
import time
from pathlib import Path

import pytest

from devstack import stack as devstack
from sbp.settings import REPO_ROOT, Settings
from tests.integration import runbook_commands

RUNBOOKS = sorted((REPO_ROOT / "runbooks").glob("*.md"))
# Commands that would stop the stack the other tests use are checked with --help
# instead of being run.
DISRUPTIVE = ("sbp dev down",)
# Runbooks whose commands only make sense in order, during an incident a drill stages;
# the drill runs every one of their lines and asserts the effects between them.
RUN_BY_DRILLS = {"postgres-failover.md": "tests/integration/test_postgres_failover.py"}


def shell_lines(path: Path) -> list[str]:
    return runbook_commands.shell_lines(path.read_text())


CASES = [
    (p.name, line, effect)
    for p in RUNBOOKS
    if p.name not in RUN_BY_DRILLS
    for line, effect in runbook_commands.expected_effects(p.read_text())
]


def test_every_runbook_has_commands() -> None:
    assert RUNBOOKS
    for path in RUNBOOKS:
        assert shell_lines(path), f"{path.name} names no command"


def test_every_command_says_what_it_shows() -> None:
    missing = [
        f"{runbook}: {line}"
        for runbook, line, effect in CASES
        if effect is None and not any(marker in line for marker in DISRUPTIVE)
    ]
    assert not missing, "commands without `⇒ <what it shows>`:\n" + "\n".join(missing)


def test_the_drills_run_their_runbooks() -> None:
    for runbook, drill in RUN_BY_DRILLS.items():
        assert runbook in (REPO_ROOT / drill).read_text(), f"{drill} does not run {runbook}"


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


@pytest.mark.parametrize(
    ("runbook", "line", "effect"), CASES, ids=[f"{r}:{c}" for r, c, _e in CASES]
)
def test_runbook_command_runs(
    settled: Settings, runbook: str, line: str, effect: str | None
) -> None:
    disruptive = any(marker in line for marker in DISRUPTIVE)
    argv = [*shlex.split(line), "--help"] if disruptive else ["bash", "-c", line]
    result = subprocess.run(
        argv, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600, check=False
    )
    shown = f"{result.stdout}\n{result.stderr}"
    assert result.returncode == 0, f"{runbook}: {line}\n{shown}"
    if effect is not None and not disruptive:
        assert re.search(effect, shown), f"{runbook}: {line}\nexpected /{effect}/ in:\n{shown}"
