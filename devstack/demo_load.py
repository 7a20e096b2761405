"""A small, bounded demo load: occupants of the demo tenant voting through the gateway.

Every `interval` seconds it posts one batch of a few votes from random demo
users, for at most `duration` seconds, then exits. It only talks to the local
gateway on loopback.
"""

from __future__ import annotations

import random
import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx

from devstack.seed import DEMO_BUILDING, DEMO_TENANT, DEMO_ZONES
from identity.dev_cli import mint_dev_token
from sbp.settings import Settings, get_settings

KINDS = ("thermal", "air", "noise", "light")


def _vote(now: datetime) -> dict[str, object]:
    kind = random.choice(KINDS)
    _floor, zone, _name = random.choice(DEMO_ZONES)
    vote: dict[str, object] = {
        "voteUuid": str(uuid.uuid4()),
        "buildingId": DEMO_BUILDING,
        "zoneId": zone,
        "kind": kind,
        "value": random.randint(-3, 3) if kind == "thermal" else random.randint(1, 5),
        "clientTs": (now - timedelta(seconds=random.randint(0, 90))).isoformat(),
        "schemaVersion": 2,
    }
    if kind == "thermal":
        vote["preference"] = random.choice(("warmer", "no_change", "cooler"))
    return vote


def run(settings: Settings, duration_s: float, interval_s: float, users: int = 25) -> int:
    tokens = [
        mint_dev_token(
            settings,
            DEMO_TENANT,
            f"occupant-{i}",
            "occupant",
            [DEMO_BUILDING],
            ttl_s=int(duration_s) + 60,
        )
        for i in range(users)
    ]
    url = f"http://{settings.host}:{settings.gateway_port}/api/v1/votes/batch"
    sent = 0
    deadline = time.monotonic() + duration_s
    with httpx.Client(timeout=15) as client:
        while time.monotonic() < deadline:
            now = datetime.now(UTC)
            items = [_vote(now) for _ in range(random.randint(1, 5))]
            token = random.choice(tokens)
            try:
                response = client.post(
                    url, json={"items": items}, headers={"Authorization": f"Bearer {token}"}
                )
                if response.status_code == 200:
                    sent += response.json()["counts"]["accepted"]
            except httpx.HTTPError as exc:
                print(f"demo load: {exc}", flush=True)
            time.sleep(interval_s)
    return sent


if __name__ == "__main__":
    import sys

    duration = float(sys.argv[1]) if len(sys.argv) > 1 else 600.0
    accepted = run(get_settings(), duration_s=duration, interval_s=1.0)
    print(f"demo load finished: {accepted} votes accepted", flush=True)
