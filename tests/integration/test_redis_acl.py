"""Least privilege in the real Redis: who may log in, run what, on which keys, as whom.

Every refusal here has its positive control: the same command succeeds for the
user whose code runs it, so a refusal is the ACL's doing and not a broken
command. The users and their rules are devstack/redis_server.py's.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import socket
import stat
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hiredis
import pytest
import redis
import yaml
from redis.backoff import NoBackoff
from redis.exceptions import NoPermissionError
from redis.retry import Retry

from devstack import redis_server
from devstack.processes import ManagedProcess, wait_until_ready
from gateway.mark_store import _RECORD_SCRIPT, MarkStore
from sbp.settings import REPO_ROOT, Settings
from sinks.live.redis_client import connect
from sinks.live.redis_keys import (
    building_events,
    comfort_snapshots,
    login_failures_of_account,
    login_failures_of_source,
    published_vote,
    sse_ticket,
)
from sinks.live.snapshot_writer import write_snapshots

CLIENTS = ("gateway", "worker", "ops")
NO_COMMAND = "this user has no permissions to run the '{}' command"
NO_KEY = "this user has no permissions to access one of the keys used as arguments"


@pytest.fixture
def clients(stack: Settings) -> Iterator[dict[str, redis.Redis]]:
    opened = {
        who: redis.Redis.from_url(stack.redis_url_for(who), decode_responses=True)
        for who in CLIENTS
    }
    yield opened
    for client in opened.values():
        client.close()


@dataclass(frozen=True)
class Keys:
    """A fresh tenant's keys, built by the code's own key builders."""

    tenant: str
    mark: str
    events: str
    comfort: str
    account_failures: str
    source_failures: str
    ticket: str

    @classmethod
    def fresh(cls) -> Keys:
        tenant = f"t-acl-{uuid.uuid4().hex[:12]}"
        return cls(
            tenant=tenant,
            mark=published_vote(tenant, str(uuid.uuid4())),
            events=building_events(tenant, "b1"),
            comfort=comfort_snapshots(tenant, "b1"),
            account_failures=login_failures_of_account(tenant, "u1"),
            source_failures=login_failures_of_source(tenant, "2001:db8::1"),
            ticket=sse_ticket(tenant, hashlib.sha256(b"st1.a-ticket").hexdigest()),
        )

    def all(self) -> list[str]:
        return [value for name, value in vars(self).items() if name != "tenant"]


@pytest.fixture
def keys(clients: dict[str, redis.Redis]) -> Iterator[Keys]:
    made = Keys.fresh()
    yield made
    clients["ops"].delete(*made.all())


def _run(client: redis.Redis, *command: Any) -> Any:
    return client.execute_command(*command)  # type: ignore[no-untyped-call]


def _raw(settings: Settings, *commands: tuple[str, ...]) -> list[str]:
    """Each command's reply on one connection, below any client library's retries
    and error mapping: what Redis itself answers. An error reply is its text."""
    replies = []
    address = (settings.host, settings.redis_port)
    with socket.create_connection(address, timeout=5) as sock:
        reader = hiredis.Reader()
        for command in commands:
            # hiredis's stub types the command as a 1-tuple; it takes any length.
            sock.sendall(hiredis.pack_command(command))  # type: ignore[arg-type]
            while (reply := reader.gets()) is False:
                reader.feed(sock.recv(4096))
            replies.append(reply.decode() if isinstance(reply, bytes) else str(reply))
    return replies


def test_a_client_that_does_not_log_in_is_refused(stack: Settings) -> None:
    user, password = stack.redis_credentials("ops")
    before, logged_in, after = _raw(stack, ("PING",), ("AUTH", user, password), ("PING",))
    assert before == "NOAUTH Authentication required."
    # The control: the same connection, once logged in, is answered.
    assert (logged_in, after) == ("OK", "PONG")

    # What a client library sees (RESP2: RESP3's HELLO is refused with another text).
    anonymous = redis.Redis(
        host=stack.host, port=stack.redis_port, protocol=2, retry=Retry(NoBackoff(), 0)
    )
    try:
        with pytest.raises(redis.AuthenticationError, match=r"^Authentication required\.$"):
            anonymous.get(published_vote("t-any", str(uuid.uuid4())))
    finally:
        anonymous.close()


def _password(s: Settings, who: str) -> str:
    return s.redis_credentials(who)[1]


WRONG_LOGINS: dict[str, Callable[[Settings], tuple[str, ...]]] = {
    "default-empty": lambda s: ("AUTH", "default", ""),
    "default-nopass": lambda s: ("AUTH", "default", "nopass"),
    # The one-argument form logs in as `default`: no service's password opens it.
    "default-gateway-password": lambda s: ("AUTH", _password(s, "gateway")),
    "gateway-with-worker-password": lambda s: (
        "AUTH",
        s.redis_credentials("gateway")[0],
        _password(s, "worker"),
    ),
    "no-such-user": lambda s: ("AUTH", "sbp-nobody", _password(s, "ops")),
}


@pytest.mark.parametrize("login", WRONG_LOGINS.values(), ids=WRONG_LOGINS.keys())
def test_only_a_users_own_password_logs_it_in(
    stack: Settings, login: Callable[[Settings], tuple[str, ...]]
) -> None:
    refused, still_anonymous = _raw(stack, login(stack), ("PING",))
    assert refused == "WRONGPASS invalid username-password pair or user is disabled."
    assert still_anonymous == "NOAUTH Authentication required."
    for who in CLIENTS:
        assert _raw(stack, ("AUTH", *stack.redis_credentials(who))) == ["OK"]


Call = tuple[str, Callable[[redis.Redis], object]]


def _calls(k: Keys) -> dict[str, Call]:
    """Every call the code makes, made as the code makes it (redis-py's `incr` sends
    INCRBY), with the command Redis receives."""
    return {
        # gateway/mark_store.py
        "mget marks": ("mget", lambda c: c.mget([k.mark])),
        "eval record": ("eval", lambda c: c.eval(_RECORD_SCRIPT, 1, k.mark, 60, "t|b1|z1")),
        # gateway/stream_routes.py, gateway/live_fanout.py
        "xread": ("xread", lambda c: c.xread({k.events: "0-0"}, block=1)),
        "xrange": ("xrange", lambda c: c.xrange(k.events, count=1)),
        "xrevrange": ("xrevrange", lambda c: c.xrevrange(k.events, count=1)),
        "hgetall": ("hgetall", lambda c: c.hgetall(k.comfort)),
        # gateway/login_throttle.py
        "mget failures": ("mget", lambda c: c.mget((k.account_failures, k.source_failures))),
        "incr": ("incrby", lambda c: c.incr(k.account_failures)),
        "expire nx": ("expire", lambda c: c.expire(k.account_failures, 900, nx=True)),
        "ttl": ("ttl", lambda c: c.ttl(k.account_failures)),
        "del": ("del", lambda c: c.delete(k.account_failures)),
        # gateway/sse_tickets.py
        "set ticket": ("set", lambda c: c.set(k.ticket, "{}", ex=30)),
        "getdel ticket": ("getdel", lambda c: c.getdel(k.ticket)),
        # sinks/live/snapshot_writer.py (the worker)
        "hset": ("hset", lambda c: c.hset(k.comfort, "z1", "{}")),
        "hdel": ("hdel", lambda c: c.hdel(k.comfort, "z-removed")),
        "xadd": (
            "xadd",
            lambda c: c.xadd(k.events, {"type": "aggregate"}, maxlen=10_000, approximate=True),
        ),
        # tests/integration/observe.py (ops)
        "hget": ("hget", lambda c: c.hget(k.comfort, "z1")),
        # every client's health check
        "ping": ("ping", lambda c: c.ping()),
    }


GATEWAY_CALLS = {
    "mget marks",
    "eval record",
    "xread",
    "xrange",
    "xrevrange",
    "hgetall",
    "mget failures",
    "incr",
    "expire nx",
    "ttl",
    "del",
    "set ticket",
    "getdel ticket",
    "ping",
}
WORKER_CALLS = {"hset", "hdel", "xadd", "ping"}
# Ops may run @read, @write and @keyspace on t:* keys: every call but the script.
OPS_CALLS = (GATEWAY_CALLS | WORKER_CALLS | {"hget"}) - {"eval record"}
ALLOWED = {"gateway": GATEWAY_CALLS, "worker": WORKER_CALLS, "ops": OPS_CALLS}


def test_each_user_runs_exactly_the_commands_of_its_code(
    clients: dict[str, redis.Redis], keys: Keys
) -> None:
    calls = _calls(keys)
    outcomes = {}
    # The writers first, so that the readers find data of the right type.
    for who in ("worker", "gateway", "ops"):
        for name, (_command, call) in calls.items():
            try:
                call(clients[who])
                outcomes[who, name] = "ok"
            except NoPermissionError as exc:
                outcomes[who, name] = str(exc)
    expected = {
        (who, name): "ok" if name in ALLOWED[who] else NO_COMMAND.format(command)
        for who in CLIENTS
        for name, (command, _call) in calls.items()
    }
    assert outcomes == expected
    # Every refusal above has a positive control: some user runs that same call.
    assert set(calls) == set().union(*ALLOWED.values())


@pytest.mark.parametrize("who", CLIENTS)
@pytest.mark.parametrize(
    ("call", "command"),
    [
        (("FLUSHALL",), "flushall"),
        (("FLUSHDB",), "flushdb"),
        (("CONFIG", "GET", "*"), "config|get"),
        (("KEYS", "*"), "keys"),
        # DEBUG is off server-wide (enable-debug-command no), before any ACL check.
        (("LASTSAVE",), "lastsave"),
        (("ACL", "LIST"), "acl|list"),
        (("SCRIPT", "FLUSH"), "script|flush"),
        (("INFO",), "info"),
        (("CLIENT", "LIST"), "client|list"),
        (("PUBLISH", "t:any:news", "x"), "publish"),
        (("SWAPDB", "0", "1"), "swapdb"),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_no_user_runs_anything_server_wide(
    clients: dict[str, redis.Redis], keys: Keys, who: str, call: tuple[str, ...], command: str
) -> None:
    clients["ops"].set(keys.mark, "sentinel")
    with pytest.raises(NoPermissionError) as refused:
        _run(clients[who], *call)
    assert str(refused.value) == NO_COMMAND.format(command)
    # Nothing happened: the key is still there, and the same user is still served.
    assert clients["ops"].get(keys.mark) == "sentinel"
    assert clients[who].ping()


KeyOf = Callable[[Keys], str]

KEY_CASES: list[tuple[str, str, KeyOf, KeyOf]] = [
    # Not a tenant key at all.
    ("gateway", "MGET", lambda k: k.mark, lambda k: "x" + k.mark),
    # The snapshots of a building whose id is "vote" are not a vote mark.
    ("gateway", "SET", lambda k: k.mark, lambda k: comfort_snapshots(k.tenant, "vote")),
    # GETDEL is for tickets, not marks; DEL for login counters, not marks.
    ("gateway", "GETDEL", lambda k: k.ticket, lambda k: k.mark),
    ("gateway", "DEL", lambda k: k.account_failures, lambda k: k.mark),
    # A ticket's key holds a SHA-256; nothing else under that prefix is one.
    ("gateway", "GETDEL", lambda k: k.ticket, lambda k: sse_ticket(k.tenant, "short")),
    ("worker", "HSET", lambda k: k.comfort, lambda k: k.mark),
    ("worker", "XADD", lambda k: k.events, lambda k: "x" + k.events),
    ("ops", "GET", lambda k: k.mark, lambda k: "x" + k.mark),
]
ARGUMENTS: dict[str, tuple[Any, ...]] = {
    "MGET": (),
    "SET": ("v", "EX", 60),
    "GETDEL": (),
    "DEL": (),
    "HSET": ("z1", "{}"),
    "XADD": ("*", "type", "aggregate"),
    "GET": (),
}


@pytest.mark.parametrize(
    ("who", "command", "own_key", "other_key"),
    KEY_CASES,
    ids=[f"{who}-{command}-{i}" for i, (who, command, _, _) in enumerate(KEY_CASES)],
)
def test_each_user_reaches_only_its_own_keys(
    clients: dict[str, redis.Redis],
    keys: Keys,
    who: str,
    command: str,
    own_key: KeyOf,
    other_key: KeyOf,
) -> None:
    arguments = ARGUMENTS[command]
    _run(clients[who], command, own_key(keys), *arguments)
    try:
        with pytest.raises(NoPermissionError, match=f"^{NO_KEY}$"):
            _run(clients[who], command, other_key(keys), *arguments)
    finally:
        # Only a failing run could have written it.
        if other_key(keys).startswith("t:"):
            clients["ops"].delete(other_key(keys))


async def test_the_gateway_reads_what_the_worker_publishes_and_never_writes_it(
    stack: Settings, clients: dict[str, redis.Redis], keys: Keys
) -> None:
    snapshot = {"tenantId": keys.tenant, "buildingId": "b1", "zoneId": "z1", "kinds": {}}
    worker, gateway = (
        connect(stack.redis_url_for("worker")),
        connect(stack.redis_url_for("gateway")),
    )
    try:
        await write_snapshots(worker, [snapshot])
        with pytest.raises(NoPermissionError, match=NO_COMMAND.format("hset")):
            await write_snapshots(gateway, [snapshot])
    finally:
        await worker.aclose()
        await gateway.aclose()
    assert set(clients["gateway"].hgetall(keys.comfort)) == {"z1"}
    events = clients["gateway"].xrange(keys.events)
    assert events is not None
    assert len(events) == 1


async def test_the_gateway_records_and_reads_its_marks(
    stack: Settings, clients: dict[str, redis.Redis], keys: Keys
) -> None:
    vote_uuid = keys.mark.rsplit(":", 1)[1]
    gateway = connect(stack.redis_url_for("gateway"))
    try:
        marks = MarkStore(gateway)
        await marks.record(keys.tenant, [(vote_uuid, b"t|b1|z1")])
        assert await marks.read(keys.tenant, [vote_uuid]) == [b"t|b1|z1"]
    finally:
        await gateway.aclose()
    # Seen by another user too: the script really SET it, with its TTL.
    assert clients["ops"].get(keys.mark) == "t|b1|z1"
    assert clients["ops"].ttl(keys.mark) > 0


def _ids(pid: int, field: str) -> list[int]:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, values = line.partition(":")
        if name == field:
            return [int(v) for v in values.split()]
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def test_redis_does_not_run_as_root(stack: Settings) -> None:
    pid = redis_server.process(stack).pid()
    assert pid is not None, "the stack's redis-server is not running"
    uids, gids, groups = _ids(pid, "Uid"), _ids(pid, "Gid"), _ids(pid, "Groups")
    # Real, effective, saved and filesystem ids: none of them root's.
    assert 0 not in uids + gids + groups
    if os.geteuid() == 0:
        redis_user = pwd.getpwnam("redis")
        assert set(uids) == {redis_user.pw_uid}
        assert set(gids) == {redis_user.pw_gid}
    else:
        assert set(uids) == {os.geteuid()}


def test_the_acl_file_is_private_and_holds_no_password(stack: Settings) -> None:
    path = redis_server.acl_file(stack)
    info = path.stat()
    assert stat.S_IMODE(info.st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    owner = pwd.getpwnam("redis").pw_uid if os.geteuid() == 0 else os.geteuid()
    assert (info.st_uid, path.parent.stat().st_uid) == (owner, owner)
    text = path.read_text()
    assert text == redis_server.acl_file_text(stack)
    assert text.splitlines()[0] == "user default reset off"
    for who in CLIENTS:
        user, password = stack.redis_credentials(who)
        assert f"user {user} reset on #{hashlib.sha256(password.encode()).hexdigest()} " in text
        assert password not in text


def _free_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def test_the_compose_files_redis_command_sets_up_the_same_users(
    stack: Settings, tmp_path: Path
) -> None:
    """Docker cannot run here, so the compose file's own redis-server argv is started
    with the local binary (on a spare port) and probed like the stack's."""
    compose = yaml.safe_load((REPO_ROOT / "docker-compose.kafka.yml").read_text())
    argv = [str(arg) for arg in compose["services"]["redis"]["command"]]
    port = _free_port(stack.host)
    proc = ManagedProcess("redis-compose-check", tmp_path, marker=str(port))
    proc.start([*argv, "--bind", stack.host, "--port", str(port), "--dir", str(tmp_path)])
    # The compose file holds the development defaults (tests/unit/test_compose_file.py).
    other = Settings(host=stack.host, redis_port=port)
    try:
        wait_until_ready(proc, lambda: _answers(other), 10)
        assert _raw(other, ("PING",)) == ["NOAUTH Authentication required."]
        for who in CLIENTS:
            user, password = other.redis_credentials(who)
            assert _raw(other, ("AUTH", user, password), ("PING",)) == ["OK", "PONG"]
        gateway = _raw(
            other, ("AUTH", *other.redis_credentials("gateway")), ("HSET", "t:x", "f", "v")
        )
        assert gateway == ["OK", "NOPERM " + NO_COMMAND.format("hset")]
    finally:
        proc.stop()


def _answers(settings: Settings) -> bool:
    try:
        return _raw(settings, ("PING",)) == ["NOAUTH Authentication required."]
    except OSError:
        return False
