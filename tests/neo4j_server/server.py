"""Start and stop a real Neo4j 5.26 for tests and benchmarks (Maven Central's test harness).

``ensure_jars()`` fetches the harness jars once into ``~/.cache/servicegraph/neo4j-jars`` (or
``SERVICEGRAPH_NEO4J_JARS``); ``start()`` launches ``Launcher.java`` on a free port with a fresh
database directory and returns once Bolt answers.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
JARS = Path(
    os.environ.get("SERVICEGRAPH_NEO4J_JARS", Path.home() / ".cache/servicegraph/neo4j-jars")
)


def ensure_jars() -> Path:
    if not (JARS.is_dir() and any(JARS.glob("neo4j-harness-*.jar"))):
        JARS.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                "mvn",
                "-B",
                "-q",
                "-f",
                str(HERE / "pom.xml"),
                "dependency:copy-dependencies",
                f"-DoutputDirectory={JARS}",
            ],
            check=True,
        )
    return JARS


@dataclass
class Neo4jServer:
    uri: str
    process: subprocess.Popen[bytes]
    directory: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()  # the launcher exits when its stdin closes
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.directory, ignore_errors=True)


def _bytes(size: str) -> int:
    units = {"k": 2**10, "m": 2**20, "g": 2**30}
    unit = size[-1].lower()
    return int(size[:-1]) * units[unit] if unit in units else int(size)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(heap: str = "1g", page_cache: str = "512m", timeout: float = 180) -> Neo4jServer:
    """Start a fresh server with a JVM heap and page cache (sizes like ``512m``, ``2g``); raise
    RuntimeError with its output if it does not come up."""
    jars = ensure_jars()
    directory = Path(tempfile.mkdtemp(prefix="servicegraph-neo4j-"))
    port = free_port()
    log = open(directory / "launcher.log", "wb")  # noqa: SIM115 - lives as long as the server
    process = subprocess.Popen(
        [
            "java",
            f"-Xmx{heap}",
            "-cp",
            f"{jars}/*",
            str(HERE / "Launcher.java"),
            str(port),
            str(directory / "db"),
            str(_bytes(page_cache)),
        ],
        stdin=subprocess.PIPE,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    uri = f"bolt://127.0.0.1:{port}"
    from neo4j import GraphDatabase

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            with GraphDatabase.driver(uri, auth=None) as driver:
                driver.verify_connectivity()
            return Neo4jServer(uri, process, directory)
        except Exception:
            time.sleep(1)
    output = (directory / "launcher.log").read_text(errors="replace")[-4000:]
    process.kill()
    raise RuntimeError(f"Neo4j test server did not start on {uri}:\n{output}")
