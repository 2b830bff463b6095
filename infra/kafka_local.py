"""A real single-node Apache Kafka broker (KRaft) for development and tests, without Docker.

The broker's jars are resolved from Maven Central with ``infra/kafka/pom.xml`` and cached
under ``<repo>/.cache/kafka/<version>/libs``; the broker runs as a plain ``java`` process
in combined broker+controller mode, listening on 127.0.0.1 only.

Library use::

    with LocalKafkaBroker(tmp_dir) as broker:
        produce_to(broker.bootstrap)

Command line (from the repo root; see ``infra/kafka.sh``)::

    python -m infra.kafka_local start|stop|status|fetch [--data-dir D] [--port P]

Stdlib only: this module must import before the project's dependencies are installed.
"""

from __future__ import annotations

import argparse
import atexit
import base64
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import deque
from pathlib import Path
from types import TracebackType

__all__ = [
    "KAFKA_VERSION",
    "KafkaLocalError",
    "LocalKafkaBroker",
    "ensure_jars",
    "free_port",
    "jars_dir",
    "main",
]

# Passed to mvn as -Dkafka.version, so it wins over the default in infra/kafka/pom.xml.
KAFKA_VERSION = "4.3.1"

_INFRA_DIR = Path(__file__).resolve().parent
_REPO_ROOT = _INFRA_DIR.parent
_POM = _INFRA_DIR / "kafka" / "pom.xml"
_LOG4J_CONFIG = _INFRA_DIR / "kafka" / "log4j2.xml"

_CACHE_ENV = "METERLINE_KAFKA_CACHE"
_READY_LINE = "Kafka Server started"
_PID_FILE = "broker.pid"
_PROPERTIES_FILE = "server.properties"
_BROKER_LOG = "broker.log"  # log4j file appender, INFO and up
_CONSOLE_LOG = "broker.out"  # the JVM's stdout/stderr: WARN and up, crashes
_LOG_SUBDIR = "kafka-logs"
_NODE_ID = 1
_JVM_OPTIONS = ("-Xms256m", "-Xmx1g", "-XX:+ExitOnOutOfMemoryError", "-Djava.awt.headless=true")

log = logging.getLogger(__name__)


class KafkaLocalError(RuntimeError):
    """The local broker could not be set up, started or stopped."""


# --------------------------------------------------------------------------- jars


def jars_dir() -> Path:
    """Folder holding the broker's runtime jars for KAFKA_VERSION.

    ``$METERLINE_KAFKA_CACHE`` replaces the cache root ``<repo>/.cache/kafka``; the
    version and ``libs`` levels are kept so several versions can live side by side.
    """
    override = os.environ.get(_CACHE_ENV)
    root = Path(override).expanduser() if override else _REPO_ROOT / ".cache" / "kafka"
    return root.resolve() / KAFKA_VERSION / "libs"


def _jars_complete(libs: Path) -> bool:
    return (libs / f"kafka_2.13-{KAFKA_VERSION}.jar").is_file()


def _java() -> str:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").is_file():
        return str(Path(java_home) / "bin" / "java")
    found = shutil.which("java")
    if found is None:
        raise KafkaLocalError(
            "java not found: the local Kafka broker needs Java 17+ "
            "(Debian: apt-get install -y openjdk-17-jre-headless)"
        )
    return found


def ensure_jars() -> Path:
    """Return the jars folder, resolving it with Maven first if it is not complete.

    Maven writes into a temporary sibling folder that is renamed into place at the end,
    so an interrupted or concurrent fetch never leaves a half-filled ``libs``.
    """
    libs = jars_dir()
    if _jars_complete(libs):
        return libs
    _java()  # fail early: jars without a JVM are of no use
    mvn = shutil.which("mvn")
    if mvn is None:
        raise KafkaLocalError(
            "mvn not found: it is needed once to fetch the Kafka jars into "
            f"{libs} (Debian: apt-get install -y maven)"
        )
    libs.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".libs-", dir=libs.parent))
    try:
        cmd = [
            mvn,
            "-q",
            "-B",
            "-f",
            str(_POM),
            "dependency:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={staging}",
            f"-Dkafka.version={KAFKA_VERSION}",
        ]
        log.info("fetching Kafka %s jars with Maven into %s", KAFKA_VERSION, libs)
        began = time.monotonic()
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0 or not _jars_complete(staging):
            output = (done.stdout + done.stderr).strip().splitlines()
            raise KafkaLocalError(
                f"mvn could not resolve the Kafka {KAFKA_VERSION} jars "
                f"(exit {done.returncode}):\n" + "\n".join(output[-40:])
            )
        staging.chmod(0o755)  # mkdtemp makes it private; the cache is not secret
        _install_staged(staging, libs)
        log.info("Kafka jars ready in %.1f s", time.monotonic() - began)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return libs


