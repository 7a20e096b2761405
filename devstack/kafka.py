"""Apache Kafka 3.9 in KRaft combined mode, run from Maven Central jars.

The jars are resolved once by `mvn` through `devstack/kafka/pom.xml` into a cache
folder under the state dir; the storage is formatted once; the broker then runs
as `java -cp libs/* kafka.Kafka server.properties`. Every internal topic has
replication factor 1 and min ISR 1, since there is a single node.

Authentication and authorization (docs/kafka-acl.md):
- Clients connect over SASL_PLAINTEXT with SCRAM-SHA-512, each as its service's
  principal (`settings.kafka_config`). The StandardAuthorizer denies whatever no
  ACL allows; `streams.acl_admin` creates the service users and their ACLs.
- The admin principal is the super user for clients. Its SCRAM credential is
  written into the storage at format time (as salt and salted password, so the
  password is never on a command line): KRaft has no other way to create the
  first user.
- The controller listener (loopback) uses SASL/PLAIN with one user, the node's
  own identity, whose random password exists only in server.properties (0600).
  The node registers with its controller over that listener before any ACL can
  exist, so that identity must be a super user too; left PLAINTEXT, the super
  user would have to be `User:ANONYMOUS`, i.e. any local process.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import shutil
import subprocess
import uuid
from pathlib import Path

from confluent_kafka.admin import AdminClient

from devstack.processes import ManagedProcess, wait_until_ready
from sbp.settings import Settings
from streams.acl_admin import SCRAM_ITERATIONS

KAFKA_VERSION = "3.9.1"
SCRAM_MECHANISM = "SCRAM-SHA-512"
# The node's identity toward its own controller listener (see the module docstring).
KRAFT_PRINCIPAL = "sbp-kraft"
AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
_HERE = Path(__file__).resolve().parent
POM = _HERE / "kafka" / "pom.xml"
LOG4J = _HERE / "kafka" / "log4j.properties"


def kafka_dir(settings: Settings) -> Path:
    return settings.state_dir / "kafka"


def libs_dir(settings: Settings) -> Path:
    return settings.state_dir / "cache" / f"kafka-{KAFKA_VERSION}-libs"


def process(settings: Settings) -> ManagedProcess:
    return ManagedProcess("kafka", settings.state_dir / "run", marker=str(_properties(settings)))


def ensure_jars(settings: Settings) -> Path:
    """Resolve the broker classpath through Maven, once per version."""
    target = libs_dir(settings)
    done = target / ".complete"
    if done.exists():
        return target
    if shutil.which("mvn") is None:
        raise RuntimeError("mvn is not installed; run scripts/setup (it apt-get installs maven)")
    target.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            "mvn",
            "-B",
            "-q",
            "-f",
            str(POM),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={target}",
            "-DincludeScope=runtime",
        ],
        check=True,
    )
    if not any(target.glob(f"kafka_2.13-{KAFKA_VERSION}.jar")):
        raise RuntimeError(f"maven did not deliver kafka_2.13-{KAFKA_VERSION}.jar into {target}")
    done.write_text(KAFKA_VERSION + "\n")
    return target


def _properties(settings: Settings) -> Path:
    return kafka_dir(settings) / "server.properties"


def _data_dir(settings: Settings) -> Path:
    return kafka_dir(settings) / "data"


def _marker(settings: Settings) -> Path:
    """Written after a format that added the admin's SCRAM credential: its user and a
    fingerprint of its password, to tell a storage from before SASL or another admin."""
    return kafka_dir(settings) / "admin-credential"


def admin_fingerprint(settings: Settings) -> str:
    user, password = settings.kafka_sasl("admin")
    return f"{user} {hashlib.sha256(f'{user}:{password}'.encode()).hexdigest()}\n"


def _jaas(module: str, **options: str) -> str:
    parts = [f"org.apache.kafka.common.security.{module}", "required"]
    parts += [f'{key}="{value}"' for key, value in options.items()]
    return " ".join(parts) + ";"


def server_properties(settings: Settings, controller_password: str) -> dict[str, str]:
    host = settings.host
    admin_user, _ = settings.kafka_sasl("admin")
    return {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@{host}:{settings.kafka_controller_port}",
        "listeners": (
            f"CLIENT://{host}:{settings.kafka_port},"
            f"CONTROLLER://{host}:{settings.kafka_controller_port}"
        ),
        "advertised.listeners": f"CLIENT://{host}:{settings.kafka_port}",
        "controller.listener.names": "CONTROLLER",
        # A single node opens no broker-to-broker connection, so the broker needs
        # no client credential of its own on CLIENT.
        "inter.broker.listener.name": "CLIENT",
        "listener.security.protocol.map": "CLIENT:SASL_PLAINTEXT,CONTROLLER:SASL_PLAINTEXT",
        "listener.name.client.sasl.enabled.mechanisms": SCRAM_MECHANISM,
        "sasl.mechanism.inter.broker.protocol": SCRAM_MECHANISM,
        "listener.name.client.scram-sha-512.sasl.jaas.config": _jaas("scram.ScramLoginModule"),
        "listener.name.controller.sasl.enabled.mechanisms": "PLAIN",
        "sasl.mechanism.controller.protocol": "PLAIN",
        # Server side (`user_<name>`) and the node's own login, in one entry.
        "listener.name.controller.plain.sasl.jaas.config": _jaas(
            "plain.PlainLoginModule",
            username=KRAFT_PRINCIPAL,
            password=controller_password,
            **{f"user_{KRAFT_PRINCIPAL}": controller_password},
        ),
        "authorizer.class.name": AUTHORIZER,
        "allow.everyone.if.no.acl.found": "false",
        "super.users": f"User:{admin_user};User:{KRAFT_PRINCIPAL}",
        "log.dirs": str(_data_dir(settings)),
        # Single node: every replicated internal topic must fit on one broker.
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "8",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "default.replication.factor": "1",
        "min.insync.replicas": "1",
        "num.partitions": "1",
        # Topics are declared in streams/topics.py; faust creates its own internal
        # topics through the admin API, so nothing relies on auto-creation.
        "auto.create.topics.enable": "false",
        # Consumers join at once instead of waiting 3 s for more members.
        "group.initial.rebalance.delay.ms": "0",
        "log.retention.check.interval.ms": "60000",
    }


def _write_private(path: Path, text: str) -> None:
    """Created 0600 before a byte is written; chmod too, as O_CREAT keeps an older file's mode."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    path.chmod(0o600)


