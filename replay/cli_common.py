"""What every `sbp replay` command shares: the credential options, the consoles, and
the one way a ReplayError becomes its stderr line and exit code."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from identity.principal import Principal
from identity.rbac import Action
from replay.errors import ReplayError
from replay.exit_codes import exit_code_help
from replay.operator_auth import DEV_OPERATOR_TTL_S, operator_principal
from sbp.settings import get_settings

EPILOG = exit_code_help()
AUTH_HELP = (
    "Every command needs an operator access token: --token or SBP_OPERATOR_TOKEN. "
    f"In dev mode only, --dev-operator mints a {DEV_OPERATOR_TTL_S}-second operator token "
    "from the local key set instead (as `sbp dev token` does), logged as platform/dev-operator."
)

console = Console()
# soft_wrap: an error stays one line, whole, for logs and scripts that grep it.
errors = Console(stderr=True, soft_wrap=True)

TOKEN = typer.Option(
    None,
    "--token",
    envvar="SBP_OPERATOR_TOKEN",
    help="an operator access token",
    show_default=False,
)
DEV_OPERATOR = typer.Option(
    False, "--dev-operator", help="dev mode only: a short-lived local operator credential"
)
JSON = typer.Option(False, "--json", help="one JSON document on stdout instead of tables")


@contextmanager
def reported() -> Iterator[None]:
    """Turn a ReplayError into its one stderr line and documented exit code."""
    try:
        yield
    except ReplayError as exc:
        errors.print(f"[red]error[/red] ({exc.exit_code.name.lower()}): {exc.message}")
        raise typer.Exit(exc.exit_code) from None


def operator(action: Action, token: str | None, dev_operator: bool) -> Principal:
    return operator_principal(get_settings(), action, token=token, dev_operator=dev_operator)


class RedriveProgress:
    """A progress bar on stderr (stdout stays one JSON document with --json)."""

    def __init__(self, total: int) -> None:
        self._bar = Progress(
            TextColumn("re-driving"), BarColumn(), MofNCompleteColumn(), console=errors
        )
        self._task = self._bar.add_task("re-drive", total=total)

    def __enter__(self) -> Callable[[], None]:
        self._bar.start()
        return lambda: self._bar.advance(self._task)

    def __exit__(self, *exc_info: object) -> None:
        self._bar.stop()
