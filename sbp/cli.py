"""`sbp`: the one command-line entry point (dev stack, accounts, keys, deploy, replay)."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from identity.dev_cli import token as mint_dev_token
from replay.cli import app as replay_app
from sbp.pg_cli import app as pg_app
from sbp.settings import get_settings

app = typer.Typer(no_args_is_help=True, help="Smart-building occupant platform.")
dev = typer.Typer(no_args_is_help=True, help="The local stack: Kafka, PostgreSQL, Redis, registry.")
app.add_typer(dev, name="dev")
dev.command("token", help="Mint a dev access token (prints only the token).")(mint_dev_token)
dev.add_typer(pg_app, name="pg")
app.add_typer(replay_app, name="replay")
console = Console()


@dev.command("up")
def dev_up(
    workers: int = typer.Option(
        None, "--workers", min=1, help="vote-stage workers to run (default: keep what runs, or 1)"
    ),
) -> None:
    """Start (or confirm) every service and apply migrations, topics and schemas."""
    from devstack import stack
    from devstack.kafka import KafkaStorageError

    try:
        report = stack.up(get_settings(), log=console.print, worker_count=workers)
    except KafkaStorageError as exc:
        # Advice, not a crash: the message says what to delete and why.
        console.print(f"[red]kafka:[/red] {exc}")
        raise typer.Exit(2) from None
    console.print(
        f"[green]stack ready[/green]; started now: {report.started or 'nothing (already up)'}"
    )


@dev.command("down")
def dev_down() -> None:
    """Stop the services this stack started (pid files), newest first."""
    from devstack import stack

    stopped = stack.down(get_settings(), log=console.print)
    console.print(f"stopped: {stopped or 'nothing was running'}")


@dev.command("stop")
def dev_stop(
    service: str = typer.Argument(..., help="e.g. pg-sink, gateway, worker-1 (see dev status)"),
) -> None:
    """Stop one service and wait for it to exit (e.g. pg-sink before an offset reset);
    `sbp dev up` starts it again."""
    from devstack import stack

    try:
        was_running = stack.stop_one(get_settings(), service)
    except KeyError:
        names = ", ".join(row.name for row in stack.status(get_settings()))
        console.print(f"[red]error:[/red] unknown service {service!r}; one of: {names}")
        raise typer.Exit(2) from None
    console.print(f"{service}: {'stopped' if was_running else 'was not running'}")


@dev.command("status")
def dev_status() -> None:
    """Each service's pid and readiness; exits 1 if any is not healthy."""
    from devstack import stack

    rows = stack.status(get_settings())
    table = Table("service", "pid", "health")
    for row in rows:
        health = "[green]ready[/green]" if row.ready else "[red]down[/red]"
        table.add_row(row.name, str(row.pid or "-"), health)
    console.print(table)
    if not all(r.ready for r in rows):
        raise typer.Exit(1)


@dev.command("demo")
def dev_demo(
    duration: int = typer.Option(600, help="seconds of load, then it stops by itself"),
) -> None:
    """Start the bounded demo load in the background (demo tenant, building hq)."""
    import sys

    from devstack.processes import ManagedProcess
    from sbp.settings import REPO_ROOT

    settings = get_settings()
    proc = ManagedProcess("demo-load", settings.state_dir / "run", marker="devstack.demo_load")
    pid = proc.start([sys.executable, "-m", "devstack.demo_load", str(duration)], cwd=REPO_ROOT)
    console.print(f"demo load running (pid {pid}) for {duration}s; log {proc.log_file}")


users = typer.Typer(no_args_is_help=True, help="Accounts: people, and sensors' client credentials.")
app.add_typer(users, name="users")


