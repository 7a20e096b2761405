"""Apply the service principals to a broker: SCRAM users and ACLs, idempotently.

Run by the admin (a super user) from `sbp dev up` and `sbp deploy init`, after
the topics. Each service's SCRAM credential is set to its configured password
(an upsert, so a changed password takes effect on the next run), and its ACLs
are brought to exactly the declaration in `streams.kafka_acls`: missing ones
are created, any other ACL of that principal is deleted, so a grant widened by
hand does not outlive the next provisioning run.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialAlteration,
    UserScramCredentialUpsertion,
)

from streams.kafka_acls import SERVICE_PRINCIPALS, Grant

# Kafka accepts 4096..16384. Each login costs the client this many HMAC rounds.
SCRAM_ITERATIONS = 8192
_ANY_HOST = "*"


@dataclass(frozen=True)
class PrincipalReport:
    users: list[str]
    acls_created: list[str]
    acls_deleted: list[str]


def acl_binding(user: str, grant: Grant) -> AclBinding:
    return AclBinding(
        ResourceType[grant.resource],
        grant.name,
        ResourcePatternType.PREFIXED if grant.prefixed else ResourcePatternType.LITERAL,
        f"User:{user}",
        _ANY_HOST,
        AclOperation[grant.operation],
        AclPermissionType.ALLOW,
    )


def acls_of(admin: AdminClient, principal: str) -> set[AclBinding]:
    """Every ACL binding that names `principal` (`User:<name>`)."""
    # None matches any name and any host (the stubs type them as str).
    every = AclBindingFilter(
        ResourceType.ANY,
        None,  # type: ignore[arg-type]
        ResourcePatternType.ANY,
        principal,
        None,  # type: ignore[arg-type]
        AclOperation.ANY,
        AclPermissionType.ANY,
    )
    return set(admin.describe_acls(every).result(timeout=30))


def _exactly(b: AclBinding) -> AclBindingFilter:
    return AclBindingFilter(
        b.restype,
        b.name,
        b.resource_pattern_type,
        b.principal,
        b.host,
        b.operation,
        b.permission_type,
    )


def _name(value: object) -> str:
    return value.name if isinstance(value, Enum) else str(value)


def describe(b: AclBinding) -> str:
    """`User:x ALLOW WRITE TOPIC:LITERAL:votes.raw`, for reports and test messages."""
    return (
        f"{b.principal} {_name(b.permission_type)} {_name(b.operation)} "
        f"{_name(b.restype)}:{_name(b.resource_pattern_type)}:{b.name}"
    )


def apply_principals(
    admin_config: Mapping[str, str], credentials: Mapping[str, tuple[str, str]]
) -> PrincipalReport:
    """`credentials`: each service principal's (user, password), by its client name."""
    admin = AdminClient(dict(admin_config))
    upserts: list[UserScramCredentialAlteration] = [
        UserScramCredentialUpsertion(
            credentials[p.client][0],
            ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, SCRAM_ITERATIONS),
            credentials[p.client][1].encode(),
        )
        for p in SERVICE_PRINCIPALS
    ]
    for future in admin.alter_user_scram_credentials(upserts).values():
        future.result(timeout=30)

    created: list[str] = []
    deleted: list[str] = []
    for principal in SERVICE_PRINCIPALS:
        user = credentials[principal.client][0]
        wanted = {acl_binding(user, grant) for grant in principal.grants}
        present = acls_of(admin, f"User:{user}")
        missing = sorted(wanted - present)
        if missing:
            for future in admin.create_acls(missing).values():
                future.result(timeout=30)
        extra = sorted(present - wanted)
        if extra:
            for future in admin.delete_acls([_exactly(b) for b in extra]).values():
                future.result(timeout=30)
        created += [describe(b) for b in missing]
        deleted += [describe(b) for b in extra]
    users = [credentials[p.client][0] for p in SERVICE_PRINCIPALS]
    return PrincipalReport(users=users, acls_created=created, acls_deleted=deleted)
