"""`sbp replay`'s command line before it reaches Kafka: the reset options, the
credential, and the exit codes a script sees."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from replay.exit_codes import ExitCode
from sbp.cli import app

RESET = ["replay", "offsets", "reset", "--group", "g", "--topic", "t"]


def run(*argv: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(argv), env={"SBP_OPERATOR_TOKEN": ""})
    return result.exit_code, result.output


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ([], "none"),
        (["--to-earliest", "--to-latest"], "--to-earliest, --to-latest"),
        (["--to-offset", "5", "--shift-by", "-5"], "--to-offset, --shift-by"),
    ],
)
def test_a_reset_names_exactly_one_target(options: list[str], named: str) -> None:
    code, output = run(*RESET, *options)
    assert code == ExitCode.USAGE
    assert "give exactly one of" in output
    assert f"(got {named})" in output


@pytest.mark.parametrize(
    ("value", "why"),
    [("yesterday", "is not an ISO 8601 datetime"), ("2026-11-29T17:00:00", "needs a UTC offset")],
)
def test_a_reset_datetime_must_be_iso_8601_with_an_offset(value: str, why: str) -> None:
    code, output = run(*RESET, "--to-datetime", value)
    assert code == ExitCode.USAGE
    assert why in output


def test_without_a_token_nothing_runs_and_the_exit_says_why() -> None:
    code, output = run(*RESET, "--to-latest", "--execute")
    assert code == ExitCode.NOT_AUTHENTICATED
    assert "operator access token is required" in output


def test_a_garbage_token_is_not_authenticated() -> None:
    code, output = run("replay", "lag", "--token", "not-a-jwt")
    assert code == ExitCode.NOT_AUTHENTICATED
    assert "malformed_token" in output


@pytest.mark.parametrize(
    "command",
    [
        ["replay"],
        ["replay", "lag"],
        ["replay", "offsets", "reset"],
        ["replay", "dlq", "list"],
        ["replay", "dlq", "show"],
        ["replay", "dlq", "reprocess"],
        ["replay", "redrive"],
    ],
)
def test_the_help_documents_every_exit_code(command: list[str]) -> None:
    code, output = run(*command, "--help")
    assert code == 0
    for exit_code in ExitCode:
        assert f"{exit_code.value} {exit_code.name.lower()}:" in output


@pytest.mark.parametrize(
    ("argv", "why"),
    [
        (["dlq", "list", "--since", "yesterday"], "is not an ISO 8601 datetime"),
        (["dlq", "reprocess", "--until", "2026-11-29T17:00:00"], "needs a UTC offset"),
        (
            ["dlq", "show", "--since", "2026-11-29T18:00:00Z", "--until", "2026-11-29T17:00:00Z"],
            "--until must be later than --since",
        ),
        (["redrive", "--topic", "votes.accepted", "--from", "0", "--to", "9"], "only votes.raw"),
        (["redrive", "--topic", "votes.raw", "--from", "soon", "--to", "9"], "neither an offset"),
    ],
)
def test_dlq_and_redrive_options_are_checked_before_any_credential(
    argv: list[str], why: str
) -> None:
    code, output = run("replay", *argv)
    assert code == ExitCode.USAGE
    assert why in output


def test_a_reprocess_without_a_token_re_drives_nothing_and_says_why() -> None:
    code, output = run("replay", "dlq", "reprocess", "--execute")
    assert code == ExitCode.NOT_AUTHENTICATED
    assert "operator access token is required" in output
