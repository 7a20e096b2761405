"""How replay results look: rich tables for people, JSON for scripts.

JSON goes out through plain `print`-like echo, never rich, so nothing wraps, colours
or truncates it; every command's `--json` is one JSON document on stdout.
"""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from replay.lag import GroupLag
from replay.reset_plan import PlannedReset


def _cell(value: int | None) -> str:
    return "-" if value is None else str(value)


def echo_json(document: Any) -> None:
    typer.echo(json.dumps(document, indent=2, sort_keys=True))


def print_lag(console: Console, groups: list[GroupLag]) -> None:
    if not groups:
        console.print("no consumer groups")
    for group in groups:
        table = Table(
            "topic",
            "partition",
            "committed",
            "log end",
            "lag",
            title=f"{group.group} ({group.state}, {group.members} member(s))",
            title_justify="left",
        )
        for p in group.sorted_partitions():
            table.add_row(
                p.topic, str(p.partition), _cell(p.committed), str(p.log_end), _cell(p.lag)
            )
        table.add_section()
        table.add_row("total", "", "", "", str(group.total))
        console.print(table)


def print_offsets(console: Console, group: GroupLag) -> None:
    table = Table(
        "topic",
        "partition",
        "committed",
        "log start",
        "log end",
        "lag",
        title=f"{group.group} ({group.state}, {group.members} member(s))",
        title_justify="left",
    )
    for p in group.sorted_partitions():
        table.add_row(
            p.topic,
            str(p.partition),
            _cell(p.committed),
            _cell(p.log_start),
            str(p.log_end),
            _cell(p.lag),
        )
    console.print(table)


def print_plan(console: Console, header: str, plan: list[PlannedReset], executed: bool) -> None:
    table = Table("partition", "current", "target", "delta", "note", title=header)
    table.title_justify = "left"
    for p in plan:
        delta = "-" if p.delta is None else f"{p.delta:+d}"
        table.add_row(str(p.partition), _cell(p.current), str(p.target), delta, p.note or "")
    console.print(table)
    if executed:
        console.print("[green]applied[/green] and recorded in the operator log")
    else:
        console.print("dry-run: nothing changed; add --execute to apply this plan")
