"""streams/topics.py against docs/topics.md, and the rules the declarations must keep."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from streams import topics
from streams.topics import ALL_TOPICS, TopicSpec

DOC = Path(__file__).resolve().parents[2] / "docs" / "topics.md"
DAY_MS = 86_400_000
_CELL_SPLIT = re.compile(r"(?<!\\)\|")  # a `\|` inside a cell is not a column break
_TOPIC_CELL = re.compile(r"^`([^`]+)`$")
_SEPARATOR_CELL = re.compile(r"^:?-{3,}:?$")


def cells(line: str) -> list[str]:
    return [c.strip() for c in _CELL_SPLIT.split(line.strip().strip("|"))]


def documented_partitions(text: str) -> dict[str, list[str]]:
    """Topic name → the `partitions` cell of every catalogue row naming it.

    Catalogue tables are those whose header has `topic` and `partitions` columns;
    their rows count when the first cell is a backticked topic name.
    """
    lines = text.splitlines()
    found: dict[str, list[str]] = {}
    column: int | None = None
    for i, line in enumerate(lines):
        if not line.lstrip().startswith("|"):
            column = None
            continue
        row = cells(line)
        following = lines[i + 1] if i + 1 < len(lines) else ""
        if following.lstrip().startswith("|") and all(
            _SEPARATOR_CELL.match(c) for c in cells(following)
        ):
            header = [c.lower() for c in row]
            column = (
                header.index("partitions")
                if header and header[0] == "topic" and "partitions" in header
                else None
            )
            continue
        match = _TOPIC_CELL.match(row[0])
        if column is not None and match and len(row) > column:
            found.setdefault(match.group(1), []).append(row[column])
    return found


def test_the_parser_reads_a_catalogue_table() -> None:
    sample = "\n".join(
        [
            "Intro with `votes.raw` mentioned in prose.",
            "",
            "| topic | key | partitions | cleanup / retention | subject strategy |",
            "|---|---|:---:|---|---|",
            "| `votes.raw` | `tenantId\\|voteUuid` | 4 | delete, 14 d | TopicNameStrategy |",
            "| `x.y` | k | 12 | compact | - |",
            "",
            "| subject | versions |",
            "|---|---|",
            "| `votes.raw-value` | 2 |",
        ]
    )
    assert documented_partitions(sample) == {"votes.raw": ["4"], "x.y": ["12"]}


@pytest.fixture(scope="module")
def catalogue() -> dict[str, list[str]]:
    assert DOC.is_file(), f"{DOC} is missing: every topic in streams/topics.py must be documented"
    return documented_partitions(DOC.read_text())


@pytest.mark.parametrize("spec", ALL_TOPICS, ids=lambda s: s.name)
def test_every_declared_topic_is_documented_once_with_its_partition_count(
    spec: TopicSpec, catalogue: dict[str, list[str]]
) -> None:
    assert spec.name in catalogue, f"docs/topics.md has no row for `{spec.name}`"
    rows = catalogue[spec.name]
    assert len(rows) == 1, f"`{spec.name}` has {len(rows)} rows"
    counts = re.findall(r"\d+", rows[0])
    assert counts, f"`{spec.name}`: partitions cell {rows[0]!r} holds no number"
    assert int(counts[0]) == spec.partitions


def test_the_doc_lists_no_undeclared_topic(catalogue: dict[str, list[str]]) -> None:
    assert set(catalogue) - {t.name for t in ALL_TOPICS} == set()


def test_topic_names_are_unique() -> None:
    names = [t.name for t in ALL_TOPICS]
    assert len(names) == len(set(names))


def test_every_declared_spec_is_in_all_topics() -> None:
    declared = {v.name for v in vars(topics).values() if isinstance(v, TopicSpec)}
    assert declared == {t.name for t in ALL_TOPICS}


def test_changelog_name_follows_faust() -> None:
    assert topics.VOTE_STATE_CHANGELOG.name == "sbp-worker-vote-state-changelog"


def test_the_state_is_co_partitioned_with_its_input() -> None:
    assert topics.VOTE_STATE_CHANGELOG.partitions == topics.VOTES_RAW.partitions


def test_vote_topics_are_sized_for_growth() -> None:
    # 24 divides among 1, 2, 3, 4, 6, 8, 12 and 24 workers (docs/topics.md).
    for spec in (topics.VOTES_RAW, topics.VOTES_ACCEPTED, topics.VOTES_DLQ):
        assert spec.partitions >= 24


def test_the_state_changelog_is_compacted_only() -> None:
    spec = topics.VOTE_STATE_CHANGELOG
    assert spec.retention_ms is None
    assert spec.config()["cleanup.policy"] == "compact"
    assert "retention.ms" not in spec.config()


def test_votes_raw_retention_is_the_shared_constant() -> None:
    assert topics.VOTES_RAW_RETENTION_MS == 14 * DAY_MS
    assert topics.VOTES_RAW.retention_ms == topics.VOTES_RAW_RETENTION_MS
    assert topics.VOTES_RAW.config() == {
        "cleanup.policy": "delete",
        "retention.ms": str(14 * DAY_MS),
    }


def test_vote_topics_are_keyed_by_zone() -> None:
    # The engine moved votes.raw to the zone key (the brief allows it; docs/topics.md
    # says why): one partition holds a zone's dedup entries, buckets and votes.
    assert topics.VOTES_RAW.key == "tenantId|buildingId|zoneId"
    assert topics.VOTES_ACCEPTED.key == "tenantId|buildingId|zoneId"
