"""Kafka principals: the client settings (`Settings.kafka_config`) and the ACL declarations.

What the broker does with them is tests/integration/test_kafka_acl.py's.
"""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from devstack import kafka
from devstack.kafka import KafkaStorageError, scram_argument
from sbp.settings import Settings, settings_from_env
from streams.acl_admin import SCRAM_ITERATIONS, acl_binding, describe
from streams.kafka_acls import (
    CONFIG_TOPIC_PREFIX,
    GATEWAY_CONFIG_GROUP_PREFIX,
    SERVICE_PRINCIPALS,
    WORKER_CONFIG_GROUP,
    WORKER_INTERNAL_TOPICS,
    Grant,
)
from streams.topics import (
    ALL_TOPICS,
    PG_SINK_DLQ_DEPTH_GROUP,
    PG_SINK_GROUP,
    VOTES_RAW,
    WORKER_APP_ID,
)

PRINCIPALS = ("gateway", "worker", "sink", "admin_api", "admin")


def grants(client: str) -> set[Grant]:
    (principal,) = [p for p in SERVICE_PRINCIPALS if p.client == client]
    return set(principal.grants)


@pytest.mark.parametrize("principal", PRINCIPALS)
def test_kafka_config_logs_in_as_the_principal(principal: str) -> None:
    settings = settings_from_env({"SBP_KAFKA_BOOTSTRAP_OVERRIDE": "kafka:9092"})
    user, password = settings.kafka_sasl(principal)
    assert settings.kafka_config(principal) == {
        "bootstrap.servers": "kafka:9092",
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": user,
        "sasl.password": password,
    }


def test_every_principal_has_its_own_user_and_password() -> None:
    settings = Settings()
    credentials = [settings.kafka_sasl(p) for p in PRINCIPALS]
    assert len({user for user, _ in credentials}) == len(PRINCIPALS)
    assert len({password for _, password in credentials}) == len(PRINCIPALS)


def test_an_unknown_principal_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown Kafka principal 'replication_factor'"):
        Settings().kafka_config("replication_factor")


def _deployment_env() -> dict[str, str]:
    """Outside dev mode, with every password set (as a deployment must)."""
    env = {"SBP_DEV_MODE": "false"}
    for name, field in Settings.model_fields.items():
        if name.endswith("_password") and field.default is not None:
            env[f"SBP_{name.upper()}"] = f"real-{name}"
    return env


@pytest.mark.parametrize("principal", PRINCIPALS)
def test_outside_dev_mode_a_default_kafka_password_is_refused(principal: str) -> None:
    variable = f"SBP_KAFKA_{principal.upper()}_PASSWORD"
    env = _deployment_env()
    del env[variable]
    with pytest.raises(ValidationError, match=variable):
        settings_from_env(env)

    own = settings_from_env(_deployment_env()).kafka_config(principal)
    assert own["sasl.password"] == f"real-kafka_{principal}_password"
    # In dev mode the defaults serve the local stack.
    assert Settings().kafka_config(principal)["sasl.password"].endswith("-dev")


def test_only_the_gateway_writes_votes_raw() -> None:
    writers = {
        p.client
        for p in SERVICE_PRINCIPALS
        for g in p.grants
        if g.resource == "TOPIC"
        and g.operation == "WRITE"
        and (g.name == VOTES_RAW.name or (g.prefixed and VOTES_RAW.name.startswith(g.name)))
    }
    assert writers == {"gateway"}


def test_each_group_belongs_to_one_principal() -> None:
    groups = {
        (g.name, g.prefixed): p.client
        for p in SERVICE_PRINCIPALS
        for g in p.grants
        if g.resource == "GROUP"
    }
    assert groups == {
        ("sbp-gateway-config", True): "gateway",
        (WORKER_APP_ID, False): "worker",
        ("sbp-worker-config", False): "worker",
        (PG_SINK_GROUP, False): "sink",
        (PG_SINK_DLQ_DEPTH_GROUP, False): "sink",
    }


