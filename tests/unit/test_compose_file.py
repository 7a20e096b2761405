"""docker-compose.kafka.yml: the structure that would break `docker compose up`.

Docker cannot run on the dev machines, so nothing here starts a container. These
checks hold the file to the code it names: services that wait on each other
exist and can become ready, ports and versions match the local stack
(sbp/settings.py, devstack/kafka.py), the single-node broker's replication
factors are 1, and every command, module and `SBP_*` variable the containers
use exists in the repo. Kafka's authentication, authorizer and principals are
held to devstack/kafka.py and the settings; tests/integration/test_kafka_acl.py
also boots a broker from the file's Kafka settings.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
from collections.abc import Iterator
from typing import Any

import pytest
import typer.main
import yaml

from devstack.kafka import KAFKA_VERSION, KRAFT_PRINCIPAL, server_properties
from devstack.redis_server import acl_rules
from sbp import cli
from sbp.settings import REPO_ROOT, Settings, settings_from_env
from streams.kafka_acls import SERVICE_PRINCIPALS

COMPOSE_FILE = REPO_ROOT / "docker-compose.kafka.yml"

INFRA = ("kafka", "postgres", "redis")
PROJECT = ("registry", "admin", "worker", "pg-sink", "gateway")

# Host port of each long-running service -> the Settings field whose default it mirrors.
HOST_PORT_FIELDS = {
    "kafka": "kafka_port",
    "postgres": "pg_port",
    "redis": "redis_port",
    "registry": "registry_port",
    "admin": "admin_port",
    "gateway": "gateway_port",
    "worker": "worker_web_port",
    "pg-sink": "sink_web_port",
}

# What each project service must run, whatever its exact command line.
ENTRY_MODULES = {
    "registry": "registry.app",
    "admin": "admin.app",
    "gateway": "gateway.app",
    "worker": "streams.worker",
    "pg-sink": "sinks.timescale.sink_worker",
}

# The setting that names the port a non-uvicorn service listens on in its container.
WEB_PORT_VARIABLES = {"worker": "SBP_WORKER_WEB_PORT", "pg-sink": "SBP_SINK_WEB_PORT"}

DEFAULTS = Settings()


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = compose["services"]
    assert isinstance(found, dict)
    return found


def _depends_on(service: dict[str, Any]) -> dict[str, str]:
    """Target -> condition; the list form means `service_started`."""
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return dict.fromkeys(deps, "service_started")
    return {name: spec.get("condition", "service_started") for name, spec in deps.items()}


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


def _argv(service: dict[str, Any]) -> list[str]:
    command = service.get("command")
    assert isinstance(command, list), "commands are exec-form lists (no shell, no word splitting)"
    return [str(arg) for arg in command]


def _option(argv: list[str], name: str) -> str:
    assert name in argv, f"{name} missing from {argv}"
    return argv[argv.index(name) + 1]


def _ports(service: dict[str, Any]) -> Iterator[tuple[str, int, int]]:
    """(host ip, published port, container port) for short and long port syntax."""
    for entry in service.get("ports") or []:
        if isinstance(entry, dict):
            yield entry.get("host_ip", ""), int(entry["published"]), int(entry["target"])
            continue
        parts = str(entry).split("/")[0].split(":")
        ip = parts[0] if len(parts) == 3 else ""
        # A host range ("18066-18075") serves scaled replicas; its first port is the default.
        yield ip, int(parts[-2].split("-")[0]), int(parts[-1])


def _is_one_shot(service: dict[str, Any]) -> bool:
    return str(service.get("restart", "no")) == "no" and not service.get("ports")


def _healthcheck_port(service: dict[str, Any]) -> int:
    test = " ".join(str(part) for part in service["healthcheck"]["test"])
    match = re.search(r"http://(?:127\.0\.0\.1|localhost):(\d+)/", test)
    assert match, f"no local HTTP URL in healthcheck {test!r}"
    return int(match.group(1))


def test_the_whole_stack_is_declared(services: dict[str, dict[str, Any]]) -> None:
    assert set(INFRA + PROJECT) <= set(services)


def test_every_dependency_exists_and_none_is_circular(
    services: dict[str, dict[str, Any]],
) -> None:
    for name, service in services.items():
        missing = set(_depends_on(service)) - set(services)
        assert not missing, f"{name} depends on undeclared services {missing}"

    # Depth-first search: compose refuses a cycle, and reports it only at `up`.
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, f"dependency cycle: {' -> '.join((*path, name))}"
        if name in done:
            return
        for target in _depends_on(services[name]):
            visit(target, (*path, name))
        done.add(name)

    for name in services:
        visit(name, ())


def test_every_long_running_service_has_a_healthcheck(
    services: dict[str, dict[str, Any]],
) -> None:
    for name, service in services.items():
        if _is_one_shot(service):
            continue
        check = service.get("healthcheck") or {}
        assert check.get("test") and not check.get("disable"), f"{name} has no healthcheck"


def test_dependencies_wait_on_a_condition_their_target_can_reach(
    services: dict[str, dict[str, Any]],
) -> None:
    for name, service in services.items():
        for target, condition in _depends_on(service).items():
            if _is_one_shot(services[target]):
                # A one-shot is never "healthy"; waiting for it to start would race it.
                assert condition == "service_completed_successfully", (name, target)
            else:
                # Readiness, not start: a started process is not yet serving.
                assert condition == "service_healthy", (name, target)
                assert services[target].get("healthcheck"), (name, target)


def test_kafka_is_the_local_stacks_version(services: dict[str, dict[str, Any]]) -> None:
    assert KAFKA_VERSION.startswith("3.9.")
    assert services["kafka"]["image"] == f"apache/kafka:{KAFKA_VERSION}"


def test_host_ports_are_the_local_stack_defaults(services: dict[str, dict[str, Any]]) -> None:
    for name, field in HOST_PORT_FIELDS.items():
        published = [(ip, port) for ip, port, _ in _ports(services[name])]
        assert published == [(DEFAULTS.host, getattr(DEFAULTS, field))], name


def test_kafka_advertises_to_the_host_what_the_host_can_reach(
    services: dict[str, dict[str, Any]],
) -> None:
    env = _environment(services["kafka"])
    advertised = dict(item.split("://", 1) for item in env["KAFKA_ADVERTISED_LISTENERS"].split(","))
    (_, published, target), *_ = _ports(services["kafka"])
    # The broker hands clients this address in metadata; host tools must reach it.
    assert advertised["EXTERNAL"] == f"{DEFAULTS.host}:{published}"
    assert published == target, "the EXTERNAL port must be published unchanged"
    assert f"EXTERNAL://:{target}" in env["KAFKA_LISTENERS"].split(",")


def test_single_node_broker_settings(services: dict[str, dict[str, Any]]) -> None:
    env = _environment(services["kafka"])
    for key in (
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR",
        "KAFKA_DEFAULT_REPLICATION_FACTOR",
        "KAFKA_MIN_INSYNC_REPLICAS",
    ):
        assert env.get(key) == "1", key
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert env["KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS"] == "0"
    for name, service in services.items():
        # The project's containers (the kafka one reads only the admin's credential).
        if "build" in service:
            assert _environment(service).get("SBP_KAFKA_REPLICATION_FACTOR") == "1", name


# Settings that apache/kafka's KafkaDockerWrapper does not turn into server properties.
_NOT_SERVER_PROPERTIES = {
    "KAFKA_VERSION",
    "KAFKA_HEAP_OPT",
    "KAFKA_LOG4J_OPTS",
    "KAFKA_OPTS",
    "KAFKA_JMX_OPTS",
    "KAFKA_JVM_PERFORMANCE_OPTS",
    "KAFKA_GC_LOG_OPTS",
    "KAFKA_LOG4J_ROOT_LOGLEVEL",
    "KAFKA_LOG4J_LOGGERS",
    "KAFKA_TOOLS_LOG4J_LOGLEVEL",
    "KAFKA_JMX_HOSTNAME",
}


def docker_kafka_properties(env: dict[str, str]) -> dict[str, str]:
    """The server.properties the apache/kafka image writes from its KAFKA_* variables:
    KafkaDockerWrapper drops `KAFKA_`, lowercases, and maps `_` to `.`, `___` to `-`
    and `__` to `_`."""
    props = {}
    for key, value in env.items():
        if key.startswith("KAFKA_") and key not in _NOT_SERVER_PROPERTIES:
            name = key.replace("KAFKA_", "").lower().replace("_", ".")
            props[name.replace("...", "-").replace("..", "_")] = value
    return props


def _listeners(value: str) -> dict[str, str]:
    """`NAME://host:port,...` -> name -> host:port."""
    return dict(item.split("://", 1) for item in value.split(","))


def test_kafka_authenticates_and_authorizes_like_the_local_stack(
    services: dict[str, dict[str, Any]],
) -> None:
    env = _environment(services["kafka"])
    props = docker_kafka_properties(env)
    local = server_properties(settings_from_env(env), "unused")
    for key in (
        "authorizer.class.name",
        "allow.everyone.if.no.acl.found",
        "super.users",
        "sasl.mechanism.inter.broker.protocol",
        "sasl.mechanism.controller.protocol",
    ):
        assert props[key] == local[key], key

    # Every listener asks for a login: SCRAM-SHA-512 for clients, the node's own
    # PLAIN user on the controller listener, which listens inside the container only.
    protocols = dict(item.split(":") for item in props["listener.security.protocol.map"].split(","))
    assert set(protocols.values()) == {"SASL_PLAINTEXT"}
    controller = props["controller.listener.names"]
    assert _listeners(props["listeners"])[controller].startswith("localhost:")
    for name in set(protocols) - {controller}:
        listener = f"listener.name.{name.lower()}"
        mechanisms = props.get(
            f"{listener}.sasl.enabled.mechanisms", props["sasl.enabled.mechanisms"]
        )
        assert mechanisms == local["listener.name.client.sasl.enabled.mechanisms"], name
        assert (
            props[f"{listener}.scram-sha-512.sasl.jaas.config"]
            == local["listener.name.client.scram-sha-512.sasl.jaas.config"]
        ), name
    ours = f"listener.name.{controller.lower()}"
    assert props[f"{ours}.sasl.enabled.mechanisms"] == "PLAIN"
    jaas = props[f"{ours}.plain.sasl.jaas.config"]
    assert f'username="{KRAFT_PRINCIPAL}"' in jaas
    assert f'user_{KRAFT_PRINCIPAL}="' in jaas


def _kafka_settings(service: dict[str, Any]) -> Settings:
    return settings_from_env(_environment(service))


def test_kafka_principals_match_across_containers(services: dict[str, dict[str, Any]]) -> None:
    """`init` creates each service's SCRAM user with the password that service logs in
    with; the broker's super user is the admin `init` and the format step use."""
    init = _kafka_settings(services["init"])
    # Container -> the Kafka principal its code logs in as ("admin" runs the admin API).
    containers = {"gateway": "gateway", "worker": "worker", "pg-sink": "sink", "admin": "admin_api"}
    for container, principal in containers.items():
        own = _kafka_settings(services[container]).kafka_sasl(principal)
        assert own == init.kafka_sasl(principal), container
    provisioned = {p.client for p in SERVICE_PRINCIPALS}
    init_env = _environment(services["init"])
    for principal in provisioned:
        assert f"SBP_KAFKA_{principal.upper()}_PASSWORD" in init_env, principal

    kafka = services["kafka"]
    admin_user, admin_password = init.kafka_sasl("admin")
    assert _kafka_settings(kafka).kafka_sasl("admin") == (admin_user, admin_password)
    assert docker_kafka_properties(_environment(kafka))["super.users"] == (
        f"User:{admin_user};User:{KRAFT_PRINCIPAL}"
    )
    script = _argv(kafka)[-1]
    assert "name=$$SBP_KAFKA_ADMIN_USER,password=$$SBP_KAFKA_ADMIN_PASSWORD" in script
    assert "--command-config" in kafka["healthcheck"]["test"]


