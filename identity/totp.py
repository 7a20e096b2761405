"""TOTP second factor (RFC 6238, 30-second steps, 6 digits), single-use. Pure.

A code is accepted for the current step or one step either side (clock drift of a
phone), and only if its step is later than the last step accepted for the account.
The store records that step with a conditional update, so two logins racing with
the same code cannot both pass.
"""

from __future__ import annotations

import hmac
from datetime import datetime

import pyotp

STEP_S = 30
DIGITS = 6
DRIFT_STEPS = 1
# Roles that must present a code at login (brief §4).
REQUIRED_FOR = frozenset({"fm", "tenant_admin", "platform_admin", "operator"})


def new_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(secret: str, account: str, issuer: str) -> str:
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_S).provisioning_uri(
        name=account, issuer_name=issuer
    )


def code_at(secret: str, when: datetime) -> str:
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_S).at(when)


def matching_step(secret: str, code: str, now: datetime, last_step: int) -> int | None:
    """The step `code` belongs to, if it is valid now and later than `last_step`."""
    if len(code) != DIGITS or not code.isascii() or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_S)
    current = int(now.timestamp()) // STEP_S
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if step <= last_step:
            continue
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None
