"""A three-broker Apache Kafka cluster (KRaft) on loopback ports, for the cluster tests and operators' rehearsals.

Every node runs broker and controller in one JVM (combined mode), from the same Maven jars as the
single-node `ApacheKafka`. Each node listens on three ports:

- `PLAINTEXT` for the tests' own admin work and for the brokers among themselves,
- `SASL_SSL` with SCRAM-SHA-512 users (created at format time) and a certificate signed by a
  certificate authority generated here, at start-up,
- `CONTROLLER` for the KRaft quorum.

A node can be SIGKILLed and started again on its own data and ports, which is what the fault tests
do. CPU is the constraint (three JVMs on two cores), so heaps are small and threads few.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import structlog
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID
from kafka import KafkaAdminClient
from kafka.errors import KafkaError

from infra.local.brokers import KAFKA_DIR, _kafka_cluster_id, answers_metadata, java_command
from infra.local.ports import free_port, wait_until

log = structlog.get_logger(__name__)
_LEADER_EPOCH = re.compile(r"Completed transition to Leader\(.*?epoch=(\d+)")


@dataclass(frozen=True)
class ScramUser:
    name: str
    password: str


@dataclass(frozen=True)
class TlsFiles:
    """The generated certificate authority (for clients) and the brokers' PKCS12 keystore."""

    ca_file: Path
    keystore: Path
    keystore_password: str


