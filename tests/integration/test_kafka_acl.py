"""Least privilege in the real Kafka: who may connect, write which topic, join which group.

Every refusal has its positive control: the same call as the principal whose
service makes it succeeds, so a refusal is the broker's authorization and not a
broken call. The principals are settings'; their grants are streams/kafka_acls.py's.
"""

from __future__ import annotations

import os
import socket
import stat
import struct
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from confluent_kafka import (
    Consumer,
    ConsumerGroupTopicPartitions,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AclBinding,
    AclOperation,
    AclPermissionType,
    AdminClient,
    NewTopic,
    ResourcePatternType,
    ResourceType,
)

from devstack import kafka
from devstack.processes import ManagedProcess, wait_until_ready
from devstack.raw_votes import raw_vote
from sbp.deploy import init_principals, init_topics
from sbp.settings import Settings, settings_from_env
from schemas import catalog
from schemas.codec import AvroCodec, registry_client
from streams.acl_admin import acl_binding, acls_of, describe
from streams.kafka_acls import (
    GATEWAY_CONFIG_GROUP_PREFIX,
    SERVICE_PRINCIPALS,
    WORKER_CONFIG_GROUP,
)
from streams.topics import PG_SINK_GROUP, VOTES_ACCEPTED, VOTES_RAW, WORKER_APP_ID
from tests.integration.conftest import Tenant
from tests.integration.observe import end_offsets
from tests.unit.test_compose_file import COMPOSE_FILE, docker_kafka_properties

TOPIC_REFUSED = KafkaError.TOPIC_AUTHORIZATION_FAILED
GROUP_REFUSED = KafkaError.GROUP_AUTHORIZATION_FAILED


def _admin(settings: Settings) -> AdminClient:
    return AdminClient({**settings.kafka_config("admin")})


def produce(
    settings: Settings, principal: str, topic: str, key: bytes, value: bytes
) -> KafkaError | None:
    """One record produced as `principal`, as the services produce (idempotent,
    acks=all); the delivery report's error, None when the broker stored it."""
    reports: list[KafkaError | None] = []
    producer = Producer(
        {
            **settings.kafka_config(principal),
            "acks": "all",
            "enable.idempotence": True,
            "message.timeout.ms": 20_000,
        }
    )
    producer.produce(topic, key=key, value=value, on_delivery=lambda err, _msg: reports.append(err))
    assert producer.flush(30) == 0
    assert len(reports) == 1
    return reports[0]


def _encoded(settings: Settings, topic: str, record: dict[str, Any]) -> bytes:
    subject = catalog.value_subject(topic)
    with registry_client(settings) as client:
        codec = AvroCodec(client)
        return codec.encode(codec.writer(subject, catalog.latest(subject).text), record)


def _key(tenant: Tenant) -> bytes:
    return f"{tenant.tenant_id}|{tenant.building_id}|z1".encode()


@pytest.fixture
def raw_record(tenant: Tenant) -> tuple[bytes, bytes]:
    """A valid votes.raw record of this test's tenant: the pipeline takes it as any other."""
    vote = raw_vote(tenant.tenant_id, tenant.building_id, "z1", value=1)
    return _key(tenant), _encoded(tenant.settings, VOTES_RAW.name, vote)


@pytest.fixture
def accepted_record(tenant: Tenant) -> tuple[bytes, bytes]:
    """A valid votes.accepted record of this test's tenant, as the vote stage emits it."""
    vote = raw_vote(tenant.tenant_id, tenant.building_id, "z1", value=1)
    del vote["schemaVersion"]
    vote["sourceSchemaVersion"] = 2
    return _key(tenant), _encoded(tenant.settings, VOTES_ACCEPTED.name, vote)


@pytest.fixture
def config_topic(stack: Settings) -> Iterator[str]:
    """A topic of the `config.` family, of this test alone."""
    name = f"config.test-acl-{uuid.uuid4().hex[:10]}"
    admin = _admin(stack)
    admin.create_topics([NewTopic(name, 1, stack.kafka_replication_factor)])[name].result(30)
    yield name
    admin.delete_topics([name])[name].result(30)


def _kafka_request(api_key: int, body: bytes, correlation_id: int) -> bytes:
    client_id = b"sbp-acl-test"
    header = struct.pack(">hhih", api_key, 0, correlation_id, len(client_id)) + client_id
    return struct.pack(">i", len(header) + len(body)) + header + body


def _read_response(sock: socket.socket) -> bytes:
    """One response frame, or b"" when the broker closed the connection instead."""
    data = b""
    while len(data) < 4 or len(data) < 4 + struct.unpack(">i", data[:4])[0]:
        chunk = sock.recv(65536)
        if not chunk:
            return b""
        data += chunk
    return data


# --- logging in ---------------------------------------------------------------------------


