"""The one Avro codec: Confluent wire format over fastavro, schemas from the registry.

Wire format: magic byte 0, the writer schema's registry id (4 bytes, big-endian),
then the Avro binary body. Producers encode with a `Writer` resolved once at
start-up (subject + schema file → id); consumers decode by the id each record
carries, so v1 and v2 votes share a topic and each is read with its own writer
schema. Decoding failures are typed (`DecodeError.code`) so a consumer can
route the record to its DLQ with the reason, while registry outages raise
`RegistryUnavailable` and must be retried, never dead-lettered.
"""

from __future__ import annotations

import io
import json
import struct
from dataclasses import dataclass
from typing import Any

import fastavro
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from sbp.settings import Settings

_MAGIC = 0
_HEADER = struct.Struct(">bI")


class DecodeError(ValueError):
    """A record that can never be decoded; `code` is the DLQ reason."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class RegistryUnavailable(RuntimeError):
    """The registry could not be asked; the caller retries later."""


@dataclass(frozen=True)
class Writer:
    subject: str
    schema_id: int
    parsed: Any


@dataclass(frozen=True)
class Decoded:
    schema_id: int
    record: dict[str, Any]


# Seconds per registry request: a hung registry must fail a lookup, not stall its caller.
REGISTRY_TIMEOUT_S = 5


def registry_client(settings: Settings) -> SchemaRegistryClient:
    return SchemaRegistryClient(
        {
            "url": settings.registry_url,
            "basic.auth.user.info": settings.registry_basic_auth,
            "timeout": REGISTRY_TIMEOUT_S,
        }
    )


class AvroCodec:
    def __init__(self, client: SchemaRegistryClient) -> None:
        self._client = client
        self._by_id: dict[int, Any] = {}

    def writer(self, subject: str, schema_text: str) -> Writer:
        """The id under which `schema_text` is registered for `subject` (looked up, not added)."""
        try:
            registered = self._client.lookup_schema(subject, Schema(schema_text, "AVRO"))
        except SchemaRegistryError as exc:
            if exc.http_status_code and exc.http_status_code >= 500:
                raise RegistryUnavailable(str(exc)) from exc
            raise
        except Exception as exc:
            raise RegistryUnavailable(str(exc)) from exc
        schema_id = registered.schema_id
        if schema_id is None:
            raise RegistryUnavailable(f"registry returned no id for {subject}")
        parsed = fastavro.parse_schema(json.loads(schema_text))
        self._by_id[schema_id] = parsed
        return Writer(subject, schema_id, parsed)

    def encode(self, writer: Writer, record: dict[str, Any]) -> bytes:
        out = io.BytesIO()
        out.write(_HEADER.pack(_MAGIC, writer.schema_id))
        fastavro.schemaless_writer(out, writer.parsed, record)
        return out.getvalue()

    def decode(self, data: bytes | None) -> Decoded:
        if data is None or len(data) < _HEADER.size:
            raise DecodeError("not_avro_framed", "record is empty or shorter than the header")
        magic, schema_id = _HEADER.unpack_from(data)
        if magic != _MAGIC:
            raise DecodeError("not_avro_framed", f"magic byte {magic}, expected {_MAGIC}")
        parsed = self._schema_by_id(schema_id)
        body = io.BytesIO(data[_HEADER.size :])
        try:
            record = fastavro.schemaless_reader(body, parsed, None)
        except Exception as exc:  # fastavro raises many types on corrupt input
            raise DecodeError("undecodable", f"schema {schema_id}: {exc!r}") from exc
        if body.tell() != len(data) - _HEADER.size:
            raise DecodeError("undecodable", f"schema {schema_id}: trailing bytes after record")
        if not isinstance(record, dict):
            raise DecodeError("undecodable", f"schema {schema_id}: not a record")
        return Decoded(schema_id, record)

    @staticmethod
    def schema_id_of(data: bytes | None) -> int | None:
        """The writer schema id a framed record names, or None if it is not framed."""
        if data is None or len(data) < _HEADER.size or data[0] != _MAGIC:
            return None
        return int(_HEADER.unpack_from(data)[1])

    def knows(self, schema_id: int) -> bool:
        return schema_id in self._by_id

    def fetch(self, schema_id: int) -> None:
        """Ask the registry for a schema id (blocking: callers in a loop run it in a thread).

        Raises DecodeError for an id the registry does not have, RegistryUnavailable
        when it cannot be asked.
        """
        self._schema_by_id(schema_id)

    def _schema_by_id(self, schema_id: int) -> Any:
        cached = self._by_id.get(schema_id)
        if cached is not None:
            return cached
        try:
            schema = self._client.get_schema(schema_id)
        except SchemaRegistryError as exc:
            if exc.http_status_code == 404:
                raise DecodeError(
                    "unknown_schema_id", f"schema id {schema_id} is not registered"
                ) from exc
            raise RegistryUnavailable(str(exc)) from exc
        except Exception as exc:
            raise RegistryUnavailable(str(exc)) from exc
        if schema.schema_str is None:
            raise DecodeError("unknown_schema_id", f"schema id {schema_id} has no text")
        parsed = fastavro.parse_schema(json.loads(schema.schema_str))
        self._by_id[schema_id] = parsed
        return parsed