@pytest.mark.parametrize(
    ("client", "group"), [("gateway", GATEWAY_CONFIG_GROUP_PREFIX), ("worker", WORKER_CONFIG_GROUP)]
)
def test_each_config_view_reads_the_config_topics_under_its_own_group(
    client: str, group: str
) -> None:
    # streams/config_view.py runs in both: it reads every config topic, never writes
    # one, and its consumer looks up the group it is given (never joining it).
    config_grants = {g for g in grants(client) if g.name.startswith(CONFIG_TOPIC_PREFIX)}
    assert config_grants == {Grant("TOPIC", CONFIG_TOPIC_PREFIX, "READ", prefixed=True)}
    assert any(
        g.resource == "GROUP"
        and g.operation == "READ"
        and (g.name == group or (g.prefixed and group.startswith(g.name)))
        for g in grants(client)
    )


def test_the_worker_reads_and_writes_each_of_its_declared_internal_topics() -> None:
    internal = [t.name for t in ALL_TOPICS if t.name.startswith(f"{WORKER_APP_ID}-")]
    assert internal and list(WORKER_INTERNAL_TOPICS) == internal
    for name in internal:
        assert {Grant("TOPIC", name, "READ"), Grant("TOPIC", name, "WRITE")} <= grants("worker")


def test_prefix_grants_are_the_config_family_and_the_gateways_groups_only() -> None:
    prefixed = {(g.resource, g.name) for p in SERVICE_PRINCIPALS for g in p.grants if g.prefixed}
    assert prefixed == {("TOPIC", CONFIG_TOPIC_PREFIX), ("GROUP", "sbp-gateway-config")}
    assert grants("admin_api") == {Grant("TOPIC", CONFIG_TOPIC_PREFIX, "WRITE", prefixed=True)}


def test_acl_bindings_are_allow_rules_for_the_user_from_any_host() -> None:
    binding = acl_binding("sbp-gateway", Grant("TOPIC", "config.", "READ", prefixed=True))
    assert describe(binding) == "User:sbp-gateway ALLOW READ TOPIC:PREFIXED:config."
    assert binding.host == "*"


def test_the_admins_scram_credential_is_given_salted() -> None:
    salt = b"0123456789abcdef0123456789abcdef"
    argument = scram_argument("sbp-admin", "s3cret", salt)
    match = re.fullmatch(
        r'SCRAM-SHA-512=\[name=sbp-admin,salt="([^"]+)",saltedpassword="([^"]+)",'
        rf"iterations={SCRAM_ITERATIONS}\]",
        argument,
    )
    assert match, argument
    assert "s3cret" not in argument
    assert base64.b64decode(match.group(1)) == salt
    # SCRAM's SaltedPassword is Hi(password, salt, i): PBKDF2 with HMAC-SHA-512 (RFC 5802).
    expected = hashlib.pbkdf2_hmac("sha512", b"s3cret", salt, SCRAM_ITERATIONS)
    assert base64.b64decode(match.group(2)) == expected


def _formatted_storage(state_dir: Path) -> Settings:
    settings = Settings(state_dir=state_dir)
    data = state_dir / "kafka" / "data"
    data.mkdir(parents=True)
    (data / "meta.properties").write_text("node.id=1\n")
    return settings


def test_a_storage_formatted_before_sasl_is_refused_with_advice(tmp_path: Path) -> None:
    settings = _formatted_storage(tmp_path)
    with pytest.raises(KafkaStorageError, match="formatted before Kafka required SASL") as raised:
        kafka.check_storage(settings)
    # The advice names what to delete: the Kafka data and the workers' state.
    assert str(tmp_path / "kafka" / "data") in str(raised.value)
    assert str(tmp_path / "worker") in str(raised.value)


def test_a_storage_formatted_for_another_admin_is_refused(tmp_path: Path) -> None:
    settings = _formatted_storage(tmp_path)
    (tmp_path / "kafka" / "admin-credential").write_text(kafka.admin_fingerprint(settings))
    kafka.check_storage(settings)  # the admin it was formatted for

    other = settings.model_copy(update={"kafka_admin_password": "another"})
    with pytest.raises(KafkaStorageError, match="another admin user or password"):
        kafka.check_storage(other)
    # Nothing formatted yet: nothing to refuse.
    kafka.check_storage(Settings(state_dir=tmp_path / "fresh"))