@users.command("create")
def users_create(
    tenant: str = typer.Option(..., help="tenant id"),
    user: str = typer.Option(..., help="user id (a sensor's client id)"),
    role: str = typer.Option(
        ..., help="occupant, fm, tenant_admin, platform_admin, sensor, operator"
    ),
    buildings: str = typer.Option("", help="comma-separated building ids"),
    password: str = typer.Option(
        ...,
        prompt=True,
        hide_input=True,
        envvar="SBP_NEW_PASSWORD",
        help="at least 12 characters (a sensor's client secret)",
    ),
) -> None:
    """Create an account; privileged roles get a TOTP seed, printed once."""
    import asyncio

    import psycopg

    from identity.keyring import LocalKeyring
    from identity.provisioning import ProvisioningError, provision_account
    from identity.totp import provisioning_uri

    settings = get_settings()

    async def create() -> None:
        conn = await psycopg.AsyncConnection.connect(settings.pg_dsn("admin"))
        async with conn, conn.transaction():
            done = await provision_account(
                conn,
                LocalKeyring.load_or_create(settings.keys_dir),
                tenant_id=tenant,
                user_id=user,
                role=role,
                building_ids=[b.strip() for b in buildings.split(",") if b.strip()],
                password=password,
            )
        console.print(f"created {done.role.value} {tenant}/{user}")
        if done.totp_secret is not None:
            console.print(f"TOTP seed (shown once): {done.totp_secret}")
            console.print(provisioning_uri(done.totp_secret, f"{tenant}/{user}", "sbp"))

    try:
        asyncio.run(create())
    except (ProvisioningError, ValueError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None


@users.command("revoke-sessions")
def users_revoke_sessions(
    tenant: str = typer.Option(..., help="tenant id"),
    user: str = typer.Option(..., help="user id"),
    reason: str = typer.Option("operator", help="recorded with the revocation"),
) -> None:
    """End every login of a user: their refresh tokens are refused from now on (access
    tokens expire within 15 minutes). Written to the auth audit."""
    import getpass

    from identity.session_revocation import revoke_user_sessions

    families = revoke_user_sessions(
        get_settings().pg_dsn("app"), tenant, user, reason, f"cli:{getpass.getuser()}"
    )
    console.print(f"{tenant}/{user}: {len(families)} login(s) revoked {families or ''}")


@users.command("audit")
def users_audit(
    tenant: str = typer.Option(..., help="tenant id"),
    event: str = typer.Option(
        None, help="only this event, e.g. refresh_reuse, sessions_revoked, login_failed"
    ),
    hours: float = typer.Option(24.0, help="how far back"),
    as_json: bool = typer.Option(False, "--json", help="one JSON document on stdout"),
) -> None:
    """The tenant's auth audit (logins, refresh reuse, revocations), oldest first."""
    import json
    from dataclasses import asdict
    from datetime import UTC, datetime, timedelta

    from identity.session_revocation import read_audit

    since = datetime.now(UTC) - timedelta(hours=hours)
    rows = read_audit(get_settings().pg_dsn("app"), tenant, since, event)
    if as_json:
        print(json.dumps({"events": [asdict(r) for r in rows]}, default=str, indent=2))
        return
    table = Table("at", "event", "user", "family", "source", "detail")
    for r in rows:
        table.add_row(
            r.at.isoformat(timespec="seconds"),
            r.event,
            r.user_id or "",
            r.family_id or "",
            r.source or "",
            json.dumps(r.detail),
        )
    console.print(table)


keys = typer.Typer(no_args_is_help=True, help="The platform's token signing keys.")
app.add_typer(keys, name="keys")


@keys.command("rotate")
def keys_rotate() -> None:
    """Add a new signing key and sign with it; older keys keep verifying until retired.
    Every gateway picks the new key up within 30 s, and at once on a token it signed."""
    from identity.signing_keys import KeySet

    keyset = KeySet.load_or_create(get_settings().keys_dir)
    console.print(f"signing with {keyset.rotate()}; verifying {', '.join(keyset.kids)}")


@keys.command("list")
def keys_list() -> None:
    """The signing key set: kid, creation time, and which key signs."""
    from identity.signing_keys import KeySet

    for kid, created, signing in KeySet.load_or_create(get_settings().keys_dir).describe():
        console.print(f"{kid}  {created.isoformat()}  {'signing' if signing else 'verifying'}")


@keys.command("retire-expired")
def keys_retire_expired() -> None:
    """Retire every key that stopped signing more than 15 minutes (plus leeway) ago."""
    from datetime import timedelta

    from identity.signing_keys import KeySet
    from identity.tokens import LEEWAY_S, MAX_LIFETIME_S

    keyset = KeySet.load_or_create(get_settings().keys_dir)
    gone = keyset.retire_expired(timedelta(seconds=MAX_LIFETIME_S + LEEWAY_S))
    console.print(f"retired {', '.join(gone) or 'nothing'}; verifying {', '.join(keyset.kids)}")


@keys.command("retire")
def keys_retire(kid: str = typer.Argument(..., help="the key id to remove")) -> None:
    """Remove a key once every token it signed has expired (15 minutes after rotate)."""
    from identity.signing_keys import KeySet, KeySetError

    keyset = KeySet.load_or_create(get_settings().keys_dir)
    try:
        keyset.retire(kid)
    except KeySetError as exc:
        console.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(2) from None
    console.print(f"retired {kid}; verifying {', '.join(keyset.kids)}")


deploy = typer.Typer(
    no_args_is_help=True, help="Provision existing services (containers, production)."
)
app.add_typer(deploy, name="deploy")


@deploy.command("init")
def deploy_init(
    seed_demo: bool = typer.Option(False, "--seed-demo", help="also seed the demo tenant"),
) -> None:
    """Roles, database and migrations (needs SBP_PG_SUPERUSER_PASSWORD), then the topics
    and the Kafka service principals (as the Kafka admin)."""
    from sbp.deploy import init_database, init_principals, init_topics

    settings = get_settings()
    if settings.pg_superuser_password is None:
        console.print("[red]SBP_PG_SUPERUSER_PASSWORD is not set[/red]")
        raise typer.Exit(2)
    password = settings.pg_superuser_password
    applied = init_database(
        settings, lambda db: settings.pg_superuser_dsn(password, db), seed=seed_demo
    )
    topics = init_topics(settings)
    principals = init_principals(settings)
    console.print(
        f"migrations applied: {applied or 'none'}; topics created: {topics.created}; "
        f"Kafka users {principals.users}, ACLs created {len(principals.acls_created)}, "
        f"deleted {len(principals.acls_deleted)}"
    )


@deploy.command("register-schemas")
def deploy_register_schemas() -> None:
    """Register every schema version under schemas/avro with the registry."""
    from sbp.deploy import register_schemas

    console.print(register_schemas(get_settings()))


def main() -> None:
    app()