def write_config(settings: Settings) -> Path:
    """server.properties with a fresh controller-listener password: only the node uses it."""
    props = server_properties(settings, secrets.token_urlsafe(24))
    path = _properties(settings)
    _write_private(path, "".join(f"{k}={v}\n" for k, v in props.items()))
    return path


def _java_cmd(settings: Settings, main: str, *args: str) -> list[str]:
    log_dir = settings.state_dir / "run"
    return [
        "java",
        "-Xms256m",
        "-Xmx768m",
        "-XX:+UseG1GC",
        "-Djava.awt.headless=true",
        f"-Dlog4j.configuration=file:{LOG4J}",
        f"-Dkafka.logs.dir={log_dir}",
        "-cp",
        f"{libs_dir(settings)}/*",
        main,
        *args,
    ]


class KafkaStorageError(RuntimeError):
    """The stack's Kafka storage cannot serve the configured admin; the message says what to do."""


def _reformat_advice(settings: Settings) -> str:
    return (
        "Kafka's data in the dev stack is disposable: stop the stack (`sbp dev down`), "
        f"delete {_data_dir(settings)} and the workers' state {settings.state_dir / 'worker'} "
        "(it records offsets of the old topics), then `sbp dev up` formats a new "
        "storage and creates the topics again."
    )


def check_storage(settings: Settings) -> None:
    """Refuse a storage formatted before SASL, or for another admin credential:
    the broker would start, but no provisioning could log in to it."""
    if not (_data_dir(settings) / "meta.properties").exists():
        return
    try:
        written = _marker(settings).read_text()
    except FileNotFoundError:
        raise KafkaStorageError(
            f"{_data_dir(settings)} was formatted before Kafka required SASL logins, so "
            "it has no admin user. " + _reformat_advice(settings)
        ) from None
    if written != admin_fingerprint(settings):
        raise KafkaStorageError(
            f"{_data_dir(settings)} was formatted for another admin user or password than "
            "SBP_KAFKA_ADMIN_USER / SBP_KAFKA_ADMIN_PASSWORD now say; set them back, or "
            "start over. " + _reformat_advice(settings)
        )


def scram_argument(user: str, password: str, salt: bytes | None = None) -> str:
    """`--add-scram` for `user`, given as salt and salted password (SCRAM's Hi(), i.e.
    PBKDF2-HMAC-SHA-512), so the password itself is never on a command line."""
    salt = salt if salt is not None else secrets.token_bytes(32)
    salted = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, SCRAM_ITERATIONS)
    b64 = base64.b64encode
    return (
        f'{SCRAM_MECHANISM}=[name={user},salt="{b64(salt).decode()}",'
        f'saltedpassword="{b64(salted).decode()}",iterations={SCRAM_ITERATIONS}]'
    )


def format_storage(settings: Settings) -> bool:
    """Format the KRaft log dir once, with the admin's SCRAM credential; a formatted
    dir keeps its cluster id and its users. True when it formatted one now."""
    check_storage(settings)
    if (_data_dir(settings) / "meta.properties").exists():
        return False
    cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    subprocess.run(
        _java_cmd(
            settings,
            "kafka.tools.StorageTool",
            "format",
            "-t",
            cluster_id,
            "-c",
            str(_properties(settings)),
            "--add-scram",
            scram_argument(*settings.kafka_sasl("admin")),
        ),
        check=True,
        stdout=subprocess.DEVNULL,
    )
    _write_private(_marker(settings), admin_fingerprint(settings))
    return True


def is_ready(settings: Settings) -> bool:
    try:
        admin = AdminClient({**settings.kafka_config("admin"), "log_level": 0})
        meta = admin.list_topics(timeout=2)
    except Exception:
        return False
    return bool(meta.brokers)


def start(settings: Settings) -> bool:
    """Start the broker without waiting, so PostgreSQL can boot meanwhile. True when it
    formatted a new, empty storage for it."""
    ensure_jars(settings)
    # Before the running check: a broker still running from before SASL would
    # otherwise be taken as ready for provisioning that can never log in.
    check_storage(settings)
    proc = process(settings)
    if proc.is_running():
        return False
    write_config(settings)
    formatted = format_storage(settings)
    proc.start(_java_cmd(settings, "kafka.Kafka", str(_properties(settings))))
    return formatted


def wait_ready(settings: Settings, timeout: float = 120.0) -> None:
    wait_until_ready(process(settings), lambda: is_ready(settings), timeout)


def down(settings: Settings) -> bool:
    return process(settings).stop(timeout=60.0)
