"""The one error type of the replay tools: a message for the operator and the exit
code a script can branch on (replay/exit_codes.py)."""

from __future__ import annotations

from replay.exit_codes import ExitCode


class ReplayError(Exception):
    def __init__(self, exit_code: ExitCode, message: str) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.message = message

    def __repr__(self) -> str:
        return f"ReplayError({self.exit_code.name}, {self.message!r})"
