"""The Prefect API a pipeline started from the command line talks to: the server `PREFECT_API_URL`
names, else a temporary one for the length of the run.

The temporary server is the one Prefect itself would start (its API app, without the UI, on a free
loopback port, over the same database), but in a process group of its own: Ctrl-C in the terminal reaches the
pipeline, which then reports its runs as cancelled to a server still alive, and not the server first.
It is stopped when the pipeline ends, however it ends (a SIGTERM included: the pipeline turns it into
an interrupt). Prefect is not imported here: its settings are read once, on import, and must see the
server's address.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mnistgen.errors import MnistgenError

log = logging.getLogger(__name__)

API_URL_ENV = "PREFECT_API_URL"
START_TIMEOUT_ENV = "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"  # Prefect's own setting, reused
STOP_SECONDS = 10  # for the server to close its database before it is killed


class PrefectServerError(MnistgenError):
    """The temporary Prefect server did not start."""


@contextmanager
def prefect_api() -> Iterator[bool]:
    """Make `PREFECT_API_URL` name a Prefect API for the block; yields whether the server is a temporary
    one started here (and stopped at the end of the block)."""
    if os.environ.get(API_URL_ENV):
        yield False
        return
    port = _free_port()
    app_dir = Path(importlib.util.find_spec("prefect").origin).parent.parent
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--app-dir",
            str(app_dir),
            "--factory",
            "prefect.server.api.server:create_app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "error",
            "--lifespan",
            "on",
        ],
        env={
            **os.environ,
            "PREFECT_UI_ENABLED": "0",
            "PREFECT__SERVER_EPHEMERAL": "1",
            "PREFECT__SERVER_FINAL": "1",
        },
        start_new_session=True,  # out of the terminal's process group: Ctrl-C is the pipeline's
    )
    url = f"http://127.0.0.1:{port}/api"
    try:
        _wait_until_up(server, url, float(os.environ.get(START_TIMEOUT_ENV, "120")))
        log.info("Prefect: a temporary server at %s for this run (pid %d)", url, server.pid)
        os.environ[API_URL_ENV] = url
        yield True
    finally:
        os.environ.pop(API_URL_ENV, None)
        server.terminate()
        try:
            server.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_until_up(server: subprocess.Popen, url: str, timeout: float) -> None:
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        if server.poll() is not None:
            raise PrefectServerError(
                f"Prefect's temporary server exited at start (status {server.returncode}; its messages are "
                f"above). Fix: start a server (`prefect server start`) and set {API_URL_ENV}."
            )
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=5) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    raise PrefectServerError(
        f"Prefect's temporary server did not answer within {timeout:.0f} s. Fix: raise {START_TIMEOUT_ENV} "
        f"on a busy machine, or start a server (`prefect server start`) and set {API_URL_ENV}."
    )
