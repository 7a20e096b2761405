"""The dev stack's two PostgreSQL slots, which one is the primary, and the access rules
a standby gets (devstack/postgres.py), without starting PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from devstack import postgres
from devstack.postgres import MAIN, REPLICA, ClusterError
from sbp import cli, pg_cli
from sbp.settings import Settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(state_dir=tmp_path, pg_port=25432, pg_replica_port=25433)


def test_the_slots_have_their_own_port_data_and_process(settings: Settings) -> None:
    main, replica = postgres.cluster(settings, MAIN), postgres.cluster(settings, REPLICA)
    assert (main.port, replica.port) == (25432, 25433)
    assert main.data != replica.data
    # Each process is recognised by its data dir; neither marker matches the other's.
    assert main.process.marker not in replica.process.marker
    assert replica.process.marker not in main.process.marker
    assert main.process.pid_file != replica.process.pid_file


def test_the_primary_is_main_until_a_promotion_records_another(settings: Settings) -> None:
    assert postgres.primary(settings).name == MAIN
    assert postgres.service_env(settings) == {"SBP_PG_PORT": "25432"}
    postgres.set_primary(settings, REPLICA)
    assert postgres.primary(settings).name == REPLICA
    assert postgres.service_env(settings) == {"SBP_PG_PORT": "25433"}
    assert postgres.primary_settings(settings).pg_port == 25433
    # Only the port moves: the rest of the settings are the stack's own.
    assert postgres.primary_settings(settings).pg_database == settings.pg_database


def test_an_unknown_cluster_is_refused_and_nothing_is_recorded(settings: Settings) -> None:
    with pytest.raises(ClusterError, match="unknown cluster"):
        postgres.set_primary(settings, "standby-2")
    assert postgres.primary(settings).name == MAIN


def test_a_fenced_cluster_is_never_started(settings: Settings) -> None:
    main = postgres.cluster(settings, MAIN)
    main.root.mkdir(parents=True)
    main.fence_file.write_text("replaced by replica at 2026-11-29T12:00:00+00:00\n")
    with pytest.raises(ClusterError, match=r"fenced .*replaced by replica"):
        postgres.start(settings, main)
    assert not main.process.pid_file.exists()


def test_replication_is_for_the_replication_role_alone_from_loopback() -> None:
    rules = [
        line.split()
        for line in postgres.hba_rules(Settings()).splitlines()
        if line and not line.startswith("#")
    ]
    replication = [r for r in rules if r[1] == "replication"]
    assert {r[2] for r in replication} == {"sbp_replicator"}
    assert {r[3] for r in replication} == {"127.0.0.1/32", "::1/128"}
    # The role can open no ordinary session, and that rule comes before the general ones.
    reject = rules.index(["host", "all", "sbp_replicator", "all", "reject"])
    assert all(r[1] == "replication" for r in rules[:reject])
    assert {r[-1] for r in rules} == {"scram-sha-256", "reject"}
    assert all(r[0] == "host" for r in rules)  # TCP only, no local socket rules


def test_the_primary_the_services_use_cannot_be_removed(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pg_cli, "get_settings", lambda: settings)
    result = CliRunner().invoke(cli.app, ["dev", "pg", "remove", "main"])
    assert result.exit_code == 2
    assert "primary the services use" in result.stdout
