"""The registry pen-test findings, replayed against the running registry process
and its PostgreSQL store.

Each hostile body gets its exact status and Confluent error code, and leaves no
row behind: the store is read directly after each one. The 200 MB bodies are
streamed from a generator, so this test never holds them, while the registry's
resident memory is sampled from /proc. Every test uses its own subjects.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from devstack.python_services import REGISTRY
from registry.limits import MAX_BODY_BYTES
from sbp.settings import Settings

pytestmark = pytest.mark.integration

CHUNK = 64 * 1024
HUGE = 200 * 2**20
# Resident growth allowed while 200 MB bodies arrive: before the cap, one such
# body took the process from about 60 MB to 672 MB.
RSS_GROWTH_BOUND_MIB = 48


def room(name: str) -> dict[str, Any]:
    return {
        "type": "record",
        "name": name,
        "namespace": "sbp.test",
        "fields": [{"name": "zone", "type": "string"}, {"name": "celsius", "type": "double"}],
    }


def schema_body(schema_text: str) -> bytes:
    return json.dumps({"schema": schema_text}).encode()


def _deep_doc_schema() -> str:
    # Fails 24 records down under a 900 KB doc: the avro package's own messages
    # for it once reached 260 MB.
    schema: Any = {
        "type": "record",
        "name": "Leaf",
        "doc": "x" * 900_000,
        "fields": [{"name": "f", "type": "nosuchtype"}],
    }
    for i in range(24):
        schema = {"type": "record", "name": f"R{i}", "fields": [{"name": "f", "type": schema}]}
    return json.dumps(schema)


# (case, body, HTTP status, error_code) for the schema routes.
SCHEMA_CASES: list[tuple[str, bytes, int, int]] = [
    ("deep nesting in the body", b"[" * 100_000 + b"]" * 100_000, 422, 42201),
    (
        "deep nesting in the schema",
        schema_body('{"type":"array","items":' * 5000 + '"int"' + "}" * 5000),
        422,
        42201,
    ),
    (
        "5000-digit integer in the body",
        b'{"schema": "\\"int\\"", "n": ' + b"9" * 5000 + b"}",
        422,
        42201,
    ),
    (
        "5000-digit integer in the schema",
        schema_body('{"type":"fixed","name":"F","size":' + "9" * 5000 + "}"),
        422,
        42201,
    ),
    ("lone surrogate in the body", b'{"schema": "\\"string\\"", "\\ud800": 1}', 422, 42201),
    (
        "lone surrogate in the schema",
        schema_body(
            '{"type":"record","name":"S","fields":'
            '[{"name":"a","type":"string","default":"\\udc00"}]}'
        ),
        422,
        42201,
    ),
    ("invalid UTF-8", b'{"schema": "\xff\xfe"}', 422, 42201),
    (
        "NaN in the schema",
        schema_body(
            '{"type":"record","name":"N","fields":[{"name":"a","type":"double","default":NaN}]}'
        ),
        422,
        42201,
    ),
    ("duplicate member", b'{"schema": "\\"int\\"", "schema": "\\"long\\""}', 422, 42201),
    ("non-object JSON", b'["\\"int\\""]', 422, 42201),
    ("wrong type for schema", b'{"schema": {"type": "int"}}', 422, 42201),
    ("huge doc failing deep", schema_body(_deep_doc_schema()), 422, 42201),
    ("over the cap", b" " * MAX_BODY_BYTES + b"{}", 413, 413),
]
# (case, body, error_code) for the config routes, whose bodies are no schemas.
CONFIG_CASES: list[tuple[str, bytes, int]] = [
    ("deep nesting", b"[" * 100_000 + b"]" * 100_000, 422),
    ("5000-digit integer", b'{"compatibility": ' + b"9" * 5000 + b"}", 422),
    ("lone surrogate", b'{"compatibility": "NONE", "\\ud800": null}', 422),
    ("invalid UTF-8", b'{"compatibility": "\xff"}', 422),
    ("wrong type", b'{"compatibility": 7}', 42203),
    ("over the cap", b'{"compatibility": "NONE"' + b" " * MAX_BODY_BYTES + b"}", 413),
]


@pytest.fixture
def http(stack: Settings) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.registry_url, timeout=60) as c:
        yield c


@pytest.fixture
def auth(stack: Settings) -> tuple[str, str]:
    return (stack.registry_user, stack.registry_password)


@pytest.fixture
def subject() -> Callable[[str], str]:
    tag = uuid.uuid4().hex[:10]
    return lambda name: f"test-registry-hostile-{tag}-{name}"


@pytest.fixture
def db(stack: Settings) -> Iterator[psycopg.Connection[tuple[Any, ...]]]:
    with psycopg.connect(stack.pg_dsn("app"), autocommit=True) as conn:
        yield conn


def stored_rows(db: psycopg.Connection[tuple[Any, ...]], subject: str) -> tuple[int, int]:
    """(versions, config rows) the store holds for `subject`, deleted or not."""
    row = db.execute(
        "SELECT (SELECT count(*) FROM registry.subject_versions WHERE subject = %s),"
        " (SELECT count(*) FROM registry.config WHERE subject = %s)",
        (subject, subject),
    ).fetchone()
    assert row is not None
    return (row[0], row[1])


def assert_error(response: httpx.Response, status: int, code: int) -> None:
    assert response.status_code == status, response.text[:300]
    body = response.json()
    assert set(body) == {"error_code", "message"}
    assert body["error_code"] == code
    assert isinstance(body["message"], str)
    # Messages quote the input only in part: a hostile body never comes back whole.
    assert len(response.content) < 8192


def huge_body() -> Iterator[bytes]:
    """200 MB that starts like a registration, made as it is sent."""
    yield b'{"schema": "'
    chunk = b"x" * CHUNK
    for _ in range(HUGE // CHUNK):
        yield chunk


class RssSampler:
    """Samples a process's resident memory (VmRSS) every 10 ms in a thread."""

    def __init__(self, pid: int) -> None:
        self.status = Path(f"/proc/{pid}/status")
        self.baseline = self.read()
        self.peak = self.baseline
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def read(self) -> int:
        for line in self.status.read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError(f"no VmRSS in {self.status}")

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.read())
            time.sleep(0.01)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.read())

    @property
    def growth_mib(self) -> float:
        return (self.peak - self.baseline) / 2**20


