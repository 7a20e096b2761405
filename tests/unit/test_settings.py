"""The one settings object: `SBP_*` environment parsing, host overrides, validation."""

from __future__ import annotations

import pytest
import redis
from pydantic import ValidationError

from sbp.settings import Settings, settings_from_env


def test_defaults_avoid_the_standard_ports() -> None:
    s = settings_from_env({})
    assert s.kafka_bootstrap == "127.0.0.1:19092"
    assert s.redis_url_for("gateway").endswith("@127.0.0.1:16379/0")
    assert "host=127.0.0.1 port=15432 " in s.pg_dsn()
    assert {s.kafka_port, s.pg_port, s.redis_port}.isdisjoint({9092, 5432, 6379})


def test_a_port_from_the_environment_is_an_int() -> None:
    s = settings_from_env({"SBP_KAFKA_PORT": "29092"})
    assert s.kafka_port == 29092
    assert isinstance(s.kafka_port, int)
    assert s.kafka_bootstrap == "127.0.0.1:29092"


def test_os_environ_is_read_when_no_mapping_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SBP_REDIS_PORT", "26379")
    assert settings_from_env().redis_port == 26379


def test_unrelated_and_unprefixed_variables_are_ignored() -> None:
    s = settings_from_env({"KAFKA_PORT": "1", "SBP_NOT_A_SETTING": "x", "PG_PORT": "2"})
    assert (s.kafka_port, s.pg_port) == (19092, 15432)


def test_host_moves_every_service() -> None:
    s = settings_from_env({"SBP_HOST": "10.0.0.5"})
    assert s.kafka_bootstrap == "10.0.0.5:19092"
    assert s.redis_url_for("gateway").endswith("@10.0.0.5:16379/0")
    assert s.pg_dsn().startswith("host=10.0.0.5 port=15432 ")


def test_kafka_bootstrap_override_wins() -> None:
    s = settings_from_env({"SBP_KAFKA_BOOTSTRAP_OVERRIDE": "kafka:9092,kafka2:9092"})
    assert s.kafka_bootstrap == "kafka:9092,kafka2:9092"


def test_pg_host_changes_both_dsns_only() -> None:
    s = settings_from_env({"SBP_PG_HOST": "db.internal", "SBP_PG_PORT": "5433"})
    assert s.pg_dsn() == ("host=db.internal port=5433 dbname=sbp user=sbp_app password=sbp-app-dev")
    assert s.pg_dsn("owner") == (
        "host=db.internal port=5433 dbname=sbp user=sbp_owner password=sbp-owner-dev"
    )
    assert s.redis_url_for("gateway").endswith("@127.0.0.1:16379/0")
    assert s.kafka_bootstrap == "127.0.0.1:19092"


def test_redis_host_changes_the_redis_url_only() -> None:
    s = settings_from_env({"SBP_REDIS_HOST": "cache"})
    assert s.redis_url_for("worker").endswith("@cache:16379/0")
    assert s.pg_dsn().startswith("host=127.0.0.1 ")


@pytest.mark.parametrize(
    "env",
    [{"SBP_PG_PORT": "abc"}, {"SBP_KAFKA_PORT": "19092.5"}, {"SBP_REDIS_PORT": ""}],
)
def test_an_invalid_value_is_refused(env: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        settings_from_env(env)


def test_the_refusal_names_the_field() -> None:
    with pytest.raises(ValidationError) as caught:
        settings_from_env({"SBP_PG_PORT": "abc"})
    assert [e["loc"] for e in caught.value.errors()] == [("pg_port",)]


def test_settings_are_frozen() -> None:
    s = settings_from_env({})
    with pytest.raises(ValidationError):
        s.kafka_port = 1
    assert s.kafka_port == 19092


def test_registry_basic_auth_is_user_colon_password() -> None:
    s = Settings(registry_user="reg", registry_password="s3cret")
    assert s.registry_basic_auth == "reg:s3cret"


def test_each_redis_client_logs_in_as_its_own_user() -> None:
    s = settings_from_env({})
    assert s.redis_url_for("gateway") == (
        "redis://sbp-gateway:sbp-redis-gateway-dev@127.0.0.1:16379/0"
    )
    assert s.redis_url_for("worker") == "redis://sbp-worker:sbp-redis-worker-dev@127.0.0.1:16379/0"
    assert s.redis_url_for("ops") == "redis://sbp-ops:sbp-redis-ops-dev@127.0.0.1:16379/0"


def test_redis_credentials_come_from_the_environment() -> None:
    s = settings_from_env({"SBP_REDIS_WORKER_USER": "w2", "SBP_REDIS_WORKER_PASSWORD": "pw2"})
    assert s.redis_credentials("worker") == ("w2", "pw2")
    assert s.redis_credentials("gateway") == ("sbp-gateway", "sbp-redis-gateway-dev")


@pytest.mark.parametrize("password", ["p@ss:w/rd", "100%?#&= é", ""])
def test_redis_passwords_are_url_quoted_so_redis_py_reads_them_back(password: str) -> None:
    s = Settings(redis_ops_user="ops:1@x", redis_ops_password=password)
    # Only parsed: a client connects on its first command.
    client = redis.Redis.from_url(s.redis_url_for("ops"))
    parsed = client.connection_pool.connection_kwargs
    client.close()
    assert (parsed["username"], parsed.get("password") or "") == ("ops:1@x", password)
    assert (parsed["host"], parsed["port"], parsed["db"]) == ("127.0.0.1", 16379, 0)


def test_an_unknown_redis_client_is_refused() -> None:
    with pytest.raises(KeyError):
        Settings().redis_url_for("default")


def test_outside_dev_mode_no_default_password_is_accepted() -> None:
    with pytest.raises(ValueError, match="SBP_PG_GATEWAY_PASSWORD"):
        settings_from_env({"SBP_DEV_MODE": "false"})
    passwords = {
        "SBP_" + name.upper(): f"real-{name}"
        for name in Settings.model_fields
        if name.endswith("_password") and name != "pg_superuser_password"
    }
    # Every password set: accepted (the superuser's has no default and may stay unset).
    assert settings_from_env({"SBP_DEV_MODE": "false", **passwords}).dev_mode is False
    one_left = {k: v for k, v in passwords.items() if k != "SBP_REDIS_WORKER_PASSWORD"}
    with pytest.raises(ValueError, match="SBP_REDIS_WORKER_PASSWORD"):
        settings_from_env({"SBP_DEV_MODE": "false", **one_left})
