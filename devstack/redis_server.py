"""Debian's redis-server 7 on its own port: persistence off, one ACL user per client, not root.

The dev stack's Redis is a cache and stream fan-out only: snapshots are rebuilt
from Kafka and PostgreSQL, so nothing is written to disk.

Least privilege (docs/redis-acl.md):
- Every client logs in as its own ACL user (`settings.redis_url_for`), allowed
  only the commands its code runs, on only the keys it uses. The default user
  is off, so a client that does not log in is refused (NOAUTH).
- The rules are derived from the key builders (sinks/live/redis_keys.py) and
  the settings, and written at every start to an aclfile in the state dir:
  mode 0600, passwords as SHA-256 hashes. docker-compose.kafka.yml passes the
  same rules as `--user` arguments (tests/unit/test_compose_file.py).
- When the stack runs as root (CI), redis-server runs as Debian's `redis` user.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import shutil
from dataclasses import dataclass
from pathlib import Path

import redis

from devstack.processes import ManagedProcess, grant_traverse, wait_until_ready
from sbp.settings import Settings
from sinks.live.redis_keys import (
    building_events,
    comfort_snapshots,
    login_failures_of_account,
    login_failures_of_source,
    published_vote,
    sse_ticket,
)

# Ids are [A-Za-z0-9_-] (identity/principal.py): no ':' and no glob characters,
# so `*` in an id's place of a key builder stands for any id.
_ANY_ID = "*"
# Fixed-length parts are pinned by shape, so that their pattern cannot also match
# another key: `t:*:vote:*` would match `t:{tenant}:b:vote:comfort`, the
# snapshots of a building whose id is "vote". A voteUuid is canonical (lowercase,
# gateway/vote_validation.py), a ticket's key holds a SHA-256 in hex.
_UUID_GLOB = "????????-????-????-????-????????????"
_SHA256_HEX_GLOB = "?" * 64

VOTE_MARKS = published_vote(_ANY_ID, _UUID_GLOB)
COMFORT_SNAPSHOTS = comfort_snapshots(_ANY_ID, _ANY_ID)
BUILDING_EVENTS = building_events(_ANY_ID, _ANY_ID)
ACCOUNT_LOGIN_FAILURES = login_failures_of_account(_ANY_ID, _ANY_ID)
# A source is a client address: an IPv6 one holds ':'.
SOURCE_LOGIN_FAILURES = login_failures_of_source(_ANY_ID, "*")
SSE_TICKETS = sse_ticket(_ANY_ID, _SHA256_HEX_GLOB)
TENANT_KEYS = "t:*"  # every key (brief §4)


@dataclass(frozen=True)
class Grant:
    """Commands allowed on keys: a Redis 7 selector, so no command reaches other keys."""

    # "~glob" read and write, "%R~glob" read only, "%W~glob" write only.
    keys: tuple[str, ...]
    commands: tuple[str, ...]

    def selector(self) -> str:
        return "(" + " ".join((*self.keys, *self.commands)) + ")"


@dataclass(frozen=True)
class AclUser:
    client: str  # the name `Settings.redis_credentials` knows it by
    grants: tuple[Grant, ...]


ACL_USERS: tuple[AclUser, ...] = (
    AclUser(
        "gateway",
        (
            # gateway/mark_store.py: MGET the marks, EVAL a script that SETs them
            # (a script's own calls are checked too). Of @scripting only EVAL:
            # no SCRIPT FLUSH or KILL, no FUNCTION.
            Grant((f"~{VOTE_MARKS}",), ("+mget", "+eval", "+set")),
            # gateway/stream_routes.py and live_fanout.py; the worker writes these.
            Grant((f"%R~{BUILDING_EVENTS}",), ("+xread", "+xrange", "+xrevrange")),
            Grant((f"%R~{COMFORT_SNAPSHOTS}",), ("+hgetall",)),
            # gateway/login_throttle.py: the failed-login counters (redis-py's
            # `incr` sends INCRBY).
            Grant(
                (f"~{ACCOUNT_LOGIN_FAILURES}", f"~{SOURCE_LOGIN_FAILURES}"),
                ("+mget", "+ttl", "+incrby", "+expire", "+del"),
            ),
            # gateway/sse_tickets.py: SET on issue, GETDEL on redeem.
            Grant((f"~{SSE_TICKETS}",), ("+set", "+getdel")),
        ),
    ),
    AclUser(
        "worker",
        (
            # sinks/live/snapshot_writer.py (the live publisher): HSET the snapshot,
            # HDEL a deleted zone's, XADD the event (MAXLEN ~ trims); it reads
            # nothing back (HDEL answers only how many fields it removed).
            Grant((f"%W~{COMFORT_SNAPSHOTS}",), ("+hset", "+hdel")),
            Grant((f"%W~{BUILDING_EVENTS}",), ("+xadd",)),
        ),
    ),
    AclUser(
        "ops",
        (
            # Tests and dev tooling read, write and delete any tenant's keys, but
            # run nothing server-wide: -@dangerous takes KEYS, FLUSHALL, FLUSHDB,
            # SWAPDB, SORT, MIGRATE and RESTORE back out of these categories;
            # CONFIG, DEBUG, ACL, INFO, SCRIPT and EVAL are in none of them.
            Grant((f"~{TENANT_KEYS}",), ("+@read", "+@write", "+@keyspace", "-@dangerous")),
        ),
    ),
)
# Every client's connections are health-checked with PING (sinks/live/redis_client.py),
# and the readiness probes are a PING.
_EVERY_CLIENT = ("+ping",)


def _password_hash(password: str) -> str:
    return "#" + hashlib.sha256(password.encode()).hexdigest()


def acl_rules(settings: Settings) -> list[tuple[str, ...]]:
    """Each user's name and rules, as tokens: an aclfile line or `--user` arguments."""
    # `reset` first: no password, no keys, no channels, no commands, off. So the
    # default user can never log in, and each line says everything its user may do.
    rules: list[tuple[str, ...]] = [("default", "reset", "off")]
    for user in ACL_USERS:
        name, password = settings.redis_credentials(user.client)
        rules.append(
            (
                name,
                "reset",
                "on",
                _password_hash(password),
                "resetchannels",
                *_EVERY_CLIENT,
                *(grant.selector() for grant in user.grants),
            )
        )
    return rules