# -- hostile bodies ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "body", "status", "code"), SCHEMA_CASES, ids=[c[0] for c in SCHEMA_CASES]
)
def test_hostile_registration_is_refused_and_stores_nothing(
    http: httpx.Client,
    auth: tuple[str, str],
    subject: Callable[[str], str],
    db: psycopg.Connection[tuple[Any, ...]],
    case: str,
    body: bytes,
    status: int,
    code: int,
) -> None:
    name = subject("register")
    assert_error(http.post(f"/subjects/{name}/versions", content=body, auth=auth), status, code)
    assert stored_rows(db, name) == (0, 0)
    assert_error(http.get(f"/subjects/{name}/versions"), 404, 40401)


@pytest.mark.parametrize(
    ("case", "body", "status", "code"), SCHEMA_CASES, ids=[c[0] for c in SCHEMA_CASES]
)
@pytest.mark.parametrize("path", ["/subjects/{}", "/compatibility/subjects/{}/versions/latest"])
def test_hostile_body_on_open_routes_is_refused(
    http: httpx.Client,
    subject: Callable[[str], str],
    case: str,
    body: bytes,
    status: int,
    code: int,
    path: str,
) -> None:
    # No credentials: lookups and compatibility checks are open, so these
    # bodies are read and parsed by anyone.
    assert_error(http.post(path.format(subject("open")), content=body), status, code)


