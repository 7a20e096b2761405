"""Debian's `prometheus` package, as the tests find it: `promtool` and the `prometheus` server.

scripts/setup installs the package. In CI (`CI=true`) a missing binary fails the test
that needs it, so a machine without it cannot pass unnoticed; elsewhere the test is
skipped with the command that installs it.
"""

from __future__ import annotations

import os
import shutil

import pytest


def binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        message = f"{name} is missing: apt-get install prometheus (scripts/setup does)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path
