"""Integration fixtures: the real local stack, brought up once per test session.

`sbp dev up` is idempotent, so a stack a developer already runs is reused as is.
Nothing here skips: a service that cannot start fails the session, in CI and out.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devstack import stack as devstack
from sbp.settings import Settings, get_settings


@pytest.fixture(scope="session")
def stack() -> Iterator[Settings]:
    settings = get_settings()
    devstack.up(settings, log=lambda _line: None)
    yield settings