@pytest.mark.parametrize(("case", "body", "code"), CONFIG_CASES, ids=[c[0] for c in CONFIG_CASES])
def test_hostile_config_body_is_refused_and_changes_nothing(
    http: httpx.Client,
    auth: tuple[str, str],
    subject: Callable[[str], str],
    db: psycopg.Connection[tuple[Any, ...]],
    case: str,
    body: bytes,
    code: int,
) -> None:
    name = subject("config")
    global_before = http.get("/config").json()
    response = http.put(f"/config/{name}", content=body, auth=auth)
    assert_error(response, int(str(code)[:3]), code)
    assert stored_rows(db, name) == (0, 0)
    assert_error(http.put("/config", content=body, auth=auth), int(str(code)[:3]), code)
    assert http.get("/config").json() == global_before


def test_nul_in_subject_prefix_lists_nothing(http: httpx.Client) -> None:
    # PostgreSQL text cannot hold a NUL; the query once failed with a 500.
    response = http.get("/subjects", params={"subjectPrefix": "\x00"})
    assert (response.status_code, response.json()) == (200, [])


# -- 200 MB bodies ----------------------------------------------------------------------


def test_200_mb_bodies_are_cut_off_and_memory_stays_flat(
    stack: Settings,
    http: httpx.Client,
    auth: tuple[str, str],
    subject: Callable[[str], str],
    db: psycopg.Connection[tuple[Any, ...]],
) -> None:
    pid = REGISTRY.process(stack).pid()
    assert pid is not None, "the registry is not running under the dev stack"
    name = subject("huge")
    with RssSampler(pid) as rss:
        # Open route: read up to the cap, then refused.
        assert_error(http.post(f"/subjects/{name}", content=huge_body()), 413, 413)
        # A write without credentials: refused before its body is read.
        unauthenticated = http.post(f"/subjects/{name}/versions", content=huge_body())
        assert_error(unauthenticated, 401, 40101)
        # A write with credentials: read up to the cap, then refused.
        authenticated = http.post(f"/subjects/{name}/versions", content=huge_body(), auth=auth)
        assert_error(authenticated, 413, 413)
        # A declared length over the cap: refused before anything is read.
        declared = http.post(
            f"/subjects/{name}",
            content=huge_body(),
            headers={"content-length": str(HUGE + len(b'{"schema": "'))},
        )
        assert_error(declared, 413, 413)
    assert rss.growth_mib < RSS_GROWTH_BOUND_MIB, (
        f"registry RSS grew {rss.growth_mib:.1f} MiB "
        f"({rss.baseline / 2**20:.1f} -> {rss.peak / 2**20:.1f} MiB)"
    )
    assert stored_rows(db, name) == (0, 0)
    # The connection pool and the process are still fine.
    assert http.get("/healthz").json() == {"status": "ok"}


# -- positive controls ------------------------------------------------------------------


def test_valid_registration_still_succeeds(
    http: httpx.Client,
    auth: tuple[str, str],
    subject: Callable[[str], str],
    db: psycopg.Connection[tuple[Any, ...]],
) -> None:
    name = subject("valid")
    text = json.dumps(room(f"Valid{uuid.uuid4().hex}"))
    response = http.post(f"/subjects/{name}/versions", content=schema_body(text), auth=auth)
    assert response.status_code == 200, response.text
    assert response.json()["version"] == 1
    assert stored_rows(db, name) == (1, 0)
    found = http.post(f"/subjects/{name}", content=schema_body(text))
    assert (found.status_code, found.json()["id"]) == (200, response.json()["id"])


def test_a_body_of_exactly_the_cap_is_accepted(
    http: httpx.Client,
    auth: tuple[str, str],
    subject: Callable[[str], str],
    db: psycopg.Connection[tuple[Any, ...]],
) -> None:
    name = subject("at-cap")
    body = schema_body(json.dumps(room(f"AtCap{uuid.uuid4().hex}")))
    padded = body + b" " * (MAX_BODY_BYTES - len(body))
    assert len(padded) == MAX_BODY_BYTES
    response = http.post(f"/subjects/{name}/versions", content=padded, auth=auth)
    assert response.status_code == 200, response.text
    assert stored_rows(db, name) == (1, 0)
    over = http.post(f"/subjects/{subject('over-cap')}/versions", content=padded + b" ", auth=auth)
    assert_error(over, 413, 413)