def test_each_container_has_only_its_own_kafka_password(
    services: dict[str, dict[str, Any]],
) -> None:
    every = {f"SBP_KAFKA_{p.client.upper()}_PASSWORD" for p in SERVICE_PRINCIPALS}
    own = {
        "gateway": {"SBP_KAFKA_GATEWAY_PASSWORD"},
        "worker": {"SBP_KAFKA_WORKER_PASSWORD"},
        "pg-sink": {"SBP_KAFKA_SINK_PASSWORD"},
        "admin": {"SBP_KAFKA_ADMIN_API_PASSWORD"},
        "kafka": {"SBP_KAFKA_ADMIN_PASSWORD"},
        "init": {"SBP_KAFKA_ADMIN_PASSWORD", *every},
    }
    for name, service in services.items():
        passwords = {k for k in _environment(service) if re.fullmatch(r"SBP_KAFKA_\w+_PASSWORD", k)}
        assert passwords == own.get(name, set()), name


def test_redis_keeps_nothing_on_disk(services: dict[str, dict[str, Any]]) -> None:
    argv = _argv(services["redis"])
    assert _option(argv, "--save") == ""
    assert _option(argv, "--appendonly") == "no"


def _redis_users(argv: list[str]) -> list[tuple[str, ...]]:
    """The tokens of each `--user` directive, in order."""
    users: list[tuple[str, ...]] = []
    for i, arg in enumerate(argv):
        if arg == "--user":
            rest = argv[i + 1 :]
            end = next((j for j, a in enumerate(rest) if a.startswith("--")), len(rest))
            users.append(tuple(rest[:end]))
    return users