def acl_file_text(settings: Settings) -> str:
    return "".join("user " + " ".join(rule) + "\n" for rule in acl_rules(settings))


def workdir(settings: Settings) -> Path:
    return settings.state_dir / "redis"


def acl_file(settings: Settings) -> Path:
    return workdir(settings) / "users.acl"


def process(settings: Settings) -> ManagedProcess:
    return ManagedProcess("redis", settings.state_dir / "run", marker=str(settings.redis_port))


def is_ready(settings: Settings) -> bool:
    try:
        client = redis.Redis.from_url(settings.redis_url_for("ops"), socket_timeout=1)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except redis.RedisError:
        return False


def _run_as() -> str | None:
    """Debian's redis-server package creates the `redis` system user; root is never needed."""
    return "redis" if os.geteuid() == 0 else None


def _written_acl(settings: Settings) -> str | None:
    try:
        return acl_file(settings).read_text()
    except FileNotFoundError:
        return None


def _write_acl_file(settings: Settings, owner: pwd.struct_passwd | None) -> Path:
    directory, path = workdir(settings), acl_file(settings)
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    if owner is not None:
        # redis-server reads the file and changes into the dir after dropping root.
        grant_traverse(directory.parent)
        os.chown(directory, owner.pw_uid, owner.pw_gid)
    # Created 0600 before a byte is written; chmod too, as O_CREAT keeps an old file's mode.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(acl_file_text(settings))
    path.chmod(0o600)
    if owner is not None:
        os.chown(path, owner.pw_uid, owner.pw_gid)
    return path


def up(settings: Settings, timeout: float = 30.0) -> None:
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed; run scripts/setup (redis-server)")
    proc = process(settings)
    if proc.is_running() and _written_acl(settings) != acl_file_text(settings):
        # Redis reads its aclfile only at start: one started with other users or
        # passwords (or before there were any) would refuse every client.
        proc.stop()
    if not proc.is_running():
        user = _run_as()
        try:
            owner = pwd.getpwnam(user) if user is not None else None
        except KeyError:
            raise RuntimeError(
                "no `redis` user to run redis-server as; run scripts/setup (redis-server)"
            ) from None
        path = _write_acl_file(settings, owner)
        proc.start(
            [
                binary,
                "--bind",
                settings.host,
                "--port",
                str(settings.redis_port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--dir",
                str(workdir(settings)),
                "--protected-mode",
                "yes",
                "--aclfile",
                str(path),
            ],
            user=user,
        )
    wait_until_ready(proc, lambda: is_ready(settings), timeout)


def down(settings: Settings) -> bool:
    return process(settings).stop()
