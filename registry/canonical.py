"""Parse, validate and normalize Avro schemas (pure: no I/O).

Two canonical texts come out of a schema:

* `canonical_form`: the Avro Parsing Canonical Form (fastavro). It keeps only
  what the *binary encoding* depends on, so it drops defaults, aliases, enum
  defaults and logical types.
* `normalized_form`: the same layout and full names, plus exactly those dropped
  attributes that *schema resolution* and decoding read. This is the schema's
  identity (its sha-256 is `fingerprint`) and the input to compatibility checks.

Why not identify schemas by the canonical form alone: two schemas that differ
only in a field default, or `long` against `timestamp-millis`, share a canonical
form, so they would share an id and a reader would get the first one's default
or logical type for data written with the second. Whitespace, `doc`, attribute
order and namespace spelling still collapse to one id.

Aliases are rewritten to full names while normalizing. The avro package's
compatibility checker compares a writer's full name against the reader's
aliases as written, so an unqualified alias (which the spec resolves in the
named type's namespace) would otherwise never match.

Untrusted text passes `strict_json` and `schema_rules` before any Avro parser
sees it, so a hostile schema is refused with a short `SchemaInvalid` instead of
a crash or a huge error message (see `registry.limits`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import avro.errors
import avro.schema
import fastavro.schema

from registry import avro_parser, schema_rules, strict_json
from registry.limits import SCHEMA_CACHE_CHARS, SCHEMA_CACHE_ENTRIES
from registry.schema_cache import TextCache
from registry.schema_rules import SchemaInvalid as SchemaInvalid

PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
_NAMED = frozenset({"record", "error", "enum", "fixed"})
_LOGICAL_ATTRIBUTES = ("logicalType", "precision", "scale")
_INT_RANGE = {"int": 2**31, "long": 2**63}


@dataclass(frozen=True)
class AvroSchema:
    text: str
    canonical_form: str
    normalized_form: str
    fingerprint: bytes
    parsed: avro.schema.Schema = field(compare=False, repr=False)


# Cached because every compatibility check re-reads the subject's history; a
# result is immutable, so sharing it is safe. Refusals are not cached.
_CACHE: TextCache[AvroSchema] = TextCache(SCHEMA_CACHE_CHARS, SCHEMA_CACHE_ENTRIES)


def parse(text: str) -> AvroSchema:
    """Validate `text` as an Avro schema; raises `SchemaInvalid`."""
    schema = _CACHE.get(text)
    if schema is None:
        schema = _parse(text)
        _CACHE.put(text, schema)
    return schema


def _parse(text: str) -> AvroSchema:
    try:
        document = strict_json.loads(text)
    except strict_json.JsonRejected as exc:
        raise SchemaInvalid(f"schema is not valid JSON: {exc}") from exc
    schema_rules.check(document)
    _parse_with_avro(document)
    try:
        normalized = _Normalizer().normalize(document, namespace="")
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise SchemaInvalid(f"unsupported schema structure: {exc!r}") from exc
    normalized_form = json.dumps(normalized, separators=(",", ":"), ensure_ascii=False)
    parsed = _parse_with_avro(normalized)
    _check_defaults(parsed)
    try:
        canonical_form = fastavro.schema.to_parsing_canonical_form(document)
    except Exception as exc:  # fastavro signals bad input with many exception types
        raise SchemaInvalid(f"schema rejected by fastavro: {exc}") from exc
    return AvroSchema(
        text=text,
        canonical_form=canonical_form,
        normalized_form=normalized_form,
        fingerprint=hashlib.sha256(normalized_form.encode()).digest(),
        parsed=parsed,
    )


def _parse_with_avro(document: Any) -> avro.schema.Schema:
    try:
        return avro_parser.parse(document)
    except avro.errors.AvroException as exc:
        raise SchemaInvalid(str(exc)) from exc
    except Exception as exc:  # avro signals some bad input with TypeError, OverflowError, ...
        raise SchemaInvalid(f"malformed schema: {exc!r}") from exc


class _Normalizer:
    """Rewrites a schema document with full names and a fixed attribute order."""

    def __init__(self) -> None:
        self.defined: set[str] = set()

    def normalize(self, node: Any, namespace: str) -> Any:
        if isinstance(node, str):
            return node if node in PRIMITIVES else self._reference(node, namespace)
        if isinstance(node, list):
            return [self.normalize(branch, namespace) for branch in node]
        if not isinstance(node, dict):
            raise SchemaInvalid(f"not a schema: {node!r}")
        kind = node["type"]
        if isinstance(kind, dict | list):
            return self.normalize(kind, namespace)
        if kind in PRIMITIVES:
            extras = {k: node[k] for k in _LOGICAL_ATTRIBUTES if k in node}
            return {"type": kind, **extras} if "logicalType" in extras else kind
        if kind == "array":
            return {"type": "array", "items": self.normalize(node["items"], namespace)}
        if kind == "map":
            return {"type": "map", "values": self.normalize(node["values"], namespace)}
        if kind in _NAMED:
            return self._named(node, kind, namespace)
        return self._reference(kind, namespace)

    def _named(self, node: dict[str, Any], kind: str, enclosing: str) -> dict[str, Any]:
        fullname = _fullname(node["name"], node.get("namespace", enclosing))
        self.defined.add(fullname)
        own_namespace = fullname.rpartition(".")[0]
        out: dict[str, Any] = {"name": fullname, "type": kind}
        if kind in ("record", "error"):
            out["fields"] = [self._field(f, own_namespace) for f in node["fields"]]
        elif kind == "enum":
            out["symbols"] = list(node["symbols"])
        else:
            out["size"] = node["size"]
        if "aliases" in node:
            out["aliases"] = sorted(_fullname(a, own_namespace) for a in node["aliases"])
        if kind == "enum" and "default" in node:
            out["default"] = node["default"]
        out.update({k: node[k] for k in _LOGICAL_ATTRIBUTES if k in node})
        return out

    def _field(self, node: dict[str, Any], namespace: str) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": node["name"],
            "type": self.normalize(node["type"], namespace),
        }
        if "default" in node:
            out["default"] = node["default"]
        if "aliases" in node:
            out["aliases"] = sorted(node["aliases"])
        return out

    def _reference(self, name: str, namespace: str) -> str:
        if "." in name or not namespace:
            return name
        qualified = f"{namespace}.{name}"
        # A bare name defined in the null namespace stays reachable from inside a
        # namespace, as in the avro package's parser.
        if qualified not in self.defined and name in self.defined:
            return name
        return qualified


def _fullname(name: str, namespace: str | None) -> str:
    if "." in name or not namespace:
        return name
    return f"{namespace}.{name}"


def _check_defaults(schema: avro.schema.Schema) -> None:
    """Refuse field defaults that do not fit their field's type.

    The avro package accepts `{"type": "int", "default": "abc"}`; a reader
    filling the missing field would then fail at run time, long after the
    registry said yes.
    """
    seen: set[int] = set()
    pending = [schema]
    while pending:
        node = pending.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, avro.schema.RecordSchema):
            for f in node.fields:
                if f.has_default and not _default_fits(f.type, f.default):
                    expected = f.type.type
                    if isinstance(f.type, avro.schema.UnionSchema):
                        expected = (
                            f"{f.type.schemas[0].type} (a union's first branch)"
                            if f.type.schemas
                            else "value of an empty union (it has none)"
                        )
                    raise SchemaInvalid(
                        f"Invalid default for field {f.name!r} of {node.fullname}: "
                        f"{json.dumps(f.default)} is not a valid {expected}"
                    )
                pending.append(f.type)
        elif isinstance(node, avro.schema.UnionSchema):
            pending.extend(node.schemas)
        elif isinstance(node, avro.schema.ArraySchema):
            pending.append(node.items)
        elif isinstance(node, avro.schema.MapSchema):
            pending.append(node.values)


def _default_fits(schema: avro.schema.Schema, value: Any) -> bool:
    if isinstance(schema, avro.schema.UnionSchema):
        # The Avro 1.12 spec lets a union default match any branch (AVRO-3649),
        # but readers in this stack (the avro package's io among them) decode a
        # union default with the first branch only; accept what they can read.
        # An empty union has no value at all, so no default fits it.
        return bool(schema.schemas) and _default_fits(schema.schemas[0], value)
    if isinstance(schema, avro.schema.RecordSchema):
        return isinstance(value, dict) and all(
            _default_fits(f.type, value[f.name]) if f.name in value else f.has_default
            for f in schema.fields
        )
    if isinstance(schema, avro.schema.ArraySchema):
        return isinstance(value, list) and all(_default_fits(schema.items, v) for v in value)
    if isinstance(schema, avro.schema.MapSchema):
        return isinstance(value, dict) and all(
            _default_fits(schema.values, v) for v in value.values()
        )
    if isinstance(schema, avro.schema.EnumSchema):
        return isinstance(value, str) and value in schema.symbols
    if isinstance(schema, avro.schema.FixedSchema):
        return _is_byte_string(value) and len(value) == schema.size
    kind = schema.type
    if kind == "null":
        return value is None
    if kind == "boolean":
        return isinstance(value, bool)
    if kind in _INT_RANGE:
        bound = _INT_RANGE[kind]
        return isinstance(value, int) and not isinstance(value, bool) and -bound <= value < bound
    if kind in ("float", "double"):
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "string":
        return isinstance(value, str)
    if kind == "bytes":
        return _is_byte_string(value)
    return False


def _is_byte_string(value: Any) -> bool:
    # Bytes and fixed defaults are JSON strings whose code points 0-255 stand
    # for the bytes.
    return isinstance(value, str) and all(ord(c) <= 255 for c in value)