def test_a_client_without_credentials_gets_no_metadata(stack: Settings) -> None:
    host, port = stack.kafka_bootstrap.split(",")[0].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        # The broker does answer ApiVersions before a login (clients need it to
        # pick a SASL version): the listener is up and speaks Kafka ...
        sock.sendall(_kafka_request(18, b"", correlation_id=1))
        answer = _read_response(sock)
        assert answer[4:8] == struct.pack(">i", 1)
        # ... but a Metadata request (v0, every topic) before a login closes the
        # connection without an answer.
        sock.sendall(_kafka_request(3, struct.pack(">i", 0), correlation_id=2))
        assert _read_response(sock) == b""

    # The same through librdkafka, without and then with credentials.
    anonymous = AdminClient({"bootstrap.servers": stack.kafka_bootstrap})
    with pytest.raises(KafkaException):
        anonymous.list_topics(timeout=5)
    topics = AdminClient({**stack.kafka_config("gateway")}).list_topics(timeout=10).topics
    assert VOTES_RAW.name in topics


def test_a_client_without_credentials_cannot_produce(stack: Settings, config_topic: str) -> None:
    reports: list[KafkaError | None] = []
    anonymous = Producer({"bootstrap.servers": stack.kafka_bootstrap, "message.timeout.ms": 5000})
    anonymous.produce(config_topic, b"nobody", on_delivery=lambda err, _m: reports.append(err))
    anonymous.flush(15)
    assert [e.code() if e else None for e in reports] == [KafkaError._MSG_TIMED_OUT]
    assert end_offsets(stack, config_topic) == {0: 0}

    assert produce(stack, "admin_api", config_topic, b"k", b"v") is None
    assert end_offsets(stack, config_topic) == {0: 1}


def test_a_wrong_password_is_refused(stack: Settings) -> None:
    for principal in ("gateway", "admin"):
        errors: list[KafkaError] = []
        wrong = Producer(
            {
                **stack.kafka_config(principal),
                "sasl.password": "not-" + stack.kafka_sasl(principal)[1],
                "error_cb": errors.append,
            }
        )
        deadline = time.monotonic() + 15
        while not errors and time.monotonic() < deadline:
            wrong.poll(0.2)
        assert errors, f"{principal}: no error reported"
        assert errors[0].code() == KafkaError._AUTHENTICATION, errors[0]
        assert "invalid credentials" in errors[0].str()
        with pytest.raises(KafkaException):
            wrong.list_topics(timeout=3)

        right = Producer({**stack.kafka_config(principal), "error_cb": errors.append})
        assert right.list_topics(timeout=10).brokers


# --- writing topics -----------------------------------------------------------------------


def test_the_gateway_writes_votes_raw_and_nothing_else(
    tenant: Tenant,
    raw_record: tuple[bytes, bytes],
    accepted_record: tuple[bytes, bytes],
    config_topic: str,
) -> None:
    settings = tenant.settings
    assert produce(settings, "gateway", VOTES_RAW.name, *raw_record) is None

    refused = produce(settings, "gateway", VOTES_ACCEPTED.name, *accepted_record)
    assert refused is not None and refused.code() == TOPIC_REFUSED
    assert produce(settings, "worker", VOTES_ACCEPTED.name, *accepted_record) is None

    refused = produce(settings, "gateway", config_topic, b"k", b"v")
    assert refused is not None and refused.code() == TOPIC_REFUSED
    assert produce(settings, "admin_api", config_topic, b"k", b"v") is None


@pytest.mark.parametrize("principal", ["sink", "worker", "admin_api"])
def test_only_the_gateway_writes_votes_raw(
    tenant: Tenant, raw_record: tuple[bytes, bytes], principal: str
) -> None:
    refused = produce(tenant.settings, principal, VOTES_RAW.name, *raw_record)
    assert refused is not None and refused.code() == TOPIC_REFUSED
    assert produce(tenant.settings, "gateway", VOTES_RAW.name, *raw_record) is None


@pytest.mark.parametrize("principal", ["worker", "sink", "gateway"])
def test_only_the_admin_api_writes_config_topics(
    stack: Settings, config_topic: str, principal: str
) -> None:
    refused = produce(stack, principal, config_topic, b"k", b"v")
    assert refused is not None and refused.code() == TOPIC_REFUSED
    assert produce(stack, "admin_api", config_topic, b"k", b"v") is None


