"""Hostile request bodies against the registry's HTTP layer, run in-process.

The Starlette app runs without its lifespan, with a recording store in place of
PostgreSQL: what is under test is that every hostile body gets a 4xx with
Confluent's error shape and never reaches a store write, while valid requests
still do. The integration tests repeat the pen-test cases against the running
process and its real store.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import httpx
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.types import Message

from registry import canonical
from registry.app import create_app
from registry.body_limit import declared_too_large
from registry.compatibility import Level
from registry.errors import BodyTooLarge
from registry.limits import MAX_BODY_BYTES
from registry.store import Registered
from sbp.settings import Settings

SETTINGS = Settings()
AUTH = (SETTINGS.registry_user, SETTINGS.registry_password)
GUID = UUID("00000000-0000-4000-8000-000000000001")
BASE: dict[str, Any] = {
    "type": "record",
    "name": "Reading",
    "namespace": "sbp.test",
    "fields": [{"name": "zone", "type": "string"}],
}
SCHEMA_ROUTES = [
    ("POST", "/subjects/s/versions"),
    ("POST", "/subjects/s"),
    ("POST", "/compatibility/subjects/s/versions"),
    ("POST", "/compatibility/subjects/s/versions/latest"),
]
CONFIG_ROUTES = [("PUT", "/config"), ("PUT", "/config/s")]


@dataclass
class RecordingStore:
    """Answers reads with one stored version of BASE; records every write."""

    writes: list[tuple[str, str | None]] = field(default_factory=list)

    def _base(self, subject: str) -> Registered:
        return Registered(subject, 1, 1, GUID, json.dumps(BASE))

    async def register(self, subject: str, schema: canonical.AvroSchema) -> Registered:
        self.writes.append(("register", subject))
        return Registered(subject, 2, 2, GUID, schema.text)

    async def lookup(
        self, subject: str, schema: canonical.AvroSchema, include_deleted: bool
    ) -> Registered:
        return self._base(subject)

    async def live_history(self, subject: str) -> list[tuple[int, canonical.AvroSchema]]:
        # A real history, so hostile schemas that parse also meet the checker.
        return [(1, canonical.parse(json.dumps(BASE)))]

    async def version(self, subject: str, version: int | None, include_deleted: bool) -> Registered:
        return self._base(subject)

    async def effective_level(self, subject: str) -> Level:
        return Level.FULL

    async def set_level(self, subject: str | None, level: Level) -> None:
        self.writes.append(("set_level", subject))

    async def subjects(self, include_deleted: bool, deleted_only: bool, prefix: str) -> list[str]:
        return ["s"]


@dataclass
class Harness:
    """The app in-process; synchronous calls into it, for hypothesis."""

    app: Starlette
    portal: BlockingPortal
    client: httpx.AsyncClient
    store: RecordingStore

    def get(self, path: str, params: dict[str, str]) -> httpx.Response:
        return self.portal.call(lambda: self.client.get(path, params=params))

    def send(self, method: str, path: str, body: bytes) -> httpx.Response:
        before = len(self.store.writes)
        response = self.portal.call(
            lambda: self.client.request(method, path, content=body, auth=AUTH)
        )
        assert response.status_code < 500, (path, body[:200], response.text)
        if response.status_code >= 400:
            assert_error_shape(response)
            assert len(self.store.writes) == before, "a refused request reached a store write"
        return response


def assert_error_shape(response: httpx.Response) -> None:
    body = response.json()
    assert set(body) == {"error_code", "message"}, body
    assert type(body["error_code"]) is int
    assert isinstance(body["message"], str)
    # Confluent's codes start with the HTTP status (422 and 42201 for a 422).
    assert str(body["error_code"]).startswith(str(response.status_code))


@pytest.fixture(scope="module")
def harness() -> Iterator[Harness]:
    app = create_app(SETTINGS)
    store = RecordingStore()
    app.state.store = store
    # ASGITransport runs no lifespan, which would open a PostgreSQL pool; a 500
    # comes back as a response, so the assertion shows it.
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    with start_blocking_portal() as portal:
        client = httpx.AsyncClient(transport=transport, base_url="http://registry")
        yield Harness(app, portal, client, store)
        portal.call(client.aclose)


# -- strategies ------------------------------------------------------------------

# Lone surrogates included: json.dumps escapes them as \udXXX.
any_text = st.text(st.characters(exclude_categories=()), max_size=30)
names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True)
keywords = st.sampled_from(
    [
        *["null", "boolean", "int", "long", "float", "double", "bytes", "string"],
        *["record", "error", "enum", "fixed", "array", "map", "union", "error_union", "request"],
    ]
)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | any_text
    | names
    | keywords
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(any_text | keywords, inner, max_size=4)
    ),
    max_leaves=20,
)
schema_keys = st.sampled_from(
    [
        *["type", "name", "namespace", "fields", "items", "values", "symbols", "size"],
        *["default", "aliases", "order", "logicalType", "precision", "scale", "doc"],
    ]
)
# Avro-shaped documents with random structure: most are invalid, some are not.
avro_like = st.recursive(
    keywords | names | scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(schema_keys, inner, max_size=6),
    max_leaves=25,
)
# Raw JSON text no strict parser may accept or no plain parser survives.
hostile_fragments = st.one_of(
    st.integers(90, 3000).map(lambda n: "[" * n + "]" * n),
    st.integers(90, 3000).map(lambda n: '{"a":' * n + "1" + "}" * n),
    st.integers(90, 3000).map(lambda n: '{"type":"array","items":' * n + '"int"' + "}" * n),
    st.integers(300, 6000).map(lambda n: "9" * n),
    st.integers(300, 6000).map(lambda n: "-" + "9" * n),
    st.integers(300, 6000).map(lambda n: "1" + "0" * n + ".5"),
    st.sampled_from(
        [
            *["NaN", "Infinity", "-Infinity", "1e400", "-1e999", '"\\ud800"', '"x\\udfff"'],
            *['"\\ud83d"', '{"a":1,"a":2}', '"\\u0000"', "[", "{", '"', "\\", "]]]]"],
        ]
    ),
)
SCHEMA_TEMPLATES = [
    "FRAG",
    '{"type":"record","name":"R","fields":[{"name":"f","type":"int","default":FRAG}]}',
    '{"type":"record","name":"R","doc":FRAG,"fields":[]}',
    '{"type":"record","name":"R","fields":[{"name":"f","type":FRAG}]}',
    '{"type":"enum","name":"E","symbols":FRAG}',
    '{"type":"fixed","name":"F","size":FRAG}',
    '{"type":"array","items":FRAG}',
    '{"type":"record","name":FRAG,"fields":[]}',
]
BODY_TEMPLATES = [
    "FRAG",
    '{"schema":FRAG}',
    '{"schema":"\\"int\\"","extra":FRAG}',
    '{"schema":"\\"int\\"","schemaType":FRAG}',
    '{"schema":"\\"int\\"","references":FRAG}',
    '{"compatibility":FRAG}',
    '{"compatibility":"FULL",FRAG:1}',
]


@st.composite
def hostile_bodies(draw: st.DrawFn) -> bytes:
    """One hostile request body, as bytes on the wire."""
    choice = draw(st.integers(0, 4))
    if choice == 0:
        return draw(st.binary(max_size=300))
    if choice == 1:
        text = draw(st.sampled_from(BODY_TEMPLATES)).replace("FRAG", draw(hostile_fragments))
    elif choice == 2:
        schema = draw(st.sampled_from(SCHEMA_TEMPLATES)).replace("FRAG", draw(hostile_fragments))
        text = json.dumps({"schema": schema})
    elif choice == 3:
        text = json.dumps({"schema": json.dumps(draw(avro_like))})
    else:
        text = json.dumps(draw(json_values), ensure_ascii=draw(st.booleans()))
    # surrogatepass: a raw lone surrogate becomes bytes that are not UTF-8.
    encoded = text.encode("utf-8", "surrogatepass")
    return draw(st.sampled_from([b"", b"\xef\xbb\xbf", b"\xff"])) + encoded


@st.composite
def valid_schemas(draw: st.DrawFn) -> dict[str, Any]:
    """A valid Avro record of primitive, optional, enum, array and map fields."""
    field_names = draw(st.lists(names, min_size=1, max_size=6, unique=True))
    fields: list[dict[str, Any]] = []
    for i, name in enumerate(field_names):
        kind = draw(st.integers(0, 4))
        primitive = draw(st.sampled_from(sorted(canonical.PRIMITIVES)))
        if kind == 0:
            fields.append({"name": name, "type": primitive})
        elif kind == 1:
            optional = primitive if primitive != "null" else "string"
            fields.append({"name": name, "type": ["null", optional], "default": None})
        elif kind == 2:
            symbols = draw(st.lists(names, min_size=1, max_size=4, unique=True))
            fields.append(
                {"name": name, "type": {"type": "enum", "name": f"E{i}", "symbols": symbols}}
            )
        elif kind == 3:
            fields.append({"name": name, "type": {"type": "array", "items": primitive}})
        else:
            fields.append({"name": name, "type": {"type": "map", "values": primitive}})
    return {"type": "record", "name": draw(names), "namespace": "sbp.gen", "fields": fields}


@st.composite
def mutated_schemas(draw: st.DrawFn) -> Any:
    """A valid schema with one node swapped for a random one: mostly nearly valid."""
    schema: Any = draw(valid_schemas())
    paths: list[list[Any]] = []
    pending: list[tuple[list[Any], Any]] = [([], schema)]
    while pending:
        path, node = pending.pop()
        paths.append(path)
        if isinstance(node, dict):
            pending.extend(([*path, key], child) for key, child in node.items())
        elif isinstance(node, list):
            pending.extend(([*path, i], child) for i, child in enumerate(node))
    path = draw(st.sampled_from(paths))
    if not path:
        return draw(avro_like)
    parent = schema
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = draw(avro_like | scalars)
    return schema


# -- hostile bodies --------------------------------------------------------------

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(route=st.sampled_from(SCHEMA_ROUTES + CONFIG_ROUTES), body=hostile_bodies())
def test_hostile_bodies_get_4xx_with_confluent_shape(
    harness: Harness, route: tuple[str, str], body: bytes
) -> None:
    harness.send(*route, body)


@FUZZ
@given(route=st.sampled_from(SCHEMA_ROUTES), document=avro_like | mutated_schemas())
def test_random_avro_shaped_schemas_never_crash(
    harness: Harness, route: tuple[str, str], document: Any
) -> None:
    harness.send(*route, json.dumps({"schema": json.dumps(document)}).encode())


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"[" * 100_000 + b"]" * 100_000, 42201),
        (b'{"schema": "\\"int\\"", "x": ' + b"9" * 5000 + b"}", 42201),
        (b'{"schema": "\\"string\\"", "x\\ud800": 1}', 42201),
        (json.dumps({"schema": '{"type":"array","items":' * 5000 + '"int"' + "}" * 5000}), 42201),
        (json.dumps({"schema": '{"type":"fixed","name":"F","size":' + "9" * 5000 + "}"}), 42201),
        (
            json.dumps({"schema": '{"type":"enum","name":"E","symbols":["A"],"doc":"\\ud800"}'}),
            42201,
        ),
        (
            json.dumps(
                {
                    "schema": '{"type":"record","name":"R","fields":[{"name":"a",'
                    '"type":"string","default":"\\udc00"}]}'
                }
            ),
            42201,
        ),
        (b'{"schema": "\xff"}', 42201),
        (b"[]", 42201),
        (b'"a string"', 42201),
        (b'{"schema": 5}', 42201),
        (b'{"schema": "\\"int\\"", "schemaType": ["AVRO"]}', 42201),
        (json.dumps({"schema": json.dumps({**BASE, "name": "N" * 5000})}), 42201),
    ],
)
@pytest.mark.parametrize("route", SCHEMA_ROUTES)
def test_pen_test_cases_get_their_code(
    harness: Harness, route: tuple[str, str], body: bytes | str, code: int
) -> None:
    raw = body.encode() if isinstance(body, str) else body
    response = harness.send(*route, raw)
    assert (response.status_code, response.json()["error_code"]) == (422, code)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"[" * 100_000 + b"]" * 100_000, 422),
        (b'{"compatibility": ' + b"9" * 5000 + b"}", 422),
        (b'{"compatibility": "FULL", "x": "\\ud800"}', 422),
        (b'{"compatibility": "\xff"}', 422),
        (b'{"compatibility": 7}', 42203),
        (b'["FULL"]', 42203),
        (b'{"compatibility": "' + b"F" * 100_000 + b'"}', 42203),
    ],
)
@pytest.mark.parametrize("route", CONFIG_ROUTES)
def test_hostile_config_bodies_get_their_code(
    harness: Harness, route: tuple[str, str], body: bytes, code: int
) -> None:
    response = harness.send(*route, body)
    assert response.json()["error_code"] == code


def test_deep_schema_with_huge_doc_gets_a_short_error(harness: Harness) -> None:
    # The avro package used to quote each enclosing level's subtree: 260 MB of
    # messages for this 900 KB schema.
    leaf = {
        "type": "record",
        "name": "Leaf",
        "doc": "x" * 900_000,
        "fields": [{"name": "f", "type": "nosuchtype"}],
    }
    schema: Any = leaf
    for i in range(24):
        schema = {"type": "record", "name": f"R{i}", "fields": [{"name": "f", "type": schema}]}
    body = json.dumps({"schema": json.dumps(schema)}).encode()
    response = harness.send("POST", "/subjects/s", body)
    assert response.json()["error_code"] == 42201
    assert len(response.content) < 8192


def test_nul_subject_prefix_lists_nothing(harness: Harness) -> None:
    response = harness.get("/subjects", params={"subjectPrefix": "\x00"})
    assert (response.status_code, response.json()) == (200, [])
    assert harness.get("/subjects", params={"subjectPrefix": "s"}).json() == ["s"]


# -- positive controls -----------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(schema=valid_schemas())
def test_valid_registrations_still_succeed(harness: Harness, schema: dict[str, Any]) -> None:
    before = len(harness.store.writes)
    response = harness.send(
        "POST", "/subjects/s/versions", json.dumps({"schema": json.dumps(schema)}).encode()
    )
    assert response.status_code == 200, response.text
    assert response.json()["id"] == 2
    assert harness.store.writes[before:] == [("register", "s")]


def test_valid_config_change_still_succeeds(harness: Harness) -> None:
    before = len(harness.store.writes)
    response = harness.send("PUT", "/config/s", b'{"compatibility": "full"}')
    assert (response.status_code, response.json()) == (200, {"compatibility": "FULL"})
    assert harness.store.writes[before:] == [("set_level", "s")]


# -- the body cap ----------------------------------------------------------------


@dataclass
class RawCall:
    """One request straight through the ASGI interface, counting what was read."""

    status: int = 0
    body: bytes = b""
    bytes_read: int = 0
    reads: int = 0


async def call_raw(
    app: Starlette,
    path: str,
    chunks: Iterator[bytes],
    headers: list[tuple[bytes, bytes]],
) -> RawCall:
    result = RawCall()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 18081),
        "state": {},
    }

    async def receive() -> Message:
        result.reads += 1
        chunk = next(chunks, None)
        if chunk is None:
            return {"type": "http.request", "body": b"", "more_body": False}
        result.bytes_read += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            result.status = message["status"]
        elif message["type"] == "http.response.body":
            result.body += message.get("body", b"")

    await app(scope, receive, send)
    return result


def endless(chunk_size: int = 64 * 1024) -> Iterator[bytes]:
    """200 MB of JSON-ish bytes, made as they are read."""
    yield b'{"schema": "'
    for _ in range(200 * 2**20 // chunk_size):
        yield b"x" * chunk_size


def basic_auth() -> list[tuple[bytes, bytes]]:
    token = base64.b64encode(":".join(AUTH).encode())
    return [(b"authorization", b"Basic " + token)]


async def test_streamed_body_stops_being_read_at_the_cap(harness: Harness) -> None:
    call = await call_raw(harness.app, "/subjects/s", endless(), [])
    assert call.status == 413
    assert json.loads(call.body)["error_code"] == 413
    assert MAX_BODY_BYTES < call.bytes_read <= MAX_BODY_BYTES + 64 * 1024


async def test_declared_length_over_the_cap_is_refused_unread(harness: Harness) -> None:
    headers = [(b"content-length", str(200 * 2**20).encode()), *basic_auth()]
    call = await call_raw(harness.app, "/subjects/s/versions", endless(), headers)
    assert call.status == 413
    assert json.loads(call.body) == {"error_code": 413, "message": BodyTooLarge.default_message}
    assert str(MAX_BODY_BYTES) in BodyTooLarge.default_message
    assert call.reads == 0


async def test_unauthenticated_write_is_refused_before_its_body_is_read(harness: Harness) -> None:
    call = await call_raw(harness.app, "/subjects/s/versions", endless(), [])
    assert call.status == 401
    assert json.loads(call.body)["error_code"] == 40101
    assert call.reads == 0


async def test_body_of_exactly_the_cap_is_read_whole(harness: Harness) -> None:
    # A JSON string padded with spaces to the byte: parsed, not refused for size.
    text = json.dumps({"schema": json.dumps(BASE)})
    padded = text + " " * (MAX_BODY_BYTES - len(text))
    over = padded + " "
    at_cap = await call_raw(harness.app, "/subjects/s", iter([padded.encode()]), [])
    assert at_cap.status == 200, at_cap.body
    refused = await call_raw(harness.app, "/subjects/s", iter([over.encode()]), [])
    assert refused.status == 413


async def test_cap_holds_through_an_http_client(harness: Harness) -> None:
    async def stream() -> AsyncIterator[bytes]:
        for chunk in endless():
            yield chunk

    transport = httpx.ASGITransport(app=harness.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://registry") as client:
        response = await client.post("/subjects/s", content=stream())
    assert response.status_code == 413
    assert_error_shape(response)


@pytest.mark.parametrize(
    ("value", "too_large"),
    [
        (b"1048576", False),
        (b"1048577", True),
        (b"0000000000000000001", False),
        (b"9" * 5000, True),
        (b" 2000000 ", True),
        (b"-5", False),
        (b"12abc", False),
        (b"\xd9\xa1", False),
    ],
)
def test_declared_length(value: bytes, too_large: bool) -> None:
    headers = [(b"host", b"x"), (b"Content-Length", value)]
    assert declared_too_large(headers, MAX_BODY_BYTES) is too_large
