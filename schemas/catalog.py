"""The schema files under schemas/avro/, one folder per registry subject.

A subject's folder holds its whole version history as `v1.avsc`, `v2.avsc`, …;
they are registered in that order, so the registry's version numbers follow the
files. Every subject is kept BACKWARD_TRANSITIVE: a consumer on the newest schema
can read everything still on its topic.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka.schema_registry import Schema, SchemaRegistryClient

AVRO_DIR = Path(__file__).resolve().parent / "avro"
SUBJECT_COMPATIBILITY = "BACKWARD_TRANSITIVE"
_VERSION_FILE = re.compile(r"^v(\d+)\.avsc$")


@dataclass(frozen=True)
class SchemaVersion:
    subject: str
    version: int
    path: Path

    @property
    def text(self) -> str:
        return self.path.read_text()

    @property
    def parsed(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self.text)
        return value


def value_subject(topic: str) -> str:
    """The TopicNameStrategy subject of a topic's values."""
    return f"{topic}-value"


def subjects(avro_dir: Path = AVRO_DIR) -> dict[str, list[SchemaVersion]]:
    """Every subject with its versions in order; gaps in numbering are refused."""
    found: dict[str, list[SchemaVersion]] = {}
    for folder in sorted(p for p in avro_dir.iterdir() if p.is_dir()):
        versions = []
        for path in folder.iterdir():
            match = _VERSION_FILE.match(path.name)
            if match:
                versions.append(SchemaVersion(folder.name, int(match.group(1)), path))
        versions.sort(key=lambda v: v.version)
        if [v.version for v in versions] != list(range(1, len(versions) + 1)):
            raise ValueError(f"{folder}: versions must be v1.avsc, v2.avsc, … without gaps")
        found[folder.name] = versions
    return found


def latest(subject: str) -> SchemaVersion:
    return subjects()[subject][-1]


def register_all(client: SchemaRegistryClient) -> dict[str, list[int]]:
    """Register every version of every subject, idempotently; returns schema ids."""
    ids: dict[str, list[int]] = {}
    for subject, versions in subjects().items():
        client.set_compatibility(subject_name=subject, level=SUBJECT_COMPATIBILITY)
        ids[subject] = [
            client.register_schema(subject, Schema(v.text, schema_type="AVRO")) for v in versions
        ]
    return ids
