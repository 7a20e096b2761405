"""How the DLQ commands look for people: rich tables (`--json` is replay/render.py's)."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.table import Table

from replay.dlq_summary import DlqSummary
from replay.reprocess_plan import ReprocessPlan, Verdict


def print_summary(console: Console, summary: DlqSummary) -> None:
    table = Table(
        "reason",
        "original topic",
        "partition",
        "letters",
        "first failed",
        "last failed",
        "max attempts",
        title="votes.dlq",
        title_justify="left",
    )
    for row in summary.rows():
        table.add_row(
            row.reason,
            row.topic,
            str(row.partition),
            str(row.letters),
            row.first_failed.isoformat(timespec="seconds"),
            row.last_failed.isoformat(timespec="seconds"),
            str(row.max_attempts),
        )
    table.add_section()
    for reason, count in summary.by_reason().items():
        table.add_row(reason, "all", "", str(count), "", "", "")
    table.add_row("total", "", "", str(summary.total), "", "", "")
    console.print(table)
    if summary.unreadable:
        console.print(f"[yellow]{summary.unreadable} record(s) on votes.dlq are not letters[/]")


def print_letters(console: Console, letters: list[dict[str, Any]], more: bool) -> None:
    if not letters:
        console.print("no letters match")
    for letter in letters:
        where = letter["original"]
        table = Table(
            show_header=False,
            title=(
                f"votes.dlq {letter['dlq']['partition']}/{letter['dlq']['offset']}: "
                f"{letter['errorCode']} (attempts {letter['attempts']})"
            ),
            title_justify="left",
        )
        table.add_row("from", f"{where['topic']} {where['partition']}/{where['offset']}")
        table.add_row("group", letter["consumerGroup"])
        table.add_row("failed at", letter["failedAt"])
        table.add_row("error", letter["errorMessage"])
        table.add_row(
            "key", str(letter["key"] if letter["key"] is not None else letter["keyBase64"])
        )
        for header in letter["headers"]:
            table.add_row(f"header {header['key']}", str(header["valueBase64"]))
        table.add_row("value (base64)", str(letter["valueBase64"]))
        table.add_row("value (hex)", letter["valueHex"])
        decoded = letter["decoded"]
        if decoded["decodable"]:
            table.add_row("decoded", json.dumps(decoded["record"], sort_keys=True))
        else:
            table.add_row("decoded", f"not decodable: {decoded['reason']}")
        console.print(table)
    if more:
        console.print("more letters match: raise --limit or narrow the filters")


def print_reprocess(console: Console, plan: ReprocessPlan, executed: bool, redriven: int) -> None:
    table = Table(
        "reason", *(v.value for v in Verdict), title="dlq reprocess", title_justify="left"
    )
    for reason, counts in sorted(plan.counts.items()):
        table.add_row(reason, *(str(counts[v]) for v in Verdict))
    table.add_section()
    table.add_row("total", *(str(plan.total(v)) for v in Verdict))
    console.print(table)
    console.print(f"max attempts {plan.max_attempts}")
    if executed:
        console.print(f"[green]re-drove {redriven}[/green] and recorded it in the operator log")
    elif plan.total(Verdict.REDRIVE):
        console.print("dry-run: nothing changed; add --execute to re-drive these letters")
    else:
        console.print("nothing to re-drive")
