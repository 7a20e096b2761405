"""Bounds a schema document must keep before the avro package parses it (pure).

The avro package quotes what it refuses, and a refusal nested in fields, arrays
or unions is wrapped again at every enclosing level, each message holding the
one before; the exceptions chain, so every copy is alive at once. `avro_parser`
keeps it from quoting whole objects and arrays. These rules bound the rest of
what it quotes: every string in a name-like position (type references, names,
namespaces, aliases, enum symbols, logical types), and the values it would quote
whole (a field that is no object, symbols that are no list, a bad sort order or
enum default). The last three are avro's own rules, checked first here so the
message stays short; `fixed` sizes must fit a Java int, as Confluent's Java
parser requires, where the avro package takes any integer.

Nothing here decides validity beyond that: the avro package still parses
whatever passes.
"""

from __future__ import annotations

from typing import Any

from registry.limits import MAX_NAME_CHARS
from registry.strict_json import preview

_SORT_ORDERS = (None, "ascending", "descending", "ignore")
_NAME_KEYS = ("type", "name", "namespace", "logicalType")
_MAX_FIXED_SIZE = 2**31 - 1


class SchemaInvalid(ValueError):
    """The text is not a valid Avro schema; the message says why."""


def check(document: Any) -> None:
    """Raise `SchemaInvalid` if `document` breaks a bound; see the module doc."""
    pending = [document]
    while pending:
        node = pending.pop()
        if isinstance(node, str):
            _name_like(node, "type name")
        elif isinstance(node, list):
            pending.extend(node)
        elif isinstance(node, dict):
            pending.extend(_children(node))


def _children(node: dict[str, Any]) -> list[Any]:
    """Check one schema object; return the schemas nested directly in it."""
    for key in _NAME_KEYS:
        if isinstance(node.get(key), str):
            _name_like(node[key], key)
    _aliases(node)
    kind = node.get("type")
    if kind in ("record", "error"):
        return _fields(node.get("fields"))
    if kind == "enum":
        _enum(node)
    elif kind == "fixed":
        size = node.get("size")
        if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= _MAX_FIXED_SIZE:
            raise SchemaInvalid(f"fixed size must be an integer from 0 to {_MAX_FIXED_SIZE}")
    elif kind == "array" and "items" in node:
        return [node["items"]]
    elif kind == "map" and "values" in node:
        return [node["values"]]
    return []


def _fields(fields: Any) -> list[Any]:
    if not isinstance(fields, list):
        return []  # avro refuses it with a message that quotes nothing
    types = []
    for field in fields:
        if not isinstance(field, dict):
            raise SchemaInvalid("every record field must be a JSON object")
        if isinstance(field.get("name"), str):
            _name_like(field["name"], "field name")
        if field.get("order") not in _SORT_ORDERS:
            raise SchemaInvalid("a field's order must be ascending, descending or ignore")
        _aliases(field)
        if "type" in field:
            types.append(field["type"])
    return types


def _enum(node: dict[str, Any]) -> None:
    symbols = node.get("symbols")
    if not isinstance(symbols, list):
        raise SchemaInvalid("enum symbols must be a JSON array of strings")
    for symbol in symbols:
        if isinstance(symbol, str):
            _name_like(symbol, "enum symbol")
    if "default" in node and node["default"] not in symbols:
        raise SchemaInvalid("an enum default must be one of its symbols")


def _aliases(node: dict[str, Any]) -> None:
    aliases = node.get("aliases")
    if isinstance(aliases, list):
        for alias in aliases:
            if isinstance(alias, str):
                _name_like(alias, "alias")


def _name_like(text: str, what: str) -> None:
    if len(text) > MAX_NAME_CHARS:
        raise SchemaInvalid(
            f"{what} {preview(text)} is too long; at most {MAX_NAME_CHARS} characters are accepted"
        )
