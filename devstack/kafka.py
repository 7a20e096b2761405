"""Apache Kafka 3.9 in KRaft combined mode, run from Maven Central jars.

The jars are resolved once by `mvn` through `devstack/kafka/pom.xml` into a cache
folder under the state dir; the storage is formatted once; the broker then runs
as `java -cp libs/* kafka.Kafka server.properties`. Every internal topic has
replication factor 1 and min ISR 1, since there is a single node.
"""

from __future__ import annotations

import base64
import shutil
import subprocess
import uuid
from pathlib import Path

from confluent_kafka.admin import AdminClient

from devstack.processes import ManagedProcess, wait_until_ready
from sbp.settings import Settings

KAFKA_VERSION = "3.9.1"
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


def write_config(settings: Settings) -> Path:
    host = settings.host
    props = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@{host}:{settings.kafka_controller_port}",
        "listeners": (
            f"PLAINTEXT://{host}:{settings.kafka_port},"
            f"CONTROLLER://{host}:{settings.kafka_controller_port}"
        ),
        "advertised.listeners": f"PLAINTEXT://{host}:{settings.kafka_port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
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
    path = _properties(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
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


def format_storage(settings: Settings) -> None:
    """Format the KRaft log dir once; a formatted dir keeps its cluster id."""
    if (_data_dir(settings) / "meta.properties").exists():
        return
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
        ),
        check=True,
        stdout=subprocess.DEVNULL,
    )


def is_ready(settings: Settings) -> bool:
    try:
        admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap, "log_level": 0})
        meta = admin.list_topics(timeout=2)
    except Exception:
        return False
    return bool(meta.brokers)


def start(settings: Settings) -> None:
    """Start the broker without waiting, so PostgreSQL can boot meanwhile."""
    ensure_jars(settings)
    proc = process(settings)
    if proc.is_running():
        return
    write_config(settings)
    format_storage(settings)
    proc.start(_java_cmd(settings, "kafka.Kafka", str(_properties(settings))))


def wait_ready(settings: Settings, timeout: float = 120.0) -> None:
    wait_until_ready(process(settings), lambda: is_ready(settings), timeout)


def down(settings: Settings) -> bool:
    return process(settings).stop(timeout=60.0)
