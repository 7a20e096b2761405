"""Consumer lag: per partition and the group's total, as `sbp replay lag` reports it."""

from __future__ import annotations

from replay.lag import GroupLag, PartitionLag


def test_lag_is_the_log_end_minus_the_committed_offset() -> None:
    assert PartitionLag("votes.accepted", 0, committed=40, log_end=100).lag == 60
    assert PartitionLag("votes.accepted", 0, committed=100, log_end=100).lag == 0


def test_a_partition_never_committed_has_no_lag_and_stays_out_of_the_total() -> None:
    group = GroupLag(
        "g",
        "EMPTY",
        0,
        [
            PartitionLag("t", 1, committed=None, log_end=500),
            PartitionLag("t", 0, committed=90, log_end=100),
            PartitionLag("a", 3, committed=5, log_end=8),
        ],
    )
    assert group.total == 13
    described = group.describe()
    assert described["totalLag"] == 13
    assert [(p["topic"], p["partition"], p["lag"]) for p in described["partitions"]] == [
        ("a", 3, 3),
        ("t", 0, 10),
        ("t", 1, None),
    ]


def test_a_committed_offset_past_the_log_end_shows_as_negative_lag() -> None:
    # A topic recreated under a group: an anomaly to see, not to hide as zero.
    assert PartitionLag("t", 0, committed=120, log_end=100).lag == -20
