"""Verdicts of the registry's compatibility rules, one Avro resolution rule per pair.

Each pair is (old, new, backward, forward): `backward` says whether the new
schema can read data written with the old one, `forward` whether the old one can
read data written with the new. The expectation for each of the seven levels is
derived from those two, so every pair is judged at every level.
"""

from __future__ import annotations

import json
from typing import Any

import fastavro.schema
import pytest

from registry.canonical import SchemaInvalid, parse
from registry.compatibility import DEFAULT_LEVEL, Level, check, parse_level, why_unreadable


def schema(document: Any) -> Any:
    return parse(json.dumps(document))


def record(*fields: dict[str, Any], name: str = "R", **extra: Any) -> dict[str, Any]:
    return {"type": "record", "name": name, "fields": list(fields), **extra}


def field(name: str, type_: Any, **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": type_, **extra}


def enum(*symbols: str, **extra: Any) -> dict[str, Any]:
    return {"type": "enum", "name": "E", "symbols": list(symbols), **extra}


def one_field(type_: Any) -> dict[str, Any]:
    return record(field("f", type_))


DECIMAL_10_2 = {"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 2}
DECIMAL_10_3 = {"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 3}
INNER_INT = {"type": "record", "name": "Inner", "fields": [field("x", "int")]}
INNER_LONG = {"type": "record", "name": "Inner", "fields": [field("x", "long")]}
INNER_MORE = {"type": "record", "name": "Inner", "fields": [field("x", "int"), field("y", "int")]}

# (rule, old, new, new reads old (backward), old reads new (forward))
PAIRS: list[tuple[str, Any, Any, bool, bool]] = [
    ("identical", one_field("int"), one_field("int"), True, True),
    (
        "added field with default",
        record(field("a", "int")),
        record(field("a", "int"), field("b", "string", default="")),
        True,
        True,
    ),
    (
        "added field without default",
        record(field("a", "int")),
        record(field("a", "int"), field("b", "string")),
        False,
        True,
    ),
    (
        "removed field without default",
        record(field("a", "int"), field("b", "string")),
        record(field("a", "int")),
        True,
        False,
    ),
    (
        "removed field that had a default",
        record(field("a", "int"), field("b", "string", default="x")),
        record(field("a", "int")),
        True,
        True,
    ),
    ("promotion int to long", one_field("int"), one_field("long"), True, False),
    ("promotion int to float", one_field("int"), one_field("float"), True, False),
    ("promotion long to double", one_field("long"), one_field("double"), True, False),
    ("promotion float to double", one_field("float"), one_field("double"), True, False),
    ("promotion string to bytes", one_field("string"), one_field("bytes"), True, True),
    ("promotion bytes to string", one_field("bytes"), one_field("string"), True, True),
    ("no promotion long to int", one_field("long"), one_field("int"), False, True),
    ("no promotion double to float", one_field("double"), one_field("float"), False, True),
    ("int to string is no promotion", one_field("int"), one_field("string"), False, False),
    (
        "array items promoted",
        one_field({"type": "array", "items": "int"}),
        one_field({"type": "array", "items": "long"}),
        True,
        False,
    ),
    (
        "map values string to bytes",
        one_field({"type": "map", "values": "string"}),
        one_field({"type": "map", "values": "bytes"}),
        True,
        True,
    ),
    ("enum symbol added", one_field(enum("A", "B")), one_field(enum("A", "B", "C")), True, False),
    (
        "enum symbol added, old reader has an enum default",
        one_field(enum("A", "B", default="A")),
        one_field(enum("A", "B", "C")),
        True,
        True,
    ),
    ("enum symbol removed", one_field(enum("A", "B", "C")), one_field(enum("A", "B")), False, True),
    (
        "enum symbol removed, new reader has an enum default",
        one_field(enum("A", "B", "C")),
        one_field(enum("A", "B", default="A")),
        True,
        True,
    ),
    (
        "enum-typed field added with an enum default but no field default",
        record(field("a", "int")),
        record(field("a", "int"), field("e", enum("X", "Y", default="X"))),
        False,
        True,
    ),
    (
        "union branch added",
        one_field(["null", "string"]),
        one_field(["null", "string", "int"]),
        True,
        False,
    ),
    (
        "union branch removed",
        one_field(["null", "string", "int"]),
        one_field(["null", "string"]),
        False,
        True,
    ),
    (
        "non-union writer, union reader",
        one_field("string"),
        one_field(["null", "string"]),
        True,
        False,
    ),
    (
        "union writer, non-union reader",
        one_field(["null", "string"]),
        one_field("string"),
        False,
        True,
    ),
    (
        "field made nullable",
        record(field("a", "string")),
        record(field("a", ["null", "string"], default=None)),
        True,
        False,
    ),
    ("nested record field promoted", one_field(INNER_INT), one_field(INNER_LONG), True, False),
    (
        "nested record gains a field without default",
        one_field(INNER_INT),
        one_field(INNER_MORE),
        False,
        True,
    ),
    (
        "field renamed with alias",
        record(field("a", "int")),
        record(field("b", "int", aliases=["a"])),
        True,
        False,
    ),
    (
        "record renamed with alias",
        record(field("a", "int"), name="Old"),
        record(field("a", "int"), name="New", aliases=["Old"]),
        True,
        False,
    ),
    (
        # The spec resolves an unqualified alias in the type's namespace; the
        # avro checker alone would miss this one (see registry.compatibility).
        "record renamed with an unqualified alias in a namespace",
        record(field("a", "int"), name="Old", namespace="com.acme"),
        record(field("a", "int"), name="New", namespace="com.acme", aliases=["Old"]),
        True,
        False,
    ),
    (
        "record renamed without alias",
        record(field("a", "int"), name="Old"),
        record(field("a", "int"), name="New"),
        False,
        False,
    ),
    (
        "namespace change only (unqualified names match)",
        record(field("a", "int"), namespace="com.old"),
        record(field("a", "int"), namespace="com.new"),
        True,
        True,
    ),
    (
        "fixed size change",
        one_field({"type": "fixed", "name": "F", "size": 4}),
        one_field({"type": "fixed", "name": "F", "size": 8}),
        False,
        False,
    ),
    (
        "fixed renamed without alias",
        one_field({"type": "fixed", "name": "F", "size": 4}),
        one_field({"type": "fixed", "name": "G", "size": 4}),
        False,
        False,
    ),
    # The spec: decimals match only if scale and precision match; the avro
    # checker ignores logical types and would say True, True.
    ("decimal scale change", one_field(DECIMAL_10_2), one_field(DECIMAL_10_3), False, False),
    ("decimal unchanged", one_field(DECIMAL_10_2), one_field(DECIMAL_10_2), True, True),
]


def expected_at(level: Level, backward: bool, forward: bool) -> bool:
    return (backward or not level.backward) and (forward or not level.forward)


@pytest.mark.parametrize("level", list(Level), ids=str)
@pytest.mark.parametrize(
    ("old", "new", "backward", "forward"),
    [pytest.param(o, n, b, f, id=rule) for rule, o, n, b, f in PAIRS],
)
def test_pair_verdict_at_each_level(
    level: Level, old: Any, new: Any, backward: bool, forward: bool
) -> None:
    verdict = check(schema(new), [(1, schema(old))], level)
    assert verdict.is_compatible is expected_at(level, backward, forward)
    assert bool(verdict.messages) is not verdict.is_compatible


@pytest.mark.parametrize(
    ("old", "new", "backward", "forward"),
    [pytest.param(o, n, b, f, id=rule) for rule, o, n, b, f in PAIRS],
)
def test_pair_directions(old: Any, new: Any, backward: bool, forward: bool) -> None:
    assert (why_unreadable(schema(new), schema(old)) is None) is backward
    assert (why_unreadable(schema(old), schema(new)) is None) is forward


def test_missing_enum_field_reports_the_missing_default() -> None:
    old = schema(record(field("a", "int")))
    new = schema(record(field("a", "int"), field("e", enum("X", default="X"))))
    why = why_unreadable(new, old)
    assert why is not None
    assert "reader_field_missing_default_value" in why
    assert "'e'" in why


# -- transitive levels: a three-version history --------------------------------

V1 = record(field("a", "int"))
V2_WITH_DEFAULT = record(field("a", "int"), field("b", "string", default="x"))
V3_NO_DEFAULT = record(field("a", "int"), field("b", "string"))
T1_B = record(field("a", "int"), field("b", "string"))
T2_B_DEFAULT = record(field("a", "int"), field("b", "string", default=""))
T3_DROPPED = record(field("a", "int"))

# (history oldest first, new, {level: expected})
TRANSITIVE_CASES = [
    pytest.param(
        [V1, V2_WITH_DEFAULT],
        V3_NO_DEFAULT,
        {
            Level.NONE: True,
            Level.BACKWARD: True,  # v3 reads v2: v2 wrote b
            Level.BACKWARD_TRANSITIVE: False,  # v3 reads v1: v1 never wrote b
            Level.FORWARD: True,
            Level.FORWARD_TRANSITIVE: True,
            Level.FULL: True,
            Level.FULL_TRANSITIVE: False,
        },
        id="default dropped again after v2 added it",
    ),
    pytest.param(
        [T1_B, T2_B_DEFAULT],
        T3_DROPPED,
        {
            Level.NONE: True,
            Level.BACKWARD: True,
            Level.BACKWARD_TRANSITIVE: True,
            Level.FORWARD: True,  # v2 reads v3: b falls back to its default
            Level.FORWARD_TRANSITIVE: False,  # v1 reads v3: b has no default in v1
            Level.FULL: True,
            Level.FULL_TRANSITIVE: False,
        },
        id="field removed after v2 gave it a default",
    ),
    pytest.param(
        [one_field("int"), one_field("long")],
        one_field("long"),
        dict.fromkeys(Level, True)
        | {
            Level.FORWARD_TRANSITIVE: False,  # int v1 cannot read long
            Level.FULL_TRANSITIVE: False,
        },
        id="promotion already taken by v2",
    ),
]


@pytest.mark.parametrize(("history", "new", "expected"), TRANSITIVE_CASES)
@pytest.mark.parametrize("level", list(Level), ids=str)
def test_transitive_history(
    level: Level, history: list[Any], new: Any, expected: dict[Level, bool]
) -> None:
    previous = [(i + 1, schema(s)) for i, s in enumerate(history)]
    verdict = check(schema(new), previous, level)
    assert verdict.is_compatible is expected[level]


def test_transitive_messages_name_the_version() -> None:
    previous = [(1, schema(V1)), (2, schema(V2_WITH_DEFAULT))]
    verdict = check(schema(V3_NO_DEFAULT), previous, Level.BACKWARD_TRANSITIVE)
    assert len(verdict.messages) == 1
    assert "version 1" in verdict.messages[0]


def test_empty_history_accepts_anything() -> None:
    for level in Level:
        assert check(schema(one_field("int")), [], level).is_compatible


# -- levels ----------------------------------------------------------------------


def test_default_level_is_backward() -> None:
    assert DEFAULT_LEVEL is Level.BACKWARD


@pytest.mark.parametrize("text", ["backward", "Full_Transitive", " NONE "])
def test_parse_level_is_case_insensitive(text: str) -> None:
    assert parse_level(text) is Level(text.strip().upper())


@pytest.mark.parametrize("text", ["", "SIDEWAYS", None, 3])
def test_parse_level_refuses_unknown(text: object) -> None:
    with pytest.raises(ValueError):
        parse_level(text)


# -- canonical form and identity -------------------------------------------------

COMPACT = '{"type":"record","name":"R","namespace":"n","fields":[{"name":"a","type":"int"}]}'
SAME_SCHEMA_SPELLINGS = [
    COMPACT,
    # whitespace
    '{ "type" : "record",\n  "name" : "R", "namespace": "n",\n'
    '  "fields" : [ { "name" : "a", "type" : "int" } ] }',
    # documentation
    '{"type":"record","name":"R","namespace":"n","doc":"a record",'
    '"fields":[{"name":"a","type":"int","doc":"a field"}]}',
    # attribute order
    '{"fields":[{"type":"int","name":"a"}],"namespace":"n","name":"R","type":"record"}',
    # full name instead of a namespace attribute; primitive spelled as an object
    '{"type":"record","name":"n.R","fields":[{"name":"a","type":{"type":"int"}}]}',
]


@pytest.mark.parametrize("text", SAME_SCHEMA_SPELLINGS)
def test_spellings_of_one_schema_share_canonical_form_and_identity(text: str) -> None:
    reference = parse(COMPACT)
    parsed = parse(text)
    assert parsed.canonical_form == reference.canonical_form
    assert (
        parsed.canonical_form
        == '{"name":"n.R","type":"record","fields":[{"name":"a","type":"int"}]}'
    )
    assert parsed.fingerprint == reference.fingerprint
    assert parsed.text == text


@pytest.mark.parametrize(
    ("first", "second"),
    [
        pytest.param(
            record(field("a", "int", default=1)), record(field("a", "int", default=2)), id="default"
        ),
        pytest.param(
            one_field("long"),
            one_field({"type": "long", "logicalType": "timestamp-millis"}),
            id="logical type",
        ),
        pytest.param(
            record(field("a", "int")), record(field("a", "int", aliases=["b"])), id="field alias"
        ),
        pytest.param(
            one_field(enum("A", "B")), one_field(enum("A", "B", default="A")), id="enum default"
        ),
    ],
)
def test_resolution_attributes_keep_schemas_apart(first: Any, second: Any) -> None:
    # Same parsing canonical form, but a reader would behave differently: they
    # must not share an id (see registry.canonical).
    a, b = schema(first), schema(second)
    assert a.canonical_form == b.canonical_form
    assert a.fingerprint != b.fingerprint


@pytest.mark.parametrize(
    "document",
    [
        "int",
        ["null", "string"],
        record(field("a", "int", default=1), field("b", enum("A", default="A")), namespace="x.y"),
        record(
            field("inner", {"type": "record", "name": "I", "fields": [field("v", "long")]}),
            field("again", "I"),
            field("fx", {"type": "fixed", "name": "F", "size": 2, "aliases": ["G"]}),
            field("m", {"type": "map", "values": {"type": "array", "items": "F"}}),
            namespace="outer",
        ),
    ],
)
def test_normalized_form_keeps_the_parsing_canonical_form(document: Any) -> None:
    parsed = schema(document)
    assert fastavro.schema.to_parsing_canonical_form(json.loads(parsed.normalized_form)) == (
        parsed.canonical_form
    )
    assert parse(parsed.normalized_form).fingerprint == parsed.fingerprint


def test_aliases_are_qualified_in_the_normalized_form() -> None:
    parsed = schema(record(field("a", "int"), name="New", namespace="com.acme", aliases=["Old"]))
    assert json.loads(parsed.normalized_form)["aliases"] == ["com.acme.Old"]


def test_unknown_logical_type_is_ignored_not_refused() -> None:
    parsed = schema({"type": "string", "logicalType": "not-a-real-type"})
    assert parsed.canonical_form == '"string"'


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("{", id="not json"),
        pytest.param("", id="empty"),
        pytest.param("42", id="a number"),
        pytest.param("{}", id="no type"),
        pytest.param('"nosuchtype"', id="unknown type"),
        pytest.param(json.dumps(record(name="1bad")), id="bad name"),
        pytest.param(
            json.dumps(record(field("a", "int"), field("a", "long"))), id="duplicate field"
        ),
        pytest.param(json.dumps(enum("A", "A")), id="duplicate symbol"),
        pytest.param(json.dumps(enum("A", default="Z")), id="enum default not a symbol"),
        pytest.param('{"type":"fixed","name":"F"}', id="fixed without size"),
        pytest.param('["int","int"]', id="duplicate union branch"),
        pytest.param('["null",["int"]]', id="union in union"),
        pytest.param(json.dumps(one_field("Undefined")), id="undefined reference"),
        pytest.param(json.dumps(record(field("a", "int", default="x"))), id="int default"),
        pytest.param(json.dumps(record(field("a", "int", default=2**31))), id="int overflow"),
        pytest.param(
            json.dumps(record(field("a", ["null", "int"], default=3))),
            id="union default not the first branch",
        ),
        pytest.param(
            json.dumps(
                record(field("a", {"type": "fixed", "name": "F", "size": 2}, default="abc"))
            ),
            id="fixed default of the wrong length",
        ),
        pytest.param(
            json.dumps(record(field("a", {"type": "array", "items": "int"}, default=["x"]))),
            id="array default of the wrong items",
        ),
        pytest.param(
            json.dumps(record(field("a", [], default=None))),
            id="a default for an empty union (found by the registry fuzz test)",
        ),
    ],
)
def test_invalid_schemas_are_refused(text: str) -> None:
    with pytest.raises(SchemaInvalid):
        parse(text)


@pytest.mark.parametrize(
    "document",
    [
        record(field("a", ["null", "int"], default=None)),
        record(field("a", ["int", "null"], default=3)),
        record(field("a", "bytes", default="\u00ff\u0000")),
        record(field("a", "double", default=1)),
        record(
            field(
                "r",
                record(field("x", "int"), field("y", "int", default=0), name="S"),
                default={"x": 1},
            )
        ),
    ],
)
def test_valid_defaults_are_accepted(document: Any) -> None:
    schema(document)
