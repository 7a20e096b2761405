"""Bounds on what parsing one schema may cost: `schema_rules`, `avro_parser`,
the size-bounded parse cache, and the cut on error messages."""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import avro.schema
import pytest

from registry import avro_parser, canonical
from registry.errors import InvalidSchema
from registry.limits import MAX_MESSAGE_CHARS, MAX_NAME_CHARS, SCHEMA_CACHE_CHARS
from registry.schema_cache import TextCache
from registry.schema_rules import SchemaInvalid, check

SCHEMA_FILES = sorted(Path(__file__).parents[2].glob("schemas/avro/*/*.avsc"))
RICH: dict[str, Any] = {
    "type": "record",
    "name": "Rich",
    "namespace": "sbp.test",
    "aliases": ["Old"],
    "fields": [
        {"name": "id", "type": {"type": "string", "logicalType": "uuid"}, "order": "descending"},
        {
            "name": "kind",
            "type": {"type": "enum", "name": "Kind", "symbols": ["A", "B"], "default": "A"},
        },
        {"name": "again", "type": "Kind", "aliases": ["kind2"]},
        {"name": "tags", "type": {"type": "array", "items": ["null", "string"]}},
        {
            "name": "money",
            "type": {
                "type": "fixed",
                "name": "Money",
                "size": 8,
                "logicalType": "decimal",
                "precision": 10,
                "scale": 2,
            },
        },
        {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}, "default": 0},
        {"name": "attrs", "type": {"type": "map", "values": "double"}, "doc": "free text"},
    ],
}


def peak_mib(action: Callable[[], object]) -> float:
    tracemalloc.start()
    try:
        action()
    except SchemaInvalid:
        pass
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak / 2**20


# -- the rules pass real schemas ---------------------------------------------------


@pytest.mark.parametrize("path", SCHEMA_FILES, ids=lambda p: p.parent.name)
def test_project_schemas_pass(path: Path) -> None:
    text = path.read_text()
    check(json.loads(text))
    canonical.parse(text)


def test_a_rich_schema_passes_and_parses_as_avro_would() -> None:
    check(RICH)
    text = json.dumps(RICH)
    assert avro_parser.parse(RICH) == avro.schema.parse(text)
    assert str(avro_parser.parse(RICH)) == str(avro.schema.parse(text))


def test_project_schemas_parse_as_avro_would() -> None:
    assert SCHEMA_FILES
    for path in SCHEMA_FILES:
        text = path.read_text()
        assert str(avro_parser.parse(json.loads(text))) == str(avro.schema.parse(text))


# -- the rules refuse what avro would quote whole ----------------------------------


def _record(field: dict[str, Any]) -> dict[str, Any]:
    return {"type": "record", "name": "R", "fields": [field]}


LONG = "N" * (MAX_NAME_CHARS + 1)


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        (LONG, "type name"),
        ({"type": "record", "name": LONG, "fields": []}, "name"),
        ({"type": "record", "name": "R", "namespace": LONG, "fields": []}, "namespace"),
        ({"type": "record", "name": "R", "aliases": [LONG], "fields": []}, "alias"),
        (_record({"name": LONG, "type": "int"}), "field name"),
        (_record({"name": "f", "type": LONG}), "type name"),
        (_record({"name": "f", "type": "int", "aliases": [LONG]}), "alias"),
        (_record({"name": "f", "type": {"type": "array", "items": LONG}}), "type name"),
        (_record({"name": "f", "type": {"type": "map", "values": ["null", LONG]}}), "type name"),
        ({"type": LONG}, "type"),
        ({"type": "string", "logicalType": LONG}, "logicalType"),
        ({"type": "enum", "name": "E", "symbols": [LONG]}, "enum symbol"),
        ({"type": "enum", "name": "E", "symbols": "ABC" * 100_000}, "array of strings"),
        (
            {"type": "enum", "name": "E", "symbols": ["A"], "default": "x" * 100_000},
            "one of its symbols",
        ),
        ({"type": "record", "name": "R", "fields": ["x" * 100_000]}, "JSON object"),
        (_record({"name": "f", "type": "int", "order": "x" * 100_000}), "order"),
        ({"type": "fixed", "name": "F", "size": 2**31}, "fixed size"),
        ({"type": "fixed", "name": "F", "size": True}, "fixed size"),
        ({"type": "fixed", "name": "F", "size": -1}, "fixed size"),
    ],
)
def test_rules_refuse_with_a_short_message(document: Any, reason: str) -> None:
    with pytest.raises(SchemaInvalid, match=reason) as refused:
        check(document)
    assert len(str(refused.value)) < 200
    # And the whole parse refuses it too, as briefly.
    with pytest.raises(SchemaInvalid) as parsed:
        canonical.parse(json.dumps(document))
    assert len(str(parsed.value)) < 400