def _redis_settings(services: dict[str, dict[str, Any]]) -> Settings:
    """The Redis credentials the containers use: the gateway's and the worker's from
    their environments, the ops user's from the Redis healthcheck."""
    env = {**_environment(services["gateway"]), **_environment(services["worker"])}
    check = " ".join(str(part) for part in services["redis"]["healthcheck"]["test"])
    match = re.search(r"redis-cli --user (\S+) ", check)
    assert match, f"the Redis healthcheck logs in as no user: {check!r}"
    env["SBP_REDIS_OPS_USER"] = match.group(1)
    env["SBP_REDIS_OPS_PASSWORD"] = _environment(services["redis"])["REDISCLI_AUTH"]
    return settings_from_env(env)


def test_redis_has_the_local_stacks_acl_users(services: dict[str, dict[str, Any]]) -> None:
    # The same principals, rules and password hashes as devstack/redis_server.py
    # writes to its aclfile: a password changed on one side only fails here.
    settings = _redis_settings(services)
    assert _redis_users(_argv(services["redis"])) == acl_rules(settings)
    assert acl_rules(settings)[0] == ("default", "reset", "off")


def test_each_container_has_only_its_own_redis_password(
    services: dict[str, dict[str, Any]],
) -> None:
    own = {"gateway": {"SBP_REDIS_GATEWAY_PASSWORD"}, "worker": {"SBP_REDIS_WORKER_PASSWORD"}}
    for name, service in services.items():
        passwords = {k for k in _environment(service) if re.fullmatch(r"SBP_REDIS_\w+_PASSWORD", k)}
        assert passwords == own.get(name, set()), name


