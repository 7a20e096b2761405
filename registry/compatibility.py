"""Compatibility levels and verdicts (pure: no I/O).

A verdict comes from real Avro schema resolution, the avro package's
`ReaderWriterCompatibilityChecker`, asked "can `reader` read what `writer`
wrote?". BACKWARD asks it with the new schema as reader, FORWARD with the
previous one, FULL both ways; the *_TRANSITIVE levels ask against every live
version, the others against the latest only.

Where the checker departs from the Avro specification it is corrected here,
and the tests pin each case:

* A reader field missing from the writer, whose *type* is an enum with a
  default, is compared against the whole writer record: the verdict is right
  (incompatible) but the reason says "enum vs record". An enum default only
  covers unknown symbols; it is no field default. We report the missing default.
* Decimals: the spec says two decimal schemas match only if scale and
  precision match; the checker ignores logical types and accepts any pair.
  (Confluent's Java checker ignores them too, so here such a change is refused
  where Confluent would accept it: a changed scale silently rescales values.)
* Unqualified reader aliases never match (the checker compares the writer's
  full name with the alias as written); `canonical` qualifies aliases first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import avro.compatibility as ac
import avro.schema

from registry.canonical import AvroSchema


class Level(StrEnum):
    NONE = "NONE"
    BACKWARD = "BACKWARD"
    BACKWARD_TRANSITIVE = "BACKWARD_TRANSITIVE"
    FORWARD = "FORWARD"
    FORWARD_TRANSITIVE = "FORWARD_TRANSITIVE"
    FULL = "FULL"
    FULL_TRANSITIVE = "FULL_TRANSITIVE"

    @property
    def backward(self) -> bool:
        return self in (
            Level.BACKWARD,
            Level.BACKWARD_TRANSITIVE,
            Level.FULL,
            Level.FULL_TRANSITIVE,
        )

    @property
    def forward(self) -> bool:
        return self in (Level.FORWARD, Level.FORWARD_TRANSITIVE, Level.FULL, Level.FULL_TRANSITIVE)

    @property
    def transitive(self) -> bool:
        return self.value.endswith("_TRANSITIVE")


DEFAULT_LEVEL = Level.BACKWARD


def parse_level(text: object) -> Level:
    """Case-insensitive, as Confluent accepts; raises ValueError otherwise."""
    if not isinstance(text, str):
        raise ValueError(f"compatibility level must be a string, not {text!r}")
    return Level(text.strip().upper())


@dataclass(frozen=True)
class Verdict:
    is_compatible: bool
    messages: tuple[str, ...] = ()


def why_unreadable(reader: AvroSchema, writer: AvroSchema) -> str | None:
    """Why `reader` cannot read data written with `writer`; None if it can."""
    result = _Checker().get_compatibility(  # type: ignore[no-untyped-call]
        reader.parsed, writer.parsed
    )
    if result.compatibility is not ac.SchemaCompatibilityType.incompatible:
        return None
    # The checker keeps kinds, locations and messages as separate collections,
    # and merging adds the root "/" to every location set; report them side by
    # side rather than pair them up by guesswork.
    kinds = ", ".join(sorted({i.value for i in result.incompatibilities})) or "incompatible"
    locations = ", ".join(sorted(result.locations - {"/"}) or ["/"])
    details = "; ".join(sorted(result.messages))
    return f"{kinds} at {locations}" + (f": {details}" if details else "")


def check(
    new: AvroSchema,
    previous: Sequence[tuple[int, AvroSchema]],
    level: Level,
) -> Verdict:
    """Judge `new` against a subject's live history, oldest first, at `level`."""
    if level is Level.NONE or not previous:
        return Verdict(True)
    against = previous if level.transitive else previous[-1:]
    messages: list[str] = []
    for version, old in against:
        if level.backward and (why := why_unreadable(new, old)):
            messages.append(f"new schema cannot read data written by version {version}: {why}")
        if level.forward and (why := why_unreadable(old, new)):
            messages.append(f"version {version} cannot read data written by the new schema: {why}")
    return Verdict(not messages, tuple(messages))


class _Checker(ac.ReaderWriterCompatibilityChecker):
    """The avro checker with its departures from the spec corrected."""

    def calculate_compatibility(
        self, reader: avro.schema.Schema, writer: avro.schema.Schema, location: list[str]
    ) -> ac.SchemaCompatibilityResult:
        decimal_types = (avro.schema.BytesDecimalSchema, avro.schema.FixedDecimalSchema)
        if isinstance(reader, decimal_types) and isinstance(writer, decimal_types):
            r, w = _decimal(reader), _decimal(writer)
            if r != w:
                return ac.incompatible(
                    ac.SchemaIncompatibilityType.type_mismatch,
                    f"reader decimal{r} cannot read writer decimal{w}",
                    location,
                )
        return super().calculate_compatibility(reader, writer, location)

    def check_reader_writer_record_fields(
        self,
        reader: avro.schema.RecordSchema,
        writer: avro.schema.RecordSchema,
        location: list[str],
    ) -> ac.SchemaCompatibilityResult:
        result = ac.CompatibleResult
        for i, reader_field in enumerate(reader.fields):
            here = [*location, "fields", str(i)]
            writer_field = ac.lookup_writer_field(writer_schema=writer, reader_field=reader_field)
            if writer_field is not None:
                inner = self.get_compatibility(reader_field.type, writer_field.type, "type", here)
                result = ac.merge(result, inner)
            elif not reader_field.has_default:
                missing = ac.incompatible(
                    ac.SchemaIncompatibilityType.reader_field_missing_default_value,
                    f"reader field {reader_field.name!r} has no default and the writer lacks it",
                    here,
                )
                result = ac.merge(result, missing)
        return result


def _decimal(schema: Any) -> tuple[int, int]:
    return (int(schema.get_prop("precision")), int(schema.get_prop("scale") or 0))