def test_names_at_the_bound_pass() -> None:
    name = "N" * MAX_NAME_CHARS
    check({"type": "record", "name": name, "fields": [{"name": name, "type": "int"}]})


# -- avro's nested errors stay small -------------------------------------------------


def _nested_records(leaf: dict[str, Any], levels: int) -> dict[str, Any]:
    schema = leaf
    for i in range(levels):
        schema = {"type": "record", "name": f"R{i}", "fields": [{"name": "f", "type": schema}]}
    return schema


def test_a_deep_error_under_a_huge_doc_stays_small() -> None:
    # The avro package alone: 260 MB of chained messages for this 900 KB text.
    leaf = {
        "type": "record",
        "name": "Leaf",
        "doc": "x" * 900_000,
        "fields": [{"name": "f", "type": "nosuchtype"}],
    }
    text = json.dumps(_nested_records(leaf, 24))
    assert peak_mib(lambda: canonical.parse(text)) < 20
    with pytest.raises(SchemaInvalid) as refused:
        canonical.parse(text)
    assert len(str(refused.value)) < 10_000


def test_a_deep_array_error_does_not_quote_every_name() -> None:
    # Each enclosing array used to quote every name defined so far, and the
    # messages chain: quadratic in depth times names.
    fixed = [
        {"name": f"a{i}", "type": {"type": "fixed", "name": f"F{i}", "size": 1}}
        for i in range(3000)
    ]
    items: Any = "nosuch"
    for _ in range(90):
        items = {"type": "array", "items": items}
    schema = {"type": "record", "name": "M", "fields": [*fixed, {"name": "g", "type": items}]}
    text = json.dumps(schema)
    assert peak_mib(lambda: canonical.parse(text)) < 40
    with pytest.raises(SchemaInvalid, match="3001 names"):
        canonical.parse(text)


def test_avro_errors_of_other_types_become_schema_invalid() -> None:
    # An unhashable logicalType makes the avro package raise a TypeError.
    with pytest.raises(SchemaInvalid):
        canonical.parse('{"type": "int", "logicalType": {"a": 1}}')


# -- the parse cache -----------------------------------------------------------------


def test_cache_is_bounded_by_total_text() -> None:
    cache: TextCache[int] = TextCache(max_chars=10, max_entries=100)
    cache.put("aaaa", 1)
    cache.put("bbbb", 2)
    assert cache.get("aaaa") == 1  # now the most recent
    cache.put("cccc", 3)  # 12 characters: the least recent, bbbb, goes
    assert (cache.get("bbbb"), cache.get("aaaa"), cache.get("cccc")) == (None, 1, 3)
    assert cache.chars == 8
    cache.put("x" * 11, 4)  # over the whole budget: not cached, nothing evicted
    assert (len(cache), cache.get("x" * 11)) == (2, None)


def test_cache_is_bounded_by_count() -> None:
    cache: TextCache[int] = TextCache(max_chars=1000, max_entries=2)
    for i, key in enumerate(["a", "b", "c"]):
        cache.put(key, i)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (None, 1, 2)
    cache.put("b", 5)
    assert (len(cache), cache.chars, cache.get("b")) == (2, 2, 5)


def test_parsing_many_large_schemas_keeps_the_cache_in_budget() -> None:
    doc = "d" * 200_000
    for i in range(15):  # 3 MB of schema text
        canonical.parse(json.dumps({**RICH, "name": f"Big{i}", "doc": doc}))
    assert canonical._CACHE.chars <= SCHEMA_CACHE_CHARS


# -- error messages --------------------------------------------------------------------


def test_error_messages_are_cut() -> None:
    error = InvalidSchema("x" * 100_000)
    assert len(error.message) < MAX_MESSAGE_CHARS + 50
    assert error.message.endswith(f"({100_000 - MAX_MESSAGE_CHARS} more characters cut)")
    assert error.to_body()["message"] == error.message
    assert InvalidSchema("short").message == "short"
