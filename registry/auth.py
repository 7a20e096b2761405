"""HTTP basic auth for the registry's writes (register, config changes, deletes).

Reads stay open, as a Confluent registry without RBAC is: serializers and
deserializers everywhere need them. One shared credential from the settings,
because Confluent clients speak basic auth (`basic.auth.user.info`); mapping it
onto the RBAC SDK in `identity/` is still to do. The check is constant-time in
both user and password so a timing probe learns neither.
"""

from __future__ import annotations

import base64
import binascii
import hmac

from registry.errors import Unauthorized

CHALLENGE = 'Basic realm="sbp-registry", charset="UTF-8"'


def require_basic_auth(authorization: str | None, user: str, password: str) -> None:
    """Raise `Unauthorized` unless the header carries exactly `user:password`."""
    if not authorization:
        raise Unauthorized("Unauthorized: this request needs HTTP basic credentials")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "basic" or not token:
        raise Unauthorized("Unauthorized: only HTTP basic credentials are accepted")
    try:
        decoded = base64.b64decode(token.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise Unauthorized("Unauthorized: malformed basic credentials") from exc
    given_user, sep, given_password = decoded.partition(b":")
    # Both comparisons always run: short-circuiting would time the user name.
    user_ok = hmac.compare_digest(given_user, user.encode())
    password_ok = hmac.compare_digest(given_password, password.encode())
    if not (sep and user_ok and password_ok):
        raise Unauthorized("Unauthorized: wrong user name or password")
