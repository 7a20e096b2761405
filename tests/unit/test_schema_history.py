"""Schema governance: each subject's history under schemas/avro passes the registry's own check.

The registry refuses a new version that breaks the subject's compatibility level,
so a history the checker refuses could never be registered. Checking the files
here catches that before a deploy does. The negative controls prove the check
can refuse.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from registry.canonical import AvroSchema, parse
from registry.compatibility import Level, check, parse_level
from schemas.catalog import SUBJECT_COMPATIBILITY, SchemaVersion, subjects
from streams.topics import ALL_TOPICS

HISTORY = subjects()


def as_schema(document: Any) -> AvroSchema:
    return parse(json.dumps(document))


def history(subject: str) -> list[tuple[int, AvroSchema]]:
    return [(v.version, parse(v.text)) for v in HISTORY[subject]]


def latest_document(subject: str) -> dict[str, Any]:
    return copy.deepcopy(HISTORY[subject][-1].parsed)


def field_names(document: dict[str, Any]) -> list[str]:
    return [f["name"] for f in document["fields"]]


def test_the_vote_subjects_are_on_disk() -> None:
    assert {"votes.raw-value", "votes.accepted-value", "votes.dlq-value"} <= set(HISTORY)
    # Both app generations stay producible: vote v1 and vote v2.
    assert [v.version for v in HISTORY["votes.raw-value"]][:2] == [1, 2]


def test_subjects_are_kept_backward_transitive() -> None:
    assert parse_level(SUBJECT_COMPATIBILITY) is Level.BACKWARD_TRANSITIVE


def test_every_subject_belongs_to_a_declared_topic() -> None:
    topics = {t.name for t in ALL_TOPICS}
    for subject in HISTORY:
        topic, _, suffix = subject.rpartition("-")
        assert suffix in ("key", "value"), subject
        assert topic in topics, f"{subject}: no declared topic {topic!r}"


@pytest.mark.parametrize(
    "version",
    [v for vs in HISTORY.values() for v in vs],
    ids=lambda v: f"{v.subject}/v{v.version}",
)
def test_every_version_is_a_valid_avro_record(version: SchemaVersion) -> None:
    schema = parse(version.text)  # raises SchemaInvalid otherwise
    assert version.parsed["type"] == "record"
    assert schema.fingerprint


@pytest.mark.parametrize("subject", sorted(HISTORY))
def test_each_version_is_compatible_with_every_earlier_one(subject: str) -> None:
    versions = history(subject)
    for i, (number, schema) in enumerate(versions):
        verdict = check(schema, versions[:i], Level.BACKWARD_TRANSITIVE)
        assert verdict.is_compatible, f"{subject} v{number}: {verdict.messages}"


def test_raw_v2_reads_v1_records_as_thermal_v1_votes() -> None:
    # Why v2 can read v1: the fields v2 adds have defaults that say "a v1 vote".
    fields = {f["name"]: f for f in latest_document("votes.raw-value")["fields"]}
    v1_names = set(field_names(HISTORY["votes.raw-value"][0].parsed))
    added = set(fields) - v1_names
    assert added == {"kind", "preference"}
    assert fields["kind"]["default"] == "thermal"
    assert fields["preference"]["default"] is None
    assert fields["schemaVersion"]["default"] == 1


# -- negative controls ----------------------------------------------------------


def refusal(subject: str, v3: dict[str, Any], level: Level = Level.BACKWARD_TRANSITIVE) -> str:
    verdict = check(as_schema(v3), history(subject), level)
    assert not verdict.is_compatible
    return " ".join(verdict.messages)


def test_a_v3_that_changes_value_to_string_is_refused() -> None:
    v3 = latest_document("votes.raw-value")
    for f in v3["fields"]:
        if f["name"] == "value":
            f["type"] = "string"
    messages = refusal("votes.raw-value", v3)
    assert "version 1" in messages
    assert "version 2" in messages


def test_a_v3_that_adds_a_field_without_default_is_refused() -> None:
    v3 = latest_document("votes.raw-value")
    v3["fields"].append({"name": "floorId", "type": "string"})
    assert "floorId" in refusal("votes.raw-value", v3)


def test_a_v3_that_drops_the_default_v1_records_rely_on_is_refused_transitively() -> None:
    v3 = latest_document("votes.raw-value")
    for f in v3["fields"]:
        if f["name"] == "kind":
            del f["default"]
    # v2 records all carry `kind`, so the latest-only check lets this through ...
    assert check(as_schema(v3), history("votes.raw-value"), Level.BACKWARD).is_compatible
    # ... but v1 records still on the topic have no `kind` to read.
    messages = refusal("votes.raw-value", v3)
    assert "version 1" in messages
    assert "version 2" not in messages


def test_a_v2_of_the_accepted_vote_that_renames_a_required_field_is_refused() -> None:
    v2 = latest_document("votes.accepted-value")
    for f in v2["fields"]:
        if f["name"] == "userRef":
            f["name"] = "voterRef"
    assert "voterRef" in refusal("votes.accepted-value", v2)


def test_removing_a_field_is_backward_compatible() -> None:
    # The contrast that keeps the controls honest: a reader ignores writer fields
    # it does not know, so dropping `late` is readable (consumers that need it are
    # protected by their own validation, not by the registry).
    v3 = latest_document("votes.raw-value")
    v3["fields"] = [f for f in v3["fields"] if f["name"] != "late"]
    verdict = check(as_schema(v3), history("votes.raw-value"), Level.BACKWARD_TRANSITIVE)
    assert verdict.is_compatible, verdict.messages
    # Old readers, though, could not read it: the forward direction refuses it.
    assert not check(as_schema(v3), history("votes.raw-value"), Level.FORWARD).is_compatible
