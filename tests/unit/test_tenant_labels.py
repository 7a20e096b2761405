"""The bounded tenant label: the first `cap` verified tenants keep their id, the rest fold."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from sbp.metrics.tenant_labels import NONE, OTHER, TenantLabels


def test_the_first_tenants_keep_their_label_and_later_ones_fold_into_other() -> None:
    labels = TenantLabels(cap=2)
    assert labels.label("t-a") == "t-a"
    assert labels.label("t-b") == "t-b"
    assert labels.label("t-c") == OTHER
    # A tenant that got a label keeps it, whatever came after.
    assert labels.label("t-a") == "t-a"
    assert labels.label("t-c") == OTHER
    assert labels.labelled == 2


def test_requests_without_a_verified_tenant_are_labelled_none_and_take_no_slot() -> None:
    labels = TenantLabels(cap=1)
    assert labels.label(None) == NONE
    assert labels.label("") == NONE
    assert labels.label("t-a") == "t-a"


@given(st.lists(st.text(min_size=1, max_size=8), max_size=200), st.integers(0, 10))
def test_never_more_label_values_than_the_cap_plus_other(tenants: list[str], cap: int) -> None:
    labels = TenantLabels(cap)
    values = {labels.label(t) for t in tenants}
    assert len(values - {OTHER}) <= cap
    # Folding keeps every request: each maps to exactly one value, its own id or `other`.
    assert all(labels.label(t) in (t, OTHER) for t in tenants)
