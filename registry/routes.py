"""The HTTP face of the registry: Confluent Schema Registry REST endpoints.

Paths, query flags, bodies and response fields follow what confluent-kafka's
`SchemaRegistryClient` sends and parses. Reads, lookups and compatibility tests
change nothing and are open; registering, config changes and deletes need basic
auth. Handlers only translate HTTP; rules live in `store`, `canonical` and
`compatibility`, and every failure is a typed `RegistryError`.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from registry import canonical, compatibility, strict_json
from registry.auth import require_basic_auth
from registry.compatibility import Level
from registry.errors import (
    InvalidCompatibilityLevel,
    InvalidSchema,
    InvalidSubject,
    InvalidVersion,
    RegistryError,
    SchemaNotFound,
    StoreError,
    SubjectCompatibilityNotConfigured,
)
from registry.responses import MEDIA_TYPE, RegistryResponse
from registry.store import Registered, Store

_MAX_ID = 2**31 - 1


class MalformedRequest(RegistryError):
    code = 422


# -- request helpers -----------------------------------------------------------


def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def _authorize(request: Request) -> None:
    settings = request.app.state.settings
    require_basic_auth(
        request.headers.get("authorization"), settings.registry_user, settings.registry_password
    )


def _flag(request: Request, name: str) -> bool:
    # The client formats Python booleans into the URL ("True"), so compare loosely.
    return request.query_params.get(name, "false").strip().lower() == "true"


def _subject(request: Request) -> str:
    subject: str = request.path_params["subject"]
    if not 0 < len(subject) <= 255 or not _subject_text(subject):
        raise InvalidSubject(subject)
    return subject


def _subject_text(text: str) -> bool:
    """No control characters, and no lone surrogates (which PostgreSQL can't store)."""
    return not any(ord(c) < 32 or ord(c) == 127 or 0xD800 <= ord(c) <= 0xDFFF for c in text)


def _version(request: Request) -> int | None:
    """A version path parameter; None means the latest ("latest" or -1)."""
    text: str = request.path_params["version"]
    if text.strip().lower() == "latest":
        return None
    try:
        version = int(text)
    except ValueError:
        raise InvalidVersion(text) from None
    if version == -1:
        return None
    if not 0 < version <= _MAX_ID:
        raise InvalidVersion(text)
    return version


def _schema_id(request: Request) -> int:
    try:
        schema_id = int(request.path_params["id"])
    except ValueError:
        raise SchemaNotFound(f"Schema {request.path_params['id']} not found") from None
    if not 0 < schema_id <= _MAX_ID:
        raise SchemaNotFound(f"Schema {schema_id} not found")
    return schema_id


def _page(request: Request, items: list[Any]) -> list[Any]:
    try:
        offset = max(int(request.query_params.get("offset", "0")), 0)
        limit = int(request.query_params.get("limit", "-1"))
    except ValueError:
        raise MalformedRequest("offset and limit must be integers") from None
    return items[offset:] if limit < 0 else items[offset : offset + limit]


async def _json_body(request: Request, error: type[RegistryError]) -> Any:
    # The body is at most MAX_BODY_BYTES: registry.body_limit stops the read past it.
    raw = await request.body()
    try:
        return strict_json.loads(raw)
    except strict_json.JsonRejected as exc:
        raise error(f"Malformed JSON request body: {exc}") from exc


async def _schema_body(request: Request) -> canonical.AvroSchema:
    body = await _json_body(request, InvalidSchema)
    if not isinstance(body, dict) or not isinstance(body.get("schema"), str):
        raise InvalidSchema("The request body must be a JSON object with a 'schema' string")
    schema_type = body.get("schemaType") or "AVRO"
    if not isinstance(schema_type, str) or schema_type.upper() != "AVRO":
        raise InvalidSchema(
            f"Unsupported schemaType {schema_type!r}: this registry holds AVRO only"
        )
    if body.get("references"):
        raise InvalidSchema("Schema references are not supported by this registry")
    for unsupported in ("metadata", "ruleSet"):
        if body.get(unsupported):
            raise InvalidSchema(f"'{unsupported}' is not supported by this registry")
    try:
        return canonical.parse(body["schema"])
    except canonical.SchemaInvalid as exc:
        raise InvalidSchema(f"Invalid schema: {exc}") from exc


async def _level_body(request: Request) -> Level:
    body = await _json_body(request, MalformedRequest)
    if not isinstance(body, dict):
        raise InvalidCompatibilityLevel()
    known = ("compatibility", "compatibilityLevel")
    extra = sorted(k for k, v in body.items() if v is not None and k not in known)
    if extra:
        raise InvalidCompatibilityLevel(f"Unsupported config fields: {', '.join(extra)}")
    try:
        return compatibility.parse_level(
            body.get("compatibility") or body.get("compatibilityLevel")
        )
    except ValueError:
        raise InvalidCompatibilityLevel() from None


def _registered(r: Registered) -> dict[str, Any]:
    # Confluent leaves schemaType out for AVRO; the client defaults it.
    return {
        "subject": r.subject,
        "version": r.version,
        "id": r.schema_id,
        "guid": str(r.guid),
        "schema": r.text,
    }


# -- schemas -------------------------------------------------------------------


async def root(request: Request) -> Response:
    return RegistryResponse({})


async def healthz(request: Request) -> Response:
    try:
        await _store(request).ping()
    except RegistryError as exc:
        return JSONResponse({"status": "unavailable", "reason": exc.message}, status_code=503)
    return JSONResponse({"status": "ok"})


async def schema_types(request: Request) -> Response:
    return RegistryResponse(["AVRO"])


async def schema_by_id(request: Request) -> Response:
    # `subject` only scopes a lookup to a schema context, which this registry
    # does not have; ids are global, so it is accepted and has no effect.
    stored = await _store(request).schema_by_id(_schema_id(request))
    return RegistryResponse({"schema": stored.text, "guid": str(stored.guid)})


async def schema_by_guid(request: Request) -> Response:
    try:
        guid = UUID(request.path_params["guid"])
    except ValueError:
        raise SchemaNotFound(f"Schema {request.path_params['guid']} not found") from None
    stored = await _store(request).schema_by_guid(guid)
    return RegistryResponse({"schema": stored.text, "id": stored.schema_id, "guid": str(guid)})


async def schema_versions(request: Request) -> Response:
    usages = await _store(request).usages(_schema_id(request), _flag(request, "deleted"))
    subject = request.query_params.get("subject")
    pairs = [{"subject": s, "version": v} for s, v in usages if subject in (None, s)]
    return RegistryResponse(_page(request, pairs))


async def schema_subjects(request: Request) -> Response:
    usages = await _store(request).usages(_schema_id(request), _flag(request, "deleted"))
    subject = request.query_params.get("subject")
    subjects = sorted({s for s, _ in usages if subject in (None, s)})
    return RegistryResponse(_page(request, subjects))


# -- subjects --------------------------------------------------------------------


async def list_subjects(request: Request) -> Response:
    prefix = request.query_params.get("subjectPrefix", "")
    if not _subject_text(prefix):
        # No subject holds such a character; PostgreSQL could not even take a NUL.
        return RegistryResponse([])
    subjects = await _store(request).subjects(
        include_deleted=_flag(request, "deleted"),
        deleted_only=_flag(request, "deleted_only"),
        prefix=prefix,
    )
    return RegistryResponse(_page(request, subjects))


async def lookup(request: Request) -> Response:
    subject = _subject(request)
    schema = await _schema_body(request)
    found = await _store(request).lookup(subject, schema, _flag(request, "deleted"))
    return RegistryResponse(_registered(found))


async def delete_subject(request: Request) -> Response:
    _authorize(request)
    versions = await _store(request).delete_subject(_subject(request), _flag(request, "permanent"))
    return RegistryResponse(versions)


async def list_versions(request: Request) -> Response:
    versions = await _store(request).versions(
        _subject(request), _flag(request, "deleted"), _flag(request, "deleted_only")
    )
    return RegistryResponse(_page(request, versions))


async def register(request: Request) -> Response:
    _authorize(request)
    subject = _subject(request)
    # `normalize` is accepted and changes nothing: identity already is the
    # normalized form (see registry.canonical), with or without it.
    schema = await _schema_body(request)
    registered = await _store(request).register(subject, schema)
    return RegistryResponse(_registered(registered))


async def get_version(request: Request) -> Response:
    subject, version = _subject(request), _version(request)
    found = await _store(request).version(subject, version, _flag(request, "deleted"))
    return RegistryResponse(_registered(found))


async def get_version_schema(request: Request) -> Response:
    subject, version = _subject(request), _version(request)
    found = await _store(request).version(subject, version, _flag(request, "deleted"))
    return Response(found.text, media_type=MEDIA_TYPE)


async def delete_version(request: Request) -> Response:
    _authorize(request)
    subject, version = _subject(request), _version(request)
    deleted = await _store(request).delete_version(subject, version, _flag(request, "permanent"))
    return RegistryResponse(deleted)


# -- compatibility ---------------------------------------------------------------


async def check_against_version(request: Request) -> Response:
    subject, version = _subject(request), _version(request)
    schema = await _schema_body(request)
    store = _store(request)
    target = await store.version(subject, version, include_deleted=False)
    previous = [(target.version, _stored(target))]
    verdict = compatibility.check(schema, previous, await store.effective_level(subject))
    return _verdict(request, verdict)


async def check_against_all(request: Request) -> Response:
    subject = _subject(request)
    schema = await _schema_body(request)
    store = _store(request)
    # An empty or unknown subject accepts anything, as the first registration would.
    history = await store.live_history(subject)
    verdict = compatibility.check(schema, history, await store.effective_level(subject))
    return _verdict(request, verdict)


def _stored(registered: Registered) -> canonical.AvroSchema:
    try:
        return canonical.parse(registered.text)
    except canonical.SchemaInvalid as exc:
        raise StoreError(f"stored schema {registered.schema_id} no longer parses: {exc}") from exc


def _verdict(request: Request, verdict: compatibility.Verdict) -> Response:
    messages = list(verdict.messages) if _flag(request, "verbose") else []
    return RegistryResponse({"is_compatible": verdict.is_compatible, "messages": messages})


# -- config ----------------------------------------------------------------------


async def get_global_config(request: Request) -> Response:
    level = await _store(request).level(None) or compatibility.DEFAULT_LEVEL
    return RegistryResponse({"compatibilityLevel": level.value})


async def put_global_config(request: Request) -> Response:
    _authorize(request)
    level = await _level_body(request)
    await _store(request).set_level(None, level)
    return RegistryResponse({"compatibility": level.value})


async def delete_global_config(request: Request) -> Response:
    _authorize(request)
    old = await _store(request).delete_level(None) or compatibility.DEFAULT_LEVEL
    return RegistryResponse({"compatibilityLevel": old.value})


async def get_subject_config(request: Request) -> Response:
    subject = _subject(request)
    store = _store(request)
    level = await store.level(subject)
    if level is None:
        if not _flag(request, "defaultToGlobal"):
            raise SubjectCompatibilityNotConfigured(subject)
        level = await store.level(None) or compatibility.DEFAULT_LEVEL
    return RegistryResponse({"compatibilityLevel": level.value})


async def put_subject_config(request: Request) -> Response:
    _authorize(request)
    subject = _subject(request)
    level = await _level_body(request)
    await _store(request).set_level(subject, level)
    return RegistryResponse({"compatibility": level.value})


async def delete_subject_config(request: Request) -> Response:
    _authorize(request)
    subject = _subject(request)
    old = await _store(request).delete_level(subject)
    if old is None:
        raise SubjectCompatibilityNotConfigured(subject)
    return RegistryResponse({"compatibilityLevel": old.value})


ROUTES = [
    Route("/", root, methods=["GET"]),
    Route("/healthz", healthz, methods=["GET"]),
    Route("/schemas/types", schema_types, methods=["GET"]),
    Route("/schemas/ids/{id}", schema_by_id, methods=["GET"]),
    Route("/schemas/ids/{id}/versions", schema_versions, methods=["GET"]),
    Route("/schemas/ids/{id}/subjects", schema_subjects, methods=["GET"]),
    Route("/schemas/guids/{guid}", schema_by_guid, methods=["GET"]),
    Route("/subjects", list_subjects, methods=["GET"]),
    Route("/subjects/{subject}", lookup, methods=["POST"]),
    Route("/subjects/{subject}", delete_subject, methods=["DELETE"]),
    Route("/subjects/{subject}/versions", list_versions, methods=["GET"]),
    Route("/subjects/{subject}/versions", register, methods=["POST"]),
    Route("/subjects/{subject}/versions/{version}", get_version, methods=["GET"]),
    Route("/subjects/{subject}/versions/{version}", delete_version, methods=["DELETE"]),
    Route("/subjects/{subject}/versions/{version}/schema", get_version_schema, methods=["GET"]),
    Route("/compatibility/subjects/{subject}/versions", check_against_all, methods=["POST"]),
    Route(
        "/compatibility/subjects/{subject}/versions/{version}",
        check_against_version,
        methods=["POST"],
    ),
    Route("/config", get_global_config, methods=["GET"]),
    Route("/config", put_global_config, methods=["PUT"]),
    Route("/config", delete_global_config, methods=["DELETE"]),
    Route("/config/{subject}", get_subject_config, methods=["GET"]),
    Route("/config/{subject}", put_subject_config, methods=["PUT"]),
    Route("/config/{subject}", delete_subject_config, methods=["DELETE"]),
]