def test_a_service_cannot_create_topics_or_grant_itself(stack: Settings) -> None:
    name = f"config.test-acl-{uuid.uuid4().hex[:10]}"
    gateway = AdminClient({**stack.kafka_config("gateway")})
    with pytest.raises(KafkaException) as raised:
        gateway.create_topics([NewTopic(name, 1, 1)])[name].result(30)
    assert raised.value.args[0].code() == TOPIC_REFUSED

    grant = AclBinding(
        ResourceType.TOPIC,
        VOTES_ACCEPTED.name,
        ResourcePatternType.LITERAL,
        f"User:{stack.kafka_sasl('gateway')[0]}",
        "*",
        AclOperation.WRITE,
        AclPermissionType.ALLOW,
    )
    with pytest.raises(KafkaException) as raised:
        gateway.create_acls([grant])[grant].result(30)
    assert raised.value.args[0].code() == KafkaError.CLUSTER_AUTHORIZATION_FAILED

    admin = _admin(stack)
    admin.create_topics([NewTopic(name, 1, 1)])[name].result(30)
    admin.delete_topics([name])[name].result(30)


# --- consumer groups ----------------------------------------------------------------------


def join(settings: Settings, principal: str, group: str, topic: str) -> KafkaError | None:
    """Subscribe as `principal` in `group`: None once partitions are assigned, else the
    error the group coordinator answered."""
    assigned: list[TopicPartition] = []
    consumer = Consumer(
        {
            **settings.kafka_config(principal),
            "group.id": group,
            "enable.auto.commit": False,
            "session.timeout.ms": 6000,
        }
    )
    consumer.subscribe([topic], on_assign=lambda _c, parts: assigned.extend(parts))
    deadline = time.monotonic() + 30
    try:
        while not assigned and time.monotonic() < deadline:
            msg: Message | None = consumer.poll(0.5)
            error = msg.error() if msg is not None else None
            if error is not None:
                return error
    finally:
        consumer.close()
    assert assigned, f"{principal} neither joined {group} nor was refused"
    return None


def test_a_service_cannot_join_another_services_group(stack: Settings, config_topic: str) -> None:
    # Both may read config topics; the group is the gateway's alone.
    group = f"{GATEWAY_CONFIG_GROUP_PREFIX}-test-{uuid.uuid4().hex[:8]}"
    refused = join(stack, "worker", group, config_topic)
    assert refused is not None and refused.code() == GROUP_REFUSED
    assert join(stack, "gateway", group, config_topic) is None

    # The worker's own group, seen from the gateway: refused before it is joined.
    refused = join(stack, "gateway", WORKER_APP_ID, config_topic)
    assert refused is not None and refused.code() == GROUP_REFUSED

    # The worker's config view has a group of its own (never joined by the view
    # itself, which assigns partitions; a join shows who may use the group).
    refused = join(stack, "gateway", WORKER_CONFIG_GROUP, config_topic)
    assert refused is not None and refused.code() == GROUP_REFUSED
    assert join(stack, "worker", WORKER_CONFIG_GROUP, config_topic) is None


@pytest.mark.parametrize(
    ("group", "topic", "owner", "others"),
    [
        (PG_SINK_GROUP, VOTES_ACCEPTED.name, "sink", ["gateway", "worker", "admin_api"]),
        (WORKER_APP_ID, VOTES_RAW.name, "worker", ["gateway", "sink", "admin_api"]),
    ],
)
def test_a_services_group_offsets_are_its_own(
    stack: Settings, group: str, topic: str, owner: str, others: list[str]
) -> None:
    """Reading a live group's committed offsets (which would tell where it is) without
    joining it, so the running services are not disturbed."""

    def committed(principal: str) -> KafkaError | None:
        admin = AdminClient({**stack.kafka_config(principal)})
        request = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, 0)])
        try:
            admin.list_consumer_group_offsets([request])[group].result(30)
        except KafkaException as exc:
            error: KafkaError = exc.args[0]
            return error
        return None

    for principal in others:
        refused = committed(principal)
        assert refused is not None and refused.code() == GROUP_REFUSED, principal
    assert committed(owner) is None


# --- the declarations are what the broker enforces ----------------------------------------


def _declared(settings: Settings, client: str) -> set[str]:
    (principal,) = [p for p in SERVICE_PRINCIPALS if p.client == client]
    user = settings.kafka_sasl(client)[0]
    return {describe(acl_binding(user, grant)) for grant in principal.grants}


def _present(settings: Settings, client: str) -> set[str]:
    user = settings.kafka_sasl(client)[0]
    return {describe(b) for b in acls_of(_admin(settings), f"User:{user}")}


def test_the_broker_holds_exactly_the_declared_acls(stack: Settings) -> None:
    for principal in SERVICE_PRINCIPALS:
        assert _present(stack, principal.client) == _declared(stack, principal.client)
    # The admin is a super user by the broker's configuration, not by ACLs.
    assert _present(stack, "admin") == set()


