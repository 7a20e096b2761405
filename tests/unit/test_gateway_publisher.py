"""A batch's delivery reports: settled once, and what never arrived counts as unconfirmed."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

from gateway.publisher import _BatchReport


def _deliver(report: _BatchReport, reports: Sequence[tuple[int, object]]) -> threading.Thread:
    """Deliver `reports` (index, error) on another thread, as librdkafka's poll thread does."""

    def run() -> None:
        for index, err in reports:
            report.delivered(index, err, None)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


async def test_the_batch_completes_when_its_last_report_arrives() -> None:
    report = _BatchReport(asyncio.get_running_loop(), 3)
    report.refused(1)  # produce() refused it on the loop's thread
    assert not report.done.done()
    _deliver(report, [(0, None), (2, "broker said no")]).join()
    await asyncio.wait_for(report.done, timeout=5)
    assert report.snapshot() == [True, False, False]


async def test_a_record_without_a_report_is_not_confirmed() -> None:
    report = _BatchReport(asyncio.get_running_loop(), 2)
    _deliver(report, [(0, None)]).join()
    done, _ = await asyncio.wait((report.done,), timeout=0.05)
    assert done == set()
    assert report.snapshot() == [True, False]


async def test_reports_from_several_threads_and_refusals_settle_every_record_once() -> None:
    size = 4000
    report = _BatchReport(asyncio.get_running_loop(), size)
    refused = set(range(0, size, 7))
    delivered = [(i, i % 3 or None) for i in range(size) if i not in refused]
    threads = [_deliver(report, delivered[k::4]) for k in range(4)]
    for i in sorted(refused):
        report.refused(i)
    for thread in threads:
        thread.join()
    await asyncio.wait_for(report.done, timeout=5)
    assert report.snapshot() == [i not in refused and i % 3 == 0 for i in range(size)]


def test_a_late_report_after_the_loop_closed_is_dropped_quietly() -> None:
    loop = asyncio.new_event_loop()
    report = _BatchReport(loop, 1)
    loop.close()
    report.delivered(0, None, None)  # must not raise on the poll thread
    assert report.snapshot() == [True]
