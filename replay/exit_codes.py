"""The exit codes of `sbp replay`: one table, shown in the help and in the runbook.

Scripts and runbooks branch on these, so a code keeps its meaning once published.
2 is click's own code for a usage error; the replay commands reuse it for a request
that cannot be planned, which is a usage error of the same kind (fix the options).
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    USAGE = 2
    NOT_AUTHENTICATED = 3
    FORBIDDEN = 4
    GROUP_ACTIVE = 5
    NOT_FOUND = 6
    KAFKA = 7
    OPERATOR_LOG = 8
    APPLIED_NOT_LOGGED = 9
    PARTIAL = 10


MEANINGS: dict[ExitCode, str] = {
    ExitCode.OK: "done (a dry-run printed its plan, or --execute applied and logged it)",
    ExitCode.USAGE: "bad options, or a reset that cannot be planned "
    "(e.g. --shift-by on a partition with no committed offset)",
    ExitCode.NOT_AUTHENTICATED: "no operator token, or a forged, expired or unknown-key one",
    ExitCode.FORBIDDEN: "a valid token whose role is not operator",
    ExitCode.GROUP_ACTIVE: "--execute refused: the group has active members (stop its consumers)",
    ExitCode.NOT_FOUND: "unknown group, topic or partition",
    ExitCode.KAFKA: "Kafka unreachable or refused the request; nothing was changed",
    ExitCode.OPERATOR_LOG: "the operator log (or the DLQ re-drive ledger) could not be reached; "
    "nothing was changed",
    ExitCode.APPLIED_NOT_LOGGED: "Kafka was changed (offsets moved, records re-driven) but the "
    "log row was lost: record it by hand",
    ExitCode.PARTIAL: "--execute re-drove only part of its plan (Kafka refused some records); "
    "what was re-driven is logged: run the same command again for the rest",
}


def exit_code_help() -> str:
    """The table for `--help` epilogs, one code per paragraph so help formatters keep
    each on its own line."""
    return "Exit codes:\n\n" + "\n\n".join(
        f"{code.value} {code.name.lower()}: {MEANINGS[code]}" for code in ExitCode
    )