def _install_staged(staging: Path, libs: Path) -> None:
    if libs.exists() and not _jars_complete(libs):
        # Not produced by us (we only ever rename complete folders in): set it aside.
        stale = Path(tempfile.mkdtemp(prefix=".stale-", dir=libs.parent))
        libs.rename(stale / "libs")
        shutil.rmtree(stale, ignore_errors=True)
    try:
        staging.rename(libs)
    except OSError:
        # Another fetch finished first; its folder is as good as ours.
        if not _jars_complete(libs):
            raise


# --------------------------------------------------------------------------- ports


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    return _free_ports(1)[0]


def _free_ports(count: int) -> list[int]:
    # Hold all sockets open until every port is picked so the ports are distinct.
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _port_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


# --------------------------------------------------------------------------- processes


def _cmdline(pid: int) -> list[str] | None:
    """Arguments of a live process, or None if there is no such process."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return None
    except OSError:
        raw = b""
    if raw:
        return raw.decode(errors="replace").rstrip("\0").split("\0")
    # No procfs (or a zombie, whose cmdline is empty): ask ps.
    done = subprocess.run(
        ["ps", "-o", "args=", "-p", str(pid)], capture_output=True, text=True, check=False
    )
    return done.stdout.split() if done.returncode == 0 and done.stdout.strip() else None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # An exited child of another process stays a zombie until reaped: not running.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def _tail(path: Path, lines: int) -> list[str]:
    try:
        with path.open(errors="replace") as handle:
            return list(deque((line.rstrip("\n") for line in handle), maxlen=lines))
    except FileNotFoundError:
        return []


def _random_cluster_id() -> str:
    # Kafka's Uuid.randomUuid().toString(): URL-safe base64 without padding, never
    # starting with '-' (the storage tool would read it as an option).
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


# --------------------------------------------------------------------------- broker


class LocalKafkaBroker:
    """One Kafka broker+controller process whose state lives in ``data_dir``.

    Stopping and starting again on the same ``data_dir`` keeps topics, messages and
    committed offsets. A broker started by this object is stopped when the Python
    process exits, unless ``detach()`` was called.
    """

    def __init__(
        self,
        data_dir: Path,
        port: int | None = None,
        controller_port: int | None = None,
        partitions: int = 4,
    ) -> None:
        self.data_dir = Path(data_dir).resolve()
        picked = iter(p for p in _free_ports(3) if p not in (port, controller_port))
        self.port = port if port is not None else next(picked)
        self.controller_port = controller_port if controller_port is not None else next(picked)
        if self.port == self.controller_port:
            raise ValueError("port and controller_port must differ")
        self.partitions = partitions
        self.started_in: float | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    # -- paths -------------------------------------------------------------------------

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def properties_file(self) -> Path:
        return self.data_dir / _PROPERTIES_FILE

    @property
    def pid_file(self) -> Path:
        return self.data_dir / _PID_FILE

    @property
    def log_file(self) -> Path:
        return self.data_dir / _BROKER_LOG

    @property
    def console_file(self) -> Path:
        return self.data_dir / _CONSOLE_LOG

    @property
    def log_dir(self) -> Path:
        return self.data_dir / _LOG_SUBDIR

    # -- lifecycle ---------------------------------------------------------------------

    def start(self, timeout: float = 60) -> None:
        """Start the broker and return once it accepts connections and reports ready."""
        if self.is_running():
            raise KafkaLocalError(f"a broker is already running on {self.data_dir}")
        for taken in (self.port, self.controller_port):
            if _port_answers(taken):
                raise KafkaLocalError(f"port {taken} on 127.0.0.1 is already in use")
        began = time.monotonic()
        libs = ensure_jars()
        java = _java()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.pid_file.unlink(missing_ok=True)
        self.properties_file.write_text(self._server_properties())
        for current in (self.log_file, self.console_file):
            if current.exists():
                current.replace(current.with_name(current.name + ".prev"))

        classpath = ["-cp", str(libs / "*")]
        logging_opts = [
            f"-Dlog4j2.configurationFile={_LOG4J_CONFIG}",
            f"-Dkafka.logs.dir={self.data_dir}",
        ]
        if not (self.log_dir / "meta.properties").is_file():
            self._format(java, [*classpath, *logging_opts])

        cmd = [
            java,
            *_JVM_OPTIONS,
            *logging_opts,
            *classpath,
            "kafka.Kafka",
            str(self.properties_file),
        ]
        with self.console_file.open("ab") as console:
            self._proc = subprocess.Popen(
                cmd,
                cwd=self.data_dir,
                stdin=subprocess.DEVNULL,
                stdout=console,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # own process group; no terminal signals
            )
        self.pid_file.write_text(f"{self._proc.pid}\n")
        _owned.add(self)
        try:
            self._wait_ready(began + timeout, timeout)
        except BaseException:
            self.stop()
            raise
        self.started_in = time.monotonic() - began
        log.info("Kafka broker on %s ready in %.1f s", self.bootstrap, self.started_in)

    def stop(self, timeout: float = 20) -> None:
        """Stop the broker (SIGTERM, then SIGKILL after ``timeout``); a no-op if stopped.

        Without a process of its own, stops the broker named by the pid file in
        ``data_dir``, after checking that the pid really is that broker.
        """
        _owned.discard(self)
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.poll() is None:
                self._signal(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    log.warning("Kafka broker %s ignored SIGTERM; killing it", proc.pid)
                    self._signal(proc.pid, signal.SIGKILL)
                    proc.wait()
            self.pid_file.unlink(missing_ok=True)
            return
        pid = self._pid_from_file()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return
        self._signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _pid_alive(pid):
            log.warning("Kafka broker %s ignored SIGTERM; killing it", pid)
            self._signal(pid, signal.SIGKILL)
            while _pid_alive(pid):
                time.sleep(0.05)
        self.pid_file.unlink(missing_ok=True)

    def is_running(self) -> bool:
        if self._proc is not None:
            return self._proc.poll() is None
        return self._pid_from_file() is not None

    def detach(self) -> None:
        """Leave the broker running after this Python process exits."""
        _owned.discard(self)
        self._proc = None  # from now on it is found through the pid file

    def __enter__(self) -> LocalKafkaBroker:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"LocalKafkaBroker(data_dir={str(self.data_dir)!r}, bootstrap={self.bootstrap!r})"

    # -- internals ---------------------------------------------------------------------

    def _server_properties(self) -> str:
        settings = {
            "process.roles": "broker,controller",
            "node.id": str(_NODE_ID),
            # A static voter set (rather than --standalone's recorded one) lets a restart
            # on the same data_dir use another controller port.
            "controller.quorum.voters": f"{_NODE_ID}@127.0.0.1:{self.controller_port}",
            "listeners": (
                f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}"
            ),
            "advertised.listeners": (
                f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}"
            ),
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(self.log_dir),
            "num.partitions": str(self.partitions),
            "auto.create.topics.enable": "true",
            # A single node cannot satisfy the 3-replica defaults.
            "default.replication.factor": "1",
            "min.insync.replicas": "1",
            "offsets.topic.replication.factor": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            # Fewer internal partitions (default 50) to create and load: faster startup
            # and first consumer-group join.
            "offsets.topic.num.partitions": "4",
            "transaction.state.log.num.partitions": "4",
            "group.initial.rebalance.delay.ms": "0",
        }
        lines = ["# Written by infra/kafka_local.py on every start; edits are lost."]
        lines += [f"{key}={value}" for key, value in settings.items()]
        return "\n".join(lines) + "\n"

    def _format(self, java: str, jvm_args: list[str]) -> None:
        cmd = [
            java,
            "-Xmx256m",
            *jvm_args,
            "kafka.tools.StorageTool",
            "format",
            "--ignore-formatted",
            "--cluster-id",
            _random_cluster_id(),
            "--config",
            str(self.properties_file),
        ]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            output = (done.stdout + done.stderr).strip().splitlines()
            raise KafkaLocalError(
                f"formatting Kafka storage in {self.log_dir} failed "
                f"(exit {done.returncode}):\n" + "\n".join(output[-40:])
            )

    def _wait_ready(self, deadline: float, timeout: float) -> None:
        assert self._proc is not None
        while True:
            code = self._proc.poll()
            if code is not None:
                raise KafkaLocalError(
                    f"Kafka broker exited with code {code} during startup\n" + self._log_tails()
                )
            if _port_answers(self.port) and self._logged_ready():
                return
            if time.monotonic() >= deadline:
                raise KafkaLocalError(
                    f"Kafka broker not ready on {self.bootstrap} after {timeout:.0f} s\n"
                    + self._log_tails()
                )
            time.sleep(0.1)

    def _logged_ready(self) -> bool:
        try:
            return _READY_LINE in self.log_file.read_text(errors="replace")
        except FileNotFoundError:
            return False

    def _log_tails(self) -> str:
        parts = []
        for path in (self.console_file, self.log_file):
            lines = _tail(path, 40)
            if lines:
                parts.append(f"--- last {len(lines)} lines of {path} ---\n" + "\n".join(lines))
        return "\n".join(parts) if parts else f"(no log output in {self.data_dir})"

    def _pid_from_file(self) -> int | None:
        """The pid in the pid file if it is a live broker for this data_dir."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        args = _cmdline(pid)
        if args is None or not _pid_alive(pid):
            return None
        # Guard against pid reuse: only ever signal our own broker.
        if "kafka.Kafka" not in args or str(self.properties_file) not in args:
            return None
        return pid

    @staticmethod
    def _signal(pid: int, sig: signal.Signals) -> None:
        try:
            os.killpg(pid, sig)  # the broker leads its own process group
        except ProcessLookupError:
            pass
        except PermissionError:
            os.kill(pid, sig)