def make_tls_files(directory: Path) -> TlsFiles:
    """A CA and one broker certificate for 127.0.0.1 and localhost, valid for a day; no keytool needed."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Escalation Ledger test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    broker_key = ec.generate_private_key(ec.SECP256R1())
    broker_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(broker_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    password = secrets.token_urlsafe(16)
    directory.mkdir(parents=True, exist_ok=True)
    ca_file = directory / "ca.pem"
    ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    keystore = directory / "broker.p12"
    keystore.write_bytes(
        pkcs12.serialize_key_and_certificates(
            b"broker",
            broker_key,
            broker_cert,
            [ca_cert],
            serialization.BestAvailableEncryption(password.encode()),
        )
    )
    return TlsFiles(ca_file, keystore, password)


class KafkaNode:
    """One KRaft node (broker and controller) of a `KafkaCluster`."""

    def __init__(self, node_id: int, work_dir: Path) -> None:
        self.node_id = node_id
        self.work_dir = work_dir
        self.port = free_port()
        self.sasl_port = free_port()
        self.controller_port = free_port()
        self.config_file = work_dir / "server.properties"
        self.log_file = work_dir / "kafka.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def sasl_bootstrap(self) -> str:
        return f"127.0.0.1:{self.sasl_port}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def launch(self, java: list[str]) -> None:
        with self.log_file.open("ab") as output:
            self.process = subprocess.Popen(  # noqa: S603 - our own launcher arguments
                [*java, "kafka.Kafka", str(self.config_file)],
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def kill(self) -> None:
        """SIGKILL: no shutdown hook, no controlled leader hand-over; what a crashed machine does."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()

    def stop(self, timeout: float = 30.0) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def check_alive(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            tail = self.log_file.read_text(errors="replace")[-4000:]
            msg = f"kafka node {self.node_id} exited with code {self.process.returncode}; its log ends:\n{tail}"
            raise RuntimeError(msg)


class KafkaCluster:
    """Three KRaft nodes from the Maven jars, with PLAINTEXT and SASL_SSL (SCRAM-SHA-512) listeners.

    `users` are SCRAM users created at format time; the first is also the brokers' own login. Every
    node's data and ports survive `kill_node`/`restart_node`.
    """

    def __init__(
        self,
        size: int = 3,
        users: tuple[ScramUser, ...] = (),
        work_dir: Path | None = None,
        libs: Path = KAFKA_DIR / "libs",
        heap: str = "320m",
    ) -> None:
        self._owns_dir = work_dir is None
        self.work_dir = work_dir or Path(tempfile.mkdtemp(prefix="ledger-kafka-cluster-"))
        self.libs = libs
        self.heap = heap
        self.users = users or (ScramUser("ledger", secrets.token_urlsafe(16)),)
        self.nodes = [KafkaNode(i, self.work_dir / f"node{i}") for i in range(1, size + 1)]
        self.tls: TlsFiles | None = None
        self.started_in: float | None = None

    # -- Addresses ----------------------------------------------------------------------------

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(node.bootstrap for node in self.nodes)

    @property
    def sasl_bootstrap_servers(self) -> str:
        return ",".join(node.sasl_bootstrap for node in self.nodes)

    def node(self, node_id: int) -> KafkaNode:
        return self.nodes[node_id - 1]

    # -- Lifecycle ----------------------------------------------------------------------------

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()
        if self._owns_dir:
            shutil.rmtree(self.work_dir, ignore_errors=True)

    def start(self, timeout: float = 180.0) -> None:
        began = time.monotonic()
        self._prepare()
        java = self._java()
        for node in self.nodes:
            node.launch(java)
        wait_until(self._all_brokers_registered, timeout=timeout, what="all brokers of the Kafka cluster", interval=0.5)
        self.started_in = time.monotonic() - began
        log.info("cluster.started", bootstrap=self.bootstrap_servers, seconds=round(self.started_in, 1))

    def stop(self) -> None:
        """SIGTERM to every node at once (one by one, each waits for the others' controlled shutdown)."""
        for node in self.nodes:
            if node.process is not None and node.running:
                node.process.send_signal(signal.SIGTERM)
        for node in self.nodes:
            node.stop(timeout=10.0)

    def kill_node(self, node_id: int) -> None:
        self.node(node_id).kill()
        log.info("cluster.node_killed", node=node_id)

    def restart_node(self, node_id: int, timeout: float = 120.0) -> None:
        """Start a killed node again on its data; ready once the cluster sees every broker again."""
        node = self.node(node_id)
        node.launch(self._java())
        wait_until(self._all_brokers_registered, timeout=timeout, what=f"kafka node {node_id} to rejoin", interval=0.5)

    # -- What the cluster says about itself ---------------------------------------------------

    def admin(self) -> KafkaAdminClient:
        live = ",".join(node.bootstrap for node in self.nodes if node.running)
        return KafkaAdminClient(bootstrap_servers=live, request_timeout_ms=5000, bootstrap_timeout_ms=5000)

    def active_controller(self) -> int:
        """The node id of the quorum's leader (the active controller), from the nodes' own logs.

        Brokers answer DescribeCluster with any live broker as "controller" in KRaft, so the
        quorum's state transitions (logged by QuorumState) are the honest source.
        """
        best: tuple[int, int] | None = None
        for node in self.nodes:
            if not node.running:
                continue
            for epoch in _LEADER_EPOCH.findall(node.log_file.read_text(errors="replace")):
                if best is None or int(epoch) > best[0]:
                    best = (int(epoch), node.node_id)
        if best is None:
            msg = "no running node has logged becoming the quorum leader yet"
            raise RuntimeError(msg)
        return best[1]

    def partition_leaders(self, topic: str) -> dict[int, int]:
        admin = self.admin()
        try:
            described: list[dict[str, Any]] = admin.describe_topics([topic])
        finally:
            admin.close()
        return {p["partition_index"]: p["leader_id"] for p in described[0]["partitions"]}

    def in_sync_replicas(self, topic: str) -> dict[int, list[int]]:
        admin = self.admin()
        try:
            described: list[dict[str, Any]] = admin.describe_topics([topic])
        finally:
            admin.close()
        return {p["partition_index"]: sorted(p["isr_nodes"]) for p in described[0]["partitions"]}

    def _all_brokers_registered(self) -> bool:
        for node in self.nodes:
            node.check_alive()
        if not all(answers_metadata(node.bootstrap) for node in self.nodes):
            return False
        try:
            admin = self.admin()
        except (KafkaError, OSError):
            return False
        try:
            brokers = admin.describe_cluster()["brokers"]
        except (KafkaError, OSError):
            return False
        finally:
            admin.close()
        return len(brokers) == len(self.nodes)

    # -- Set-up -------------------------------------------------------------------------------

    def _java(self) -> list[str]:
        return java_command(self.libs, heap=self.heap, extra=["-XX:ActiveProcessorCount=1", "-Xss512k"])

    def _prepare(self) -> None:
        if self.tls is not None:
            return
        if not any(self.libs.glob("kafka_2.13-*.jar")):
            msg = f"no Kafka jars in {self.libs}; run `make kafka-jars`"
            raise FileNotFoundError(msg)
        self.tls = make_tls_files(self.work_dir / "tls")
        cluster_id = _kafka_cluster_id()
        voters = ",".join(f"{n.node_id}@127.0.0.1:{n.controller_port}" for n in self.nodes)
        scram = [arg for user in self.users for arg in ("--add-scram", _scram_credential(user))]
        for node in self.nodes:
            node.work_dir.mkdir(parents=True, exist_ok=True)
            node.config_file.write_text(self._server_properties(node, voters))
            result = subprocess.run(  # noqa: S603 - our own arguments
                [
                    *self._java(),
                    "kafka.tools.StorageTool",
                    "format",
                    f"--cluster-id={cluster_id}",
                    "-c",
                    str(node.config_file),
                    *scram,
                ],
                capture_output=True,
                text=True,
                check=False,
                timeout=180,  # seconds on an idle machine; minutes only when the CPU is starved
            )
            if result.returncode != 0:
                # The command line holds the SCRAM passwords; the tool's own output does not.
                msg = f"formatting Kafka node {node.node_id} failed: {result.stderr or result.stdout}"
                raise RuntimeError(msg)

    def _server_properties(self, node: KafkaNode, voters: str) -> str:
        assert self.tls is not None
        broker_user = self.users[0]
        jaas = (
            "org.apache.kafka.common.security.scram.ScramLoginModule required "
            f'username="{broker_user.name}" password="{broker_user.password}";'
        )
        replicas = str(len(self.nodes))
        settings = {
            "process.roles": "broker,controller",
            "node.id": str(node.node_id),
            "controller.quorum.voters": voters,
            "listeners": (
                f"PLAINTEXT://127.0.0.1:{node.port},SASL_SSL://127.0.0.1:{node.sasl_port},"
                f"CONTROLLER://127.0.0.1:{node.controller_port}"
            ),
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{node.port},SASL_SSL://127.0.0.1:{node.sasl_port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL",
            "sasl.enabled.mechanisms": "SCRAM-SHA-512",
            "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config": jaas,
            "ssl.keystore.type": "PKCS12",
            "ssl.keystore.location": str(self.tls.keystore),
            "ssl.keystore.password": self.tls.keystore_password,
            "ssl.key.password": self.tls.keystore_password,
            "log.dirs": str(node.work_dir / "data"),
            "num.partitions": "1",
            "default.replication.factor": replicas,
            "min.insync.replicas": "2",
            "unclean.leader.election.enable": "false",
            # Consumer offsets survive a broker loss only if they are replicated too.
            "offsets.topic.num.partitions": "3",
            "offsets.topic.replication.factor": replicas,
            "transaction.state.log.num.partitions": "1",
            "transaction.state.log.replication.factor": replicas,
            "transaction.state.log.min.isr": "2",
            "share.coordinator.state.topic.num.partitions": "1",
            "share.coordinator.state.topic.replication.factor": replicas,
            "share.coordinator.state.topic.min.isr": "2",
            "group.initial.rebalance.delay.ms": "0",
            "log.cleaner.dedupe.buffer.size": "8388608",
            "log.cleaner.threads": "1",
            "num.network.threads": "2",
            "num.io.threads": "2",
            "num.replica.fetchers": "1",
            "background.threads": "2",
            "num.recovery.threads.per.data.dir": "1",
            "auto.create.topics.enable": "false",
            # Notice a dead broker in seconds, not the default 9 s, so the fault tests measure failover.
            "broker.session.timeout.ms": "4000",
            "broker.heartbeat.interval.ms": "1000",
            "controller.quorum.election.timeout.ms": "1000",
            "controller.quorum.fetch.timeout.ms": "2000",
            "replica.lag.time.max.ms": "10000",
        }
        return "".join(f"{key}={value}\n" for key, value in settings.items())


def _scram_credential(user: ScramUser) -> str:
    return f"SCRAM-SHA-512=[name={user.name},password={user.password}]"
