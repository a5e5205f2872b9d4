"""Servers on loopback for the tests: a free port, starting one and stopping it."""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def local_server(
    command: list[str],
    health_url: str,
    log_path: Path,
    env: dict[str, str],
    cwd: Path | None = None,
    seconds: float = 120,
) -> Iterator[subprocess.Popen]:
    """A server (MLflow, Prefect) started as a process of its own, yielded once `health_url` answers 200,
    stopped at the end; its output goes to `log_path`, whose tail a failed start shows."""
    with log_path.open("w") as log:
        server = subprocess.Popen(command, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + seconds
        while True:
            assert server.poll() is None, f"the server exited: {log_path.read_text()[-2000:]}"
            try:
                with urllib.request.urlopen(health_url, timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, f"{health_url} did not answer within {seconds} s"
            time.sleep(0.5)
        yield server
    finally:
        stop(server)