def test_each_container_has_only_its_own_postgres_password(
    services: dict[str, dict[str, Any]],
) -> None:
    own = {
        "registry": {"SBP_PG_REGISTRY_PASSWORD"},
        "admin": {"SBP_PG_ADMIN_PASSWORD"},
        "pg-sink": {"SBP_PG_SINK_PASSWORD"},
        "gateway": {"SBP_PG_GATEWAY_PASSWORD"},
    }
    for name, service in services.items():
        if name == "init":  # creates every role, so it holds every password
            continue
        passwords = {k for k in _environment(service) if re.fullmatch(r"SBP_PG_\w+_PASSWORD", k)}
        assert passwords == own.get(name, set()), name


def test_http_services_run_with_read_deadlines(services: dict[str, dict[str, Any]]) -> None:
    for name in ("registry", "admin", "gateway"):
        argv = _argv(services[name])
        assert _option(argv, "--http") == "sbp.slow_client_guard:GuardedHttpToolsProtocol", name


def test_commands_run_modules_that_exist(services: dict[str, dict[str, Any]]) -> None:
    for name, module in ENTRY_MODULES.items():
        argv = _argv(services[name])
        if "--factory" in argv:
            target = next(arg for arg in argv[1:] if not arg.startswith("-") and ":" in arg)
            module_name, _, attr = target.partition(":")
            assert module_name == module, name
            assert callable(getattr(importlib.import_module(module_name), attr)), target
        else:
            assert _option(argv, "-m") == module, name
        assert importlib.util.find_spec(module) is not None, module


