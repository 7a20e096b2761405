"""A bounded `tenant` label: the first `cap` tenants a process sees keep their id, the rest
fold into `other`.

Every label value is a time series in Prometheus, so a label taken from traffic
must be bounded. Only tenants proven by a verified token are ever given a label
(callers pass None for anonymous requests, labelled `none`): an unauthenticated
caller could otherwise fill the cap with made-up ids. Which tenants get their
own label is first come, first served per process, so after a restart a
different set may; sums over `tenant` stay exact either way.
"""

from __future__ import annotations

import threading

OTHER = "other"
NONE = "none"


class TenantLabels:
    def __init__(self, cap: int) -> None:
        if cap < 0:
            raise ValueError("the tenant label cap cannot be negative")
        self._cap = cap
        self._known: set[str] = set()
        # Requests of one process may be labelled from more than one thread.
        self._lock = threading.Lock()

    def label(self, tenant_id: str | None) -> str:
        if not tenant_id:
            return NONE
        if tenant_id in self._known:
            return tenant_id
        with self._lock:
            if tenant_id in self._known:
                return tenant_id
            if len(self._known) < self._cap:
                self._known.add(tenant_id)
                return tenant_id
        return OTHER

    @property
    def labelled(self) -> int:
        """How many tenants have a label of their own (at most the cap)."""
        return len(self._known)
