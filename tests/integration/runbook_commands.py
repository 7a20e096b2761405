"""The shell commands a runbook gives, as the tests that run them read them: every line
of a ```sh block, without its trailing comment (two spaces, then `#`).

A trailing comment may end with `⇒ <pattern>`: what the command shows when it did
its job, a regular expression searched in its output (stdout and stderr together).
It tells the operator what to expect, and the runbook test asserts it."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from sbp.settings import REPO_ROOT


def shell_lines(markdown: str) -> list[str]:
    lines = []
    for block in re.findall(r"```sh\n(.*?)```", markdown, flags=re.S):
        for line in block.splitlines():
            command = line.split("  #", 1)[0].strip()
            if command:
                lines.append(command)
    return lines


EXPECT = "⇒ "


def expected_effects(markdown: str) -> list[tuple[str, str | None]]:
    """Each command with the pattern its comment gives after `⇒`, or None."""
    found: list[tuple[str, str | None]] = []
    for block in re.findall(r"```sh\n(.*?)```", markdown, flags=re.S):
        for line in block.splitlines():
            command, _, comment = line.partition("  #")
            if not command.strip():
                continue
            _, marker, pattern = comment.partition(EXPECT)
            found.append((command.strip(), pattern.strip() if marker else None))
    return found


def section_lines(path: Path, number: int) -> list[str]:
    """The commands of section `## <number>. …`, in order; AssertionError if it has none."""
    sections = re.split(r"^## ", path.read_text(), flags=re.M)
    [section] = [s for s in sections if s.startswith(f"{number}. ")]
    lines = shell_lines(section)
    assert lines, f"{path.name} section {number} names no command"
    return lines


def run_line(line: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """One runbook line through bash, from the repository root, as an operator runs it."""
    return subprocess.run(
        ["bash", "-c", line],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
