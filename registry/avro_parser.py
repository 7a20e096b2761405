"""Parse a schema document with the avro package, with error messages of bounded size.

The avro parser quotes a refused node with `{node}`, and re-wraps a nested
refusal at every enclosing field, array and union, quoting that level's whole
subtree (for arrays, also every name defined so far). The exceptions chain, so
all those messages are alive at once: a 900 KB schema refused 24 records deep
made 260 MB of messages, a 1.3 MB one with 20,000 names under 100 arrays 959 MB.

The document handed to avro here is a copy whose objects, arrays and name table
print as short placeholders. The strings avro still quotes are bounded by
`schema_rules`. What avro builds from the copy is the same as from the original.
"""

from __future__ import annotations

import warnings
from collections.abc import KeysView
from typing import Any

import avro.errors
import avro.name
import avro.schema


class _QuietObject(dict[str, Any]):
    def __repr__(self) -> str:
        return f"<object of {len(self)} members>"


class _QuietArray(list[Any]):
    def __repr__(self) -> str:
        return f"<array of {len(self)} items>"


class _CountedKeys(KeysView[str]):
    def __repr__(self) -> str:
        return f"<{len(self)} names>"


class _QuietNameTable(dict[str, Any]):
    # avro only calls keys() on its name table to quote it in an error message.
    def keys(self) -> _CountedKeys:  # type: ignore[override]
        return _CountedKeys(self)


def parse(document: Any) -> avro.schema.Schema:
    """`avro.schema.parse` for an already decoded document; raises what avro raises."""
    names = avro.name.Names(validate_names=True)
    names.names = _QuietNameTable()
    with warnings.catch_warnings():
        # The spec says an unknown or invalid logical type is ignored and the
        # underlying type used; the avro package warns about it, which is noise here.
        warnings.simplefilter("ignore", avro.errors.IgnoredLogicalType)
        return avro.schema.make_avsc_object(_quiet(document), names)


def _quiet(node: Any) -> Any:
    if isinstance(node, dict):
        return _QuietObject((k, _quiet(v)) for k, v in node.items())
    if isinstance(node, list):
        return _QuietArray(_quiet(v) for v in node)
    return node
