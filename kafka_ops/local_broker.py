"""The local Apache Kafka broker (single-node KRaft), resolved from Maven Central and run with Java."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka.admin import AdminClient

from core.errors import BrokerError
from core.settings import PROJECT_ROOT

log = logging.getLogger(__name__)

INFRA_DIR = PROJECT_ROOT / "infra" / "kafka"
POM = INFRA_DIR / "pom.xml"
JVM_OPTS = ("-Xms256m", "-Xmx768m", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-Djava.awt.headless=true")
MAIN_CLASS = "kafka.Kafka"
INSTALL_HINT = (
    "install Java 17+ and Maven (Debian: apt-get install openjdk-17-jre-headless maven), "
    "or run the broker with `docker compose up kafka`"
)


@dataclass(frozen=True)
class LocalBroker:
    """Where one local broker lives: its address and its folder (jars, config, data, pid, log)."""

    host: str
    port: int
    home: Path

    @classmethod
    def from_bootstrap(cls, bootstrap: str, run_dir: Path) -> LocalBroker:
        """The local broker for a single `host:port` bootstrap address."""
        first = bootstrap.split(",")[0].strip()
        host, _, port = first.rpartition(":")
        if len(bootstrap.split(",")) > 1:
            raise BrokerError(f"a local broker listens on one address, got {bootstrap!r}")
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise BrokerError(f"the local broker binds to loopback only, got {host!r} (is the broker remote?)")
        return cls(host="127.0.0.1" if host == "localhost" else host, port=int(port), home=run_dir / "kafka")

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def controller_port(self) -> int:
        """The KRaft controller's listener: the port after the broker's."""
        return self.port + 1

    @property
    def lib_dir(self) -> Path:
        return self.home / "lib"

    @property
    def data_dir(self) -> Path:
        return self.home / f"data-{self.port}"

    @property
    def config_file(self) -> Path:
        return self.home / f"server-{self.port}.properties"

    @property
    def pid_file(self) -> Path:
        return self.home / f"broker-{self.port}.pid"

    @property
    def log_file(self) -> Path:
        return self.home / f"broker-{self.port}.log"


def _pom_digest() -> str:
    return hashlib.sha256(POM.read_bytes()).hexdigest()[:16]


def _jars_current(broker: LocalBroker) -> bool:
    stamp = broker.lib_dir / ".pom-digest"
    return stamp.exists() and stamp.read_text() == _pom_digest()


def resolve_jars(broker: LocalBroker) -> None:
    """Copy the broker's jars from Maven Central (cached in ~/.m2) unless the pom is unchanged."""
    if _jars_current(broker):
        return
    mvn = shutil.which("mvn")
    if mvn is None:
        raise BrokerError(f"mvn not found: {INSTALL_HINT}")
    log.info("resolving the Kafka broker jars from Maven Central (first run only)")
    if broker.lib_dir.exists():
        shutil.rmtree(broker.lib_dir)
    broker.lib_dir.mkdir(parents=True)
    command = [
        mvn,
        "-B",
        "-q",
        "-f",
        str(POM),
        "dependency:copy-dependencies",
        f"-DoutputDirectory={broker.lib_dir}",
        "-DincludeScope=runtime",
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = (done.stdout + done.stderr).strip().splitlines()[-1:] or ["no output"]
        raise BrokerError(f"mvn could not resolve the Kafka broker: {tail[0]}")
    (broker.lib_dir / ".pom-digest").write_text(_pom_digest())


def kafka_version(broker: LocalBroker) -> str:
    """The broker version, from the jar that runs it."""
    jars = sorted(broker.lib_dir.glob("kafka_2.13-*.jar"))
    return jars[0].name.removeprefix("kafka_2.13-").removesuffix(".jar") if jars else "unknown"


def _classpath(broker: LocalBroker) -> str:
    return f"{broker.lib_dir}/*"


def _write_config(broker: LocalBroker) -> None:
    template = (INFRA_DIR / "server.properties.template").read_text()
    broker.config_file.write_text(
        template.format(
            host=broker.host,
            port=broker.port,
            controller_port=broker.controller_port,
            data_dir=broker.data_dir.resolve(),
        )
    )


def _format_storage(broker: LocalBroker, java: str) -> None:
    if (broker.data_dir / "meta.properties").exists():
        return
    cp = _classpath(broker)
    run = [java, "-cp", cp, "kafka.tools.StorageTool"]
    cluster_id = (
        subprocess.run([*run, "random-uuid"], capture_output=True, text=True, check=False).stdout.strip().splitlines()
    )
    if not cluster_id:
        raise BrokerError("kafka StorageTool could not make a cluster id (is the lib folder complete?)")
    done = subprocess.run(
        [*run, "format", "-t", cluster_id[-1], "-c", str(broker.config_file), "--ignore-formatted"],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise BrokerError(f"kafka storage format failed: {(done.stdout + done.stderr).strip()[-300:]}")


def running_pid(broker: LocalBroker) -> int | None:
    """The pid of our broker if its pid file names a live broker process of ours; a stale file is removed."""
    try:
        pid = int(broker.pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    if _is_our_broker(pid, broker):
        return pid
    log.info("removing stale pid file %s (process %s is gone)", broker.pid_file, pid)
    broker.pid_file.unlink(missing_ok=True)
    return None


def _is_our_broker(pid: int, broker: LocalBroker) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, PermissionError, IndexError):
        return False
    # A zombie is not a broker; the config path tells our broker from any other Java process.
    return state != "Z" and MAIN_CLASS.encode() in cmdline and str(broker.config_file).encode() in cmdline


def is_ready(
    bootstrap: str, timeout: float = 3.0, client_config: dict[str, str | int | float | bool] | None = None
) -> bool:
    """True when the broker answers a metadata request (the port being open is not enough)."""
    config: dict[str, str | int | float | bool] = {
        "bootstrap.servers": bootstrap,
        "log_level": 0,
        **(client_config or {}),
    }
    try:
        AdminClient(config).list_topics(timeout=timeout)
    except Exception:  # KafkaException or a timeout: not ready yet
        return False
    return True


def start(broker: LocalBroker, wait_seconds: float = 90.0) -> int:
    """Start the broker in the background (or find it running) and wait until it answers."""
    java = shutil.which("java")
    if java is None:
        raise BrokerError(f"java not found: {INSTALL_HINT}")
    broker.home.mkdir(parents=True, exist_ok=True)
    pid = running_pid(broker)
    if pid is not None:
        log.info("Kafka broker already running (pid %s) on %s", pid, broker.bootstrap)
        _wait_ready(broker, pid, wait_seconds)
        return pid
    if is_ready(broker.bootstrap, timeout=2.0):
        raise BrokerError(f"another Kafka broker (not started by momoguard) already listens on {broker.bootstrap}")
    taken = taken_port(broker)
    if taken is not None:
        raise BrokerError(
            f"{taken} is already in use by another process; pick another broker port with MOMOGUARD_KAFKA_BOOTSTRAP"
        )
    resolve_jars(broker)
    _write_config(broker)
    _format_storage(broker, java)
    log_handle = broker.log_file.open("ab")
    process = subprocess.Popen(
        [
            java,
            *JVM_OPTS,
            f"-Dlog4j2.configurationFile={INFRA_DIR / 'log4j2.properties'}",
            "-cp",
            _classpath(broker),
            MAIN_CLASS,
            str(broker.config_file),
        ],
        stdout=log_handle,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # survives the CLI that started it; stopped by pid with `kafka down`
    )
    log_handle.close()
    broker.pid_file.write_text(str(process.pid))
    log.info("started Kafka %s (pid %s) on %s", kafka_version(broker), process.pid, broker.bootstrap)
    _wait_ready(broker, process.pid, wait_seconds, process)
    return process.pid


def taken_port(broker: LocalBroker) -> str | None:
    """The first of the broker's two ports (its own, its controller's) that cannot be bound now, named; else None."""
    for port, role in ((broker.port, "the broker's"), (broker.controller_port, "its controller's")):
        if not _can_listen(broker.host, port):
            return f"port {port} ({role}) on {broker.host}"
    return None


def _can_listen(host: str, port: int) -> bool:
    """True when a listener can bind host:port now (with SO_REUSEADDR, as the JVM binds its listeners)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def _wait_ready(
    broker: LocalBroker, pid: int, wait_seconds: float, process: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        # A fresh child is watched through its handle: /proc can lag behind the exec for a moment.
        exited = process.poll() is not None if process is not None else not _is_our_broker(pid, broker)
        if exited:
            broker.pid_file.unlink(missing_ok=True)
            raise BrokerError(f"the Kafka broker exited during start-up: {_log_tail(broker)}")
        if is_ready(broker.bootstrap, timeout=2.0):
            return
        time.sleep(0.5)
    raise BrokerError(f"the Kafka broker did not answer on {broker.bootstrap} within {wait_seconds:.0f} s")


def _log_tail(broker: LocalBroker) -> str:
    try:
        lines = [line for line in broker.log_file.read_text(errors="replace").splitlines() if line.strip()]
    except FileNotFoundError:
        return "no log"
    errors = [line for line in lines if "ERROR" in line or "Exception" in line]
    return (errors or lines or ["no log"])[-1][:300] + f" (log: {broker.log_file})"


def stop(broker: LocalBroker, wait_seconds: float = 60.0) -> int | None:
    """Stop exactly the broker process we started (by its pid) and wait for it to exit."""
    pid = running_pid(broker)
    if pid is None:
        return None
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline and _is_our_broker(pid, broker):
        time.sleep(0.2)
    if _is_our_broker(pid, broker):
        log.warning("broker pid %s did not stop within %.0f s; killing it", pid, wait_seconds)
        os.kill(pid, signal.SIGKILL)
        while _is_our_broker(pid, broker):
            time.sleep(0.1)
    broker.pid_file.unlink(missing_ok=True)
    return pid