def test_sbp_commands_exist(services: dict[str, dict[str, Any]]) -> None:
    root = typer.main.get_command(cli.app)
    for name, service in services.items():
        if not service.get("command") or _argv(service)[0] != "sbp":
            continue
        argv = _argv(service)
        command: Any = root
        for word in (arg for arg in argv[1:] if not arg.startswith("-")):
            commands = getattr(command, "commands", {})
            assert word in commands, f"{name} runs `{' '.join(argv)}`: no `{word}` command"
            command = commands[word]
        options = {opt for param in command.params for opt in getattr(param, "opts", [])}
        for flag in (arg.split("=", 1)[0] for arg in argv[1:] if arg.startswith("--")):
            assert flag in options, f"{name} runs `{' '.join(argv)}`: no {flag} option"


def test_services_listen_where_they_are_published_and_checked(
    services: dict[str, dict[str, Any]],
) -> None:
    for name in PROJECT:
        service = services[name]
        argv = _argv(service)
        (_, _, target), *_ = _ports(service)
        if "--factory" in argv:
            assert _option(argv, "--host") == "0.0.0.0", name
            assert int(_option(argv, "--port")) == target, name
        else:
            # These bind SBP_HOST (0.0.0.0 in the container) on the port set here.
            assert int(_environment(service)[WEB_PORT_VARIABLES[name]]) == target
        assert _healthcheck_port(service) == target, name


def test_every_sbp_variable_is_a_setting(services: dict[str, dict[str, Any]]) -> None:
    # settings_from_env reads only known fields: a misspelt or unsupported
    # variable is ignored without a word, and the service falls back to 127.0.0.1.
    known = {"SBP_" + field.upper() for field in Settings.model_fields}
    unknown = {
        name: sorted(k for k in _environment(service) if k.startswith("SBP_") and k not in known)
        for name, service in services.items()
    }
    unknown = {name: keys for name, keys in unknown.items() if keys}
    assert not unknown, f"variables sbp.settings does not read: {unknown}"


def test_project_services_share_one_image_built_here(
    services: dict[str, dict[str, Any]],
) -> None:
    built = {name: s for name, s in services.items() if "build" in s}
    assert set(PROJECT) <= set(built)
    assert len({s["image"] for s in built.values()}) == 1
    for service in built.values():
        context = REPO_ROOT / service["build"]["context"]
        assert (context / service["build"].get("dockerfile", "Dockerfile")).is_file()


def test_the_worker_can_be_scaled(services: dict[str, dict[str, Any]]) -> None:
    """`docker compose up --scale worker=N`: no fixed name, a host port per replica, and
    a state volume per replica (RocksDB locks its files: replicas cannot share one)."""
    worker = services["worker"]
    assert "container_name" not in worker
    (published,) = worker["ports"]
    first, last = str(published).split(":")[1].split("-")
    assert int(last) - int(first) + 1 >= 8
    assert all(":" not in str(volume) for volume in worker.get("volumes", []))
