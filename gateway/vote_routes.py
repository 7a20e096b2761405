"""POST /api/v1/votes/batch and POST /api/v1/votes.

Whole-request answers follow the brief's precedence: 401, 413 body_too_large,
400, 422, 413 batch_too_large, 429, 503; otherwise 200 with one result per item
(the single-vote endpoint maps its one result to 202/200/4xx).
"""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import Response

from admin.tenant_settings import DEFAULT_SETTINGS, TenantSettings
from gateway.batch_request import (
    MAX_BODY_BYTES,
    MAX_SINGLE_BODY_BYTES,
    RequestRejected,
    parse_batch,
    parse_single,
    single_vote_error,
    single_vote_status,
)
from gateway.http_errors import authenticate, error_response, read_capped, tenant_zones
from gateway.rate_budget import RateBudget
from gateway.request_tracing import describe_votes, traced
from gateway.responses import OrjsonResponse
from gateway.vote_ingest import ingest
from gateway.vote_validation import counts
from identity.principal import Principal
from identity.rbac import Action
from streams.config_view import ConfigView


def _tenant_settings(request: Request, principal: Principal) -> TenantSettings:
    config: ConfigView | None = getattr(request.app.state, "config", None)
    return DEFAULT_SETTINGS if config is None else config.settings_of(principal.tenant_id)


def _check_budget_and_broker(request: Request, principal: Principal) -> None:
    budget: RateBudget = request.app.state.rate_budget
    tenant = _tenant_settings(request, principal)
    wait = budget.take(
        f"{principal.tenant_id}|{principal.user_id}",
        time.monotonic(),
        capacity=tenant.rate_capacity,
        refill_per_s=tenant.rate_refill_per_s,
    )
    if wait > 0:
        raise RequestRejected(
            429,
            "rate_limited",
            "request budget exhausted; retry later",
            retry_after_s=int(budget.retry_after_header(wait)),
        )
    if not request.app.state.ingest.publisher.connected:
        raise RequestRejected(
            503, "broker_unavailable", "no connection to Kafka; retry later", retry_after_s=5
        )


@traced("POST", "/api/v1/votes/batch")
async def vote_batch(request: Request) -> Response:
    try:
        principal = authenticate(request, Action.VOTE_SUBMIT)
        items = parse_batch(await read_capped(request, MAX_BODY_BYTES))
        _check_budget_and_broker(request, principal)
        zones = await tenant_zones(request, principal)
    except RequestRejected as rejected:
        return error_response(rejected)
    policy = _tenant_settings(request, principal).skew_policy()
    outcomes = await ingest(request.app.state.ingest, principal, zones, items, policy)
    describe_votes(principal.tenant_id, outcomes)
    return OrjsonResponse({"results": [o.to_json() for o in outcomes], "counts": counts(outcomes)})


@traced("POST", "/api/v1/votes")
async def vote_single(request: Request) -> Response:
    try:
        principal = authenticate(request, Action.VOTE_SUBMIT)
        item = parse_single(await read_capped(request, MAX_SINGLE_BODY_BYTES))
        _check_budget_and_broker(request, principal)
        zones = await tenant_zones(request, principal)
    except RequestRejected as rejected:
        return error_response(rejected)
    policy = _tenant_settings(request, principal).skew_policy()
    (outcome,) = await ingest(request.app.state.ingest, principal, zones, [item], policy)
    describe_votes(principal.tenant_id, [outcome])
    status = single_vote_status(outcome)
    if status >= 400:
        return error_response(single_vote_error(outcome))
    return OrjsonResponse(outcome.to_json(), status_code=status)
