"""Which zones are published when: once per flush after a vote, all active ones each minute."""

from __future__ import annotations

from streams.tables.zone_activity import ZoneActivity

M = 29_549_520  # an arbitrary "now" minute
A = "acme|hq|3F-East"
B = "acme|hq|3F-West"


def test_nothing_touched_nothing_due() -> None:
    assert ZoneActivity().due(M) == {}


def test_a_touched_zone_is_due_once_then_not_again_in_the_same_minute() -> None:
    activity = ZoneActivity()
    activity.touch(A, "thermal", M)
    assert activity.due(M) == {A: ["thermal"]}
    assert activity.due(M) == {}
    assert activity.due(M) == {}


def test_touching_again_in_the_same_minute_makes_it_due_again() -> None:
    activity = ZoneActivity()
    activity.touch(A, "thermal", M)
    activity.due(M)
    activity.touch(A, "noise", M)
    assert activity.due(M) == {A: ["noise", "thermal"]}


def test_many_votes_between_flushes_coalesce_into_one_entry() -> None:
    activity = ZoneActivity()
    for _ in range(50):
        activity.touch(A, "thermal", M)
    activity.touch(A, "air", M - 3)
    assert activity.due(M) == {A: ["air", "thermal"]}


def test_only_dirty_zones_are_due_within_a_minute() -> None:
    activity = ZoneActivity()
    activity.touch(A, "thermal", M)
    activity.touch(B, "light", M)
    assert activity.due(M) == {A: ["thermal"], B: ["light"]}
    activity.touch(B, "light", M)
    assert activity.due(M) == {B: ["light"]}


def test_a_minute_change_re_marks_every_active_zone() -> None:
    activity = ZoneActivity()
    activity.touch(A, "thermal", M)
    activity.touch(B, "light", M - 10)
    activity.touch(B, "air", M)
    activity.due(M)
    assert activity.due(M) == {}
    assert activity.due(M + 1) == {A: ["thermal"], B: ["air", "light"]}
    assert activity.due(M + 1) == {}
    assert activity.due(M + 2) == {A: ["thermal"], B: ["air", "light"]}


def test_a_kind_is_kept_while_its_newest_bucket_is_inside_the_hour() -> None:
    activity = ZoneActivity()
    activity.touch(A, "thermal", M)
    # The 60-minute window ending at M + 59 still holds minute M.
    assert activity.due(M + 59) == {A: ["thermal"]}
    assert activity.latest == {A: {"thermal": M}}


def test_a_kind_older_than_the_hour_is_published_once_more_then_dropped() -> None:
    activity = ZoneActivity()
    activity.touch(A, "thermal", M)
    activity.touch(A, "noise", M + 30)
    activity.due(M)
    # At M + 60 minute M has left every window: published (empty) one last time.
    assert activity.due(M + 60) == {A: ["noise", "thermal"]}
    assert activity.latest == {A: {"noise": M + 30}}
    assert activity.due(M + 61) == {A: ["noise"]}


def test_a_newer_vote_keeps_a_kind_alive() -> None:
    activity = ZoneActivity()
    activity.touch(A, "thermal", M)
    activity.touch(A, "thermal", M + 20)
    # A late vote for an older minute does not pull the newest minute back.
    activity.touch(A, "thermal", M - 5)
    assert activity.latest == {A: {"thermal": M + 20}}
    assert activity.due(M + 60) == {A: ["thermal"]}
    assert activity.due(M + 79) == {A: ["thermal"]}
    assert activity.due(M + 80) == {A: ["thermal"]}
    assert activity.due(M + 81) == {}


def test_a_zone_with_no_kinds_left_is_forgotten() -> None:
    activity = ZoneActivity()
    activity.touch(A, "thermal", M)
    activity.touch(B, "air", M + 45)
    assert activity.due(M + 60) == {A: ["thermal"], B: ["air"]}
    assert A not in activity.latest
    assert activity.due(M + 61) == {B: ["air"]}
    assert activity.due(M + 105) == {B: ["air"]}
    assert activity.latest == {}
    assert activity.due(M + 106) == {}


def test_a_late_vote_already_outside_the_hour_is_published_once() -> None:
    activity = ZoneActivity()
    activity.touch(A, "light", M - 90)
    assert activity.due(M) == {A: ["light"]}
    assert activity.latest == {}
    assert activity.due(M + 1) == {}
