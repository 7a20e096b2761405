"""Fuzzing the running gateway from its own /openapi.json (schemathesis): the auth,
vote and admin routes, with generated valid and invalid bodies. No answer is a 5xx,
every status is one the document declares, and every body matches its schema.

Each route is called with the credential it is meant for, so the fuzzing reaches
past authentication: occupants vote, fms ask for tickets, a tenant admin manages
its own tenant, a platform admin creates tenants.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from gateway.openapi import document
from tests.integration.conftest import Tenant

# The SSE stream never ends by itself; tests/integration/test_sse*.py cover it.
SCHEMA = schemathesis.openapi.from_dict(document()).exclude(path_regex=r".*/stream$")
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def _headers(tenant: Tenant, path: str) -> dict[str, str]:
    if path.startswith("/api/v1/admin/tenants"):
        return tenant.headers(role="platform_admin", user="platform-1")
    if path.startswith("/api/v1/admin/"):
        return tenant.headers(role="tenant_admin", user="admin-1")
    if path == "/api/v1/auth/sse-ticket":
        return tenant.headers(role="fm", user="fm-1")
    return tenant.headers()


@pytest.fixture
def tenant_case(tenant: Tenant) -> Tenant:
    return tenant


@SCHEMA.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_no_server_error_and_every_answer_as_documented(case: Any, tenant_case: Tenant) -> None:
    case.call_and_validate(
        base_url=tenant_case.gateway,
        headers=_headers(tenant_case, case.path),
        checks=CHECKS,
        timeout=30,
    )
