"""The registry service against its real clients: confluent-kafka's
SchemaRegistryClient and Avro serde through a real Kafka round trip, plus raw
HTTP where the wire shape itself is the contract (auth, error bodies).

Every test uses its own subjects and topic, so tests don't interfere; global
config is only read, or rewritten with the value it already has.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from confluent_kafka import Consumer, Producer

# The documented import path for NewTopic; the package's stubs don't re-export it.
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext

from sbp.settings import Settings

pytestmark = pytest.mark.integration

ROOM: dict[str, Any] = {
    "type": "record",
    "name": "RoomReading",
    "namespace": "sbp.test",
    "fields": [
        {"name": "zone", "type": "string"},
        {"name": "celsius", "type": "double"},
    ],
}
ROOM_WITH_DEFAULT: dict[str, Any] = {
    **ROOM,
    "fields": [*ROOM["fields"], {"name": "humidity", "type": ["null", "double"], "default": None}],
}
ROOM_WITH_REQUIRED: dict[str, Any] = {
    **ROOM,
    "fields": [*ROOM["fields"], {"name": "co2_ppm", "type": "int"}],
}


def avro(document: dict[str, Any], indent: int | None = None) -> Schema:
    return Schema(json.dumps(document, indent=indent), "AVRO")


def document_of(schema: Schema) -> Any:
    assert schema.schema_str is not None
    return json.loads(schema.schema_str)


def expect_error(call: Callable[[], object], error_code: int, http_status: int) -> None:
    with pytest.raises(SchemaRegistryError) as caught:
        call()
    assert caught.value.error_code == error_code, caught.value
    assert caught.value.http_status_code == http_status, caught.value


@pytest.fixture
def client(stack: Settings) -> Iterator[SchemaRegistryClient]:
    sr = SchemaRegistryClient(
        {"url": stack.registry_url, "basic.auth.user.info": stack.registry_basic_auth}
    )
    yield sr
    sr.close()


@pytest.fixture
def http(stack: Settings) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.registry_url, timeout=10) as c:
        yield c


@pytest.fixture
def auth(stack: Settings) -> tuple[str, str]:
    return (stack.registry_user, stack.registry_password)


@pytest.fixture
def subject() -> Callable[[str], str]:
    tag = uuid.uuid4().hex[:10]
    return lambda name: f"test-registry-{tag}-{name}"


@pytest.fixture
def topic(stack: Settings) -> Iterator[str]:
    name = f"test-registry-{uuid.uuid4().hex[:10]}"
    admin = AdminClient({**stack.kafka_config("admin")})
    futures = admin.create_topics(
        [NewTopic(name, num_partitions=1, replication_factor=stack.kafka_replication_factor)]
    )
    futures[name].result(timeout=30)
    yield name
    admin.delete_topics([name])[name].result(timeout=30)


def test_health(http: httpx.Client) -> None:
    response = http.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_avro_round_trip_through_kafka(
    stack: Settings, client: SchemaRegistryClient, topic: str
) -> None:
    serializer = AvroSerializer(client, json.dumps(ROOM))
    deserializer = AvroDeserializer(client)
    context = SerializationContext(topic, MessageField.VALUE)
    sent = [{"zone": "3F-East", "celsius": 21.5}, {"zone": "3F-West", "celsius": 23.0}]

    producer = Producer(stack.kafka_config("admin"))
    for reading in sent:
        producer.produce(topic, value=serializer(reading, context))
    assert producer.flush(30) == 0

    consumer = Consumer(
        {
            **stack.kafka_config("admin"),
            "group.id": f"{topic}-reader",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    received: list[bytes] = []
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + 60
        while len(received) < len(sent) and time.monotonic() < deadline:
            message = consumer.poll(1.0)
            if message is None:
                continue
            assert message.error() is None, message.error()
            value = message.value()
            assert value is not None
            received.append(value)
    finally:
        consumer.close()

    assert [deserializer(raw, context) for raw in received] == sent
    # The wire format's schema id is the one the registry holds for the subject.
    registered = client.get_latest_version(f"{topic}-value")
    assert registered.version == 1
    assert {int.from_bytes(raw[1:5], "big") for raw in received} == {registered.schema_id}
    assert document_of(registered.schema) == ROOM


def test_same_schema_under_two_subjects_gets_one_id(
    client: SchemaRegistryClient, subject: Callable[[str], str]
) -> None:
    first = client.register_schema(subject("a"), avro(ROOM))
    # Whitespace and documentation don't make a different schema.
    documented = {**ROOM, "doc": "a reading of one room"}
    second = client.register_schema(subject("b"), avro(documented, indent=2))
    assert first == second
    # Other tests register ROOM too, so the id may have more users than these two.
    users = {(v.subject, v.version) for v in client.get_schema_versions(first)}
    assert {(subject("a"), 1), (subject("b"), 1)} <= users
    assert document_of(client.get_schema(first)) == ROOM
    other = client.register_schema(subject("c"), avro(ROOM_WITH_DEFAULT))
    assert other != first


def test_registering_again_is_idempotent(
    client: SchemaRegistryClient,
    http: httpx.Client,
    auth: tuple[str, str],
    subject: Callable[[str], str],
) -> None:
    name = subject("idem")
    first = client.register_schema(name, avro(ROOM))
    # Straight to the server: the client would answer the repeat from its cache.
    again = http.post(f"/subjects/{name}/versions", json={"schema": json.dumps(ROOM)}, auth=auth)
    assert again.status_code == 200
    assert again.json()["id"] == first
    assert again.json()["version"] == 1
    assert client.get_versions(name) == [1]


def test_incompatible_schema_is_refused_with_409(
    client: SchemaRegistryClient, subject: Callable[[str], str]
) -> None:
    name = subject("evolve")
    client.register_schema(name, avro(ROOM))
    assert client.test_compatibility(name, avro(ROOM_WITH_REQUIRED)) is False
    expect_error(lambda: client.register_schema(name, avro(ROOM_WITH_REQUIRED)), 409, 409)
    assert client.get_versions(name) == [1]

    assert client.test_compatibility(name, avro(ROOM_WITH_DEFAULT)) is True
    client.register_schema(name, avro(ROOM_WITH_DEFAULT))
    assert client.get_versions(name) == [1, 2]


def test_verbose_compatibility_explains(
    http: httpx.Client, client: SchemaRegistryClient, subject: Callable[[str], str]
) -> None:
    name = subject("verbose")
    client.register_schema(name, avro(ROOM))
    body = {"schema": json.dumps(ROOM_WITH_REQUIRED)}
    response = http.post(f"/compatibility/subjects/{name}/versions/latest?verbose=true", json=body)
    assert response.status_code == 200
    verdict = response.json()
    assert verdict["is_compatible"] is False
    assert any("co2_ppm" in m for m in verdict["messages"])


def test_transitive_level_checks_every_version(
    client: SchemaRegistryClient, subject: Callable[[str], str]
) -> None:
    name = subject("transitive")
    v1 = {**ROOM, "fields": [ROOM["fields"][0]]}
    v2 = {**ROOM, "fields": [ROOM["fields"][0], {**ROOM["fields"][1], "default": 20.0}]}
    client.register_schema(name, avro(v1))
    client.register_schema(name, avro(v2))
    client.set_compatibility(name, "BACKWARD_TRANSITIVE")
    # Readable against v2 (which wrote celsius), not against v1 (which never did).
    assert client.test_compatibility(name, avro(ROOM)) is True
    assert client.test_compatibility_all_versions(name, avro(ROOM)) is False
    expect_error(lambda: client.register_schema(name, avro(ROOM)), 409, 409)
    client.set_compatibility(name, "BACKWARD")
    client.register_schema(name, avro(ROOM))
    assert client.get_versions(name) == [1, 2, 3]


def test_writes_without_credentials_get_401(
    http: httpx.Client, client: SchemaRegistryClient, subject: Callable[[str], str]
) -> None:
    name = subject("noauth")
    client.register_schema(name, avro(ROOM))
    attempts = [
        http.post(f"/subjects/{name}/versions", json={"schema": json.dumps(ROOM_WITH_DEFAULT)}),
        http.put(f"/config/{name}", json={"compatibility": "NONE"}),
        http.put("/config", json={"compatibility": "NONE"}),
        http.delete(f"/subjects/{name}/versions/1"),
        http.delete(f"/subjects/{name}"),
    ]
    for response in attempts:
        assert response.status_code == 401, response.request.url
        assert response.json()["error_code"] == 40101
        assert response.headers["www-authenticate"].startswith("Basic")
    # Nothing changed, and reads stay open.
    listed = http.get(f"/subjects/{name}/versions")
    assert listed.status_code == 200
    assert listed.json() == [1]
    assert http.get(f"/config/{name}").json()["error_code"] == 40408


def test_wrong_password_gets_401(stack: Settings, subject: Callable[[str], str]) -> None:
    conf = {"url": stack.registry_url, "basic.auth.user.info": f"{stack.registry_user}:not-it"}
    with SchemaRegistryClient(conf) as wrong:
        expect_error(lambda: wrong.register_schema(subject("wrongpw"), avro(ROOM)), 40101, 401)
        # Reads are open, so the same credentials get past auth to a plain 40401.
        expect_error(lambda: wrong.get_versions(subject("wrongpw")), 40401, 404)


def test_lookup_and_latest(client: SchemaRegistryClient, subject: Callable[[str], str]) -> None:
    name = subject("lookup")
    first = client.register_schema(name, avro(ROOM))
    second = client.register_schema(name, avro(ROOM_WITH_DEFAULT))

    found = client.lookup_schema(name, avro(ROOM, indent=4))
    assert (found.schema_id, found.version, found.subject) == (first, 1, name)
    latest = client.get_latest_version(name)
    assert (latest.schema_id, latest.version) == (second, 2)
    assert document_of(latest.schema) == ROOM_WITH_DEFAULT
    assert client.get_version(name, 1).schema_id == first

    expect_error(lambda: client.lookup_schema(name, avro(ROOM_WITH_REQUIRED)), 40403, 404)
    expect_error(lambda: client.lookup_schema(subject("nobody"), avro(ROOM)), 40401, 404)
    expect_error(lambda: client.get_version(name, 7), 40402, 404)
    expect_error(lambda: client.get_schema(2**31 - 1), 40403, 404)
    assert client.get_schema_types() == ["AVRO"]


def test_raw_schema_of_a_version(
    http: httpx.Client, client: SchemaRegistryClient, subject: Callable[[str], str]
) -> None:
    name = subject("raw")
    # A record name of its own, so this test is the first to register the schema.
    unique = {**ROOM, "name": f"Raw{uuid.uuid4().hex}"}
    text = json.dumps(unique, indent=2)
    client.register_schema(name, Schema(text, "AVRO"))
    response = http.get(f"/subjects/{name}/versions/1/schema")
    assert response.status_code == 200
    assert response.text == text
    # Another spelling of the same schema maps to the same id and its first text.
    other = client.register_schema(subject("raw-other"), Schema(json.dumps(unique), "AVRO"))
    assert http.get(f"/schemas/ids/{other}").json()["schema"] == text
    assert http.get(f"/subjects/{name}/versions/abc").json()["error_code"] == 42202


def test_config_global_and_per_subject(
    client: SchemaRegistryClient,
    http: httpx.Client,
    auth: tuple[str, str],
    subject: Callable[[str], str],
) -> None:
    name = subject("config")
    global_level = client.get_compatibility()
    assert global_level in {
        "NONE",
        "BACKWARD",
        "BACKWARD_TRANSITIVE",
        "FORWARD",
        "FORWARD_TRANSITIVE",
        "FULL",
        "FULL_TRANSITIVE",
    }
    # Rewrite the global level with its own value: the PUT path is exercised
    # without changing what concurrently running tests see.
    put = http.put("/config", json={"compatibility": global_level}, auth=auth)
    assert put.status_code == 200
    assert put.json() == {"compatibility": global_level}

    expect_error(lambda: client.get_compatibility(name), 40408, 404)
    fallback = http.get(f"/config/{name}", params={"defaultToGlobal": "true"})
    assert fallback.json() == {"compatibilityLevel": global_level}

    # Annotated as str, but the client returns the response body.
    changed: Any = client.set_compatibility(name, "full")
    assert changed == {"compatibility": "FULL"}
    assert client.get_compatibility(name) == "FULL"
    expect_error(lambda: client.set_compatibility(name, "SIDEWAYS"), 42203, 422)
    assert client.get_compatibility(name) == "FULL"

    deleted = http.delete(f"/config/{name}", auth=auth)
    assert deleted.json() == {"compatibilityLevel": "FULL"}
    expect_error(lambda: client.get_compatibility(name), 40408, 404)


def test_soft_delete_then_permanent(
    client: SchemaRegistryClient,
    http: httpx.Client,
    auth: tuple[str, str],
    subject: Callable[[str], str],
) -> None:
    name = subject("delete")
    first = client.register_schema(name, avro(ROOM))
    client.register_schema(name, avro(ROOM_WITH_DEFAULT))

    assert client.delete_version(name, 1) == 1
    expect_error(lambda: client.get_version(name, 1), 40402, 404)
    assert client.get_version(name, 1, deleted=True).schema_id == first
    assert client.get_versions(name) == [2]
    assert client.get_versions(name, deleted=True) == [1, 2]

    assert client.delete_subject(name) == [2]
    expect_error(lambda: client.get_versions(name), 40401, 404)
    expect_error(lambda: client.get_latest_version(name), 40401, 404)
    assert client.get_versions(name, deleted=True) == [1, 2]
    assert name not in client.get_subjects()
    assert name in client.get_subjects(deleted=True)
    # The schema itself outlives its subject versions: old messages stay readable.
    assert document_of(client.get_schema(first)) == ROOM

    # Re-registering a soft-deleted schema brings it back as a new version, same id.
    back = http.post(f"/subjects/{name}/versions", json={"schema": json.dumps(ROOM)}, auth=auth)
    assert back.json()["id"] == first
    assert back.json()["version"] == 3

    refused = http.delete(f"/subjects/{name}", params={"permanent": "true"}, auth=auth)
    assert refused.json()["error_code"] == 40405
    assert client.delete_subject(name) == [3]
    assert client.delete_subject(name, permanent=True) == [1, 2, 3]
    expect_error(lambda: client.get_versions(name, deleted=True), 40401, 404)


def test_invalid_schema_gets_42201(
    client: SchemaRegistryClient,
    http: httpx.Client,
    auth: tuple[str, str],
    subject: Callable[[str], str],
) -> None:
    name = subject("invalid")
    expect_error(
        lambda: client.register_schema(name, Schema('{"type": "record", "name": "R"}', "AVRO")),
        42201,
        422,
    )
    bad_default = {**ROOM, "fields": [{"name": "n", "type": "int", "default": "seven"}]}
    expect_error(lambda: client.register_schema(name, avro(bad_default)), 42201, 422)
    expect_error(lambda: client.register_schema(name, Schema("{}", "PROTOBUF")), 42201, 422)

    malformed = http.post(
        f"/subjects/{name}/versions",
        content=b'{"schema": ',
        headers={"content-type": "application/vnd.schemaregistry.v1+json"},
        auth=auth,
    )
    assert malformed.status_code == 422
    assert malformed.json()["error_code"] == 42201
    expect_error(lambda: client.get_versions(name), 40401, 404)