# Brokers started (and not detached) in this process, stopped at interpreter exit so an
# aborted test run does not leave JVMs behind.
_owned: set[LocalKafkaBroker] = set()


@atexit.register
def _stop_owned() -> None:
    for broker in list(_owned):
        try:
            broker.stop()
        except Exception:  # best effort at exit
            log.exception("could not stop %r", broker)


# --------------------------------------------------------------------------- CLI


def _configured_port(data_dir: Path) -> int | None:
    """The client port written into ``data_dir``'s server.properties, if any."""
    try:
        text = (data_dir / _PROPERTIES_FILE).read_text()
    except FileNotFoundError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "advertised.listeners":
            for listener in value.split(","):
                if listener.startswith("PLAINTEXT://"):
                    return int(listener.rsplit(":", 1)[1])
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m infra.kafka_local",
        description=f"Run a local single-node Kafka {KAFKA_VERSION} broker (no Docker).",
    )
    parser.add_argument(
        "command",
        choices=["start", "stop", "status", "fetch"],
        help="start in the background, stop, show status, or only fetch the jars",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path(".meterline/kafka"),
        help="broker state, logs and pid file (default: .meterline/kafka)",
    )
    parser.add_argument(
        "--port", type=int, default=9092, help="client port for start (default: 9092)"
    )
    parser.add_argument("--timeout", type=float, default=60, help="seconds to wait for start")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)

    try:
        if args.command == "fetch":
            print(ensure_jars())
            return 0

        data_dir: Path = args.data_dir.resolve()
        # stop/status act on whatever broker the pid file names, on whichever port.
        broker = LocalKafkaBroker(data_dir, port=_configured_port(data_dir) or args.port)
        if args.command == "start":
            if broker.is_running():
                print(broker.bootstrap)
                return 0
            broker = LocalKafkaBroker(data_dir, port=args.port)
            broker.start(timeout=args.timeout)
            broker.detach()
            print(broker.bootstrap)
            return 0
        if args.command == "stop":
            was_running = broker.is_running()
            broker.stop()
            print("stopped" if was_running else "not running")
            return 0
        # status
        if broker.is_running():
            print(f"running {broker.bootstrap} pid {broker.pid_file.read_text().strip()}")
            return 0
        print("not running")
        return 3
    except KafkaLocalError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