def test_a_widened_acl_does_not_outlive_provisioning(
    tenant: Tenant, accepted_record: tuple[bytes, bytes]
) -> None:
    settings = tenant.settings
    user = settings.kafka_sasl("gateway")[0]
    widened = AclBinding(
        ResourceType.TOPIC,
        VOTES_ACCEPTED.name,
        ResourcePatternType.LITERAL,
        f"User:{user}",
        "*",
        AclOperation.WRITE,
        AclPermissionType.ALLOW,
    )
    admin = _admin(settings)
    try:
        admin.create_acls([widened])[widened].result(30)
        # Authorization follows the metadata log: wait until the grant is in force.
        deadline = time.monotonic() + 30
        while produce(settings, "gateway", VOTES_ACCEPTED.name, *accepted_record) is not None:
            assert time.monotonic() < deadline, "the widened grant never took effect"
        report = init_principals(settings)
        assert report.acls_deleted == [describe(widened)]
    finally:
        init_principals(settings)
    refused = produce(settings, "gateway", VOTES_ACCEPTED.name, *accepted_record)
    assert refused is not None and refused.code() == TOPIC_REFUSED


# --- the compose file's broker ------------------------------------------------------------


def _answers(settings: Settings) -> bool:
    try:
        return bool(AdminClient({**settings.kafka_config("admin")}).list_topics(timeout=2).brokers)
    except KafkaException:
        return False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_the_compose_files_broker_enforces_the_same_principals(
    stack: Settings, tmp_path: Path
) -> None:
    """docker-compose.kafka.yml's kafka service, run from the local jars instead of the
    image: its format step (the admin's SCRAM user) and the server properties the image
    derives from its KAFKA_* variables, on free ports. Provisioned as its `init`
    container does, it lets each container's principal do its own work only."""
    services = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
    env = {k: str(v) for k, v in services["kafka"]["environment"].items()}
    # The container's ports (INTERNAL, EXTERNAL, CONTROLLER) -> free ones here.
    ports = {f":{p}": f":{_free_port()}" for p in (9092, 19092, 9093)}
    data, run_dir = tmp_path / "data", tmp_path / "run"
    run_dir.mkdir()

    def local(text: str) -> str:
        for container, here in ports.items():
            text = text.replace(container, here)
        text = text.replace("://:", "://127.0.0.1:").replace("//kafka:", "//127.0.0.1:")
        return text.replace("/var/lib/kafka/data", str(data))

    storage_tool = tmp_path / "kafka-storage.sh"
    storage_tool.write_text(
        "#!/bin/sh\n"
        f"exec java -Dlog4j.configuration=file:{kafka.LOG4J} -cp '{kafka.libs_dir(stack)}/*' "
        'kafka.tools.StorageTool "$@"\n'
    )
    storage_tool.chmod(0o700)
    # compose's `$$` escape first, and its /tmp before any path of ours (under /tmp) is in.
    script = services["kafka"]["command"][-1].replace("$$", "$").replace("/tmp/", f"{tmp_path}/")
    script = (
        local(script)
        .replace("/opt/kafka/bin/kafka-storage.sh", str(storage_tool))
        .replace("/etc/kafka/docker/run", "true")  # the broker is started below
    )
    subprocess.run(["bash", "-c", script], env={**os.environ, **env}, check=True, timeout=120)
    assert (data / "meta.properties").exists()
    assert stat.S_IMODE((tmp_path / "admin.properties").stat().st_mode) == 0o600

    props = {k: local(v) for k, v in docker_kafka_properties(env).items()}
    properties = tmp_path / "server.properties"
    properties.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
    broker = ManagedProcess("compose-kafka", run_dir, marker=str(properties))
    external = "127.0.0.1" + ports[":19092"]

    def as_container(name: str) -> Settings:
        container_env = {k: str(v) for k, v in services[name]["environment"].items()}
        return settings_from_env({**container_env, "SBP_KAFKA_BOOTSTRAP_OVERRIDE": external})

    init = as_container("init")
    broker.start(
        [
            "java",
            "-Xmx384m",
            f"-Dlog4j.configuration=file:{kafka.LOG4J}",
            f"-Dkafka.logs.dir={run_dir}",
            "-cp",
            f"{kafka.libs_dir(stack)}/*",
            "kafka.Kafka",
            str(properties),
        ]
    )
    try:
        wait_until_ready(broker, lambda: _answers(init), 90)
        init_topics(init)
        init_principals(init)

        gateway, sink = as_container("gateway"), as_container("pg-sink")
        assert produce(gateway, "gateway", VOTES_RAW.name, b"k", b"v") is None
        refused = produce(gateway, "gateway", VOTES_ACCEPTED.name, b"k", b"v")
        assert refused is not None and refused.code() == TOPIC_REFUSED
        refused = produce(sink, "sink", VOTES_RAW.name, b"k", b"v")
        assert refused is not None and refused.code() == TOPIC_REFUSED
        with pytest.raises(KafkaException):
            AdminClient({"bootstrap.servers": external}).list_topics(timeout=5)
    finally:
        broker.stop(timeout=60)
