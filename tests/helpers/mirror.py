"""Synthetic MNIST: IDX files, a mirror folder of them, and a local HTTP server in front of one."""

from __future__ import annotations

import base64
import gzip
import hashlib
import http.server
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROWS = {"train": 100, "test": 50}


FILE_NAMES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def idx_bytes(array: np.ndarray, magic_type: int = 0x08) -> bytes:
    """Encode a uint8 array in the IDX layout."""
    header = bytes([0, 0, magic_type, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def synthetic_split(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Balanced labels and 28x28 images with a 10x10 block of ink (mean intensity ~33, like MNIST).

    The block's column encodes the label, so a classifier can learn these "digits" in one epoch.
    """
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(rows) % 10).astype(np.uint8)
    images = np.zeros((rows, 28, 28), dtype=np.uint8)
    for image, label in zip(images, labels, strict=True):
        top, left = int(rng.integers(0, 18)), 2 * int(label)
        image[top : top + 10, left : left + 10] = 255
    return images, labels


@dataclass
class Mirror:
    """A folder of `.gz` files laid out like a public MNIST mirror, and the specs they satisfy."""

    folder: Path
    files: dict[str, dict[str, Any]] = field(default_factory=dict)

    def put(self, key: str, raw: bytes, compress: Callable[[bytes], bytes] = gzip.compress) -> None:
        """Serve `raw` as file `key` and record its true size and SHA-256 as the spec."""
        name = FILE_NAMES[key]
        (self.folder / f"{name}.gz").write_bytes(compress(raw))
        self.files[key] = {"name": name, "bytes": len(raw), "sha256": hashlib.sha256(raw).hexdigest()}

    def corrupt(self, key: str, payload: bytes) -> None:
        """Replace the served file with `payload` but keep the spec: the mirror now serves a bad copy."""
        (self.folder / f"{FILE_NAMES[key]}.gz").write_bytes(payload)


def make_mirror(folder: Path, arrays: dict[str, np.ndarray] | None = None) -> Mirror:
    folder.mkdir(parents=True, exist_ok=True)
    mirror = Mirror(folder)
    train_images, train_labels = synthetic_split(ROWS["train"], seed=1)
    test_images, test_labels = synthetic_split(ROWS["test"], seed=2)
    defaults = {
        "train_images": train_images,
        "train_labels": train_labels,
        "test_images": test_images,
        "test_labels": test_labels,
    }
    for key, array in {**defaults, **(arrays or {})}.items():
        mirror.put(key, idx_bytes(array))
    return mirror


class _Handler(http.server.SimpleHTTPRequestHandler):
    server: MirrorServer

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.server.requests.append(self.path)
        if self.server.credentials:
            user, password = self.server.credentials
            expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
            if self.headers.get("Authorization") != expected:
                self.send_error(401, "Unauthorized")
                return
            self.server.authorized += 1
        if self.server.failures_left > 0:
            self.server.failures_left -= 1
            if self.server.failure == "503":
                self.send_error(503, "Service Unavailable")
                return
            if self.server.failure == "drop":
                # Promise the whole file, send a few bytes, hang up: a connection broken mid-transfer.
                self.send_response(200)
                self.send_header("Content-Length", "100000")
                self.end_headers()
                self.wfile.write(b"\x1f\x8b\x08\x00")
                self.close_connection = True
                return
        super().do_GET()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - keep test output quiet
        pass


class MirrorServer(http.server.ThreadingHTTPServer):
    """Serves a folder on 127.0.0.1; `failure` makes the next `failures_left` requests fail that way;
    with `credentials` (user, password), only to requests that send them (HTTP basic authentication)."""

    def __init__(self, folder: Path, credentials: tuple[str, str] | None = None) -> None:
        handler = lambda *a, **kw: _Handler(*a, directory=str(folder), **kw)  # noqa: E731
        super().__init__(("127.0.0.1", 0), handler)
        self.requests: list[str] = []
        self.failure = ""
        self.failures_left = 0
        self.credentials = credentials
        self.authorized = 0  # requests served with the right credentials

    @property
    def url(self) -> str:
        """The mirror's URL, with its credentials in it if it has some (`http://user:password@...`)."""
        login = "{}:{}@".format(*self.credentials) if self.credentials else ""
        return f"http://{login}127.0.0.1:{self.server_address[1]}/"


@contextmanager
def serving(folder: Path, credentials: tuple[str, str] | None = None) -> Iterator[MirrorServer]:
    """A MirrorServer of `folder` for the length of the block."""
    server = MirrorServer(folder, credentials)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def publish_synthetic_mnist(data_dir: Path, rows: dict[str, int]) -> dict[str, dict[str, Any]]:
    """Write synthetic MNIST files straight into a project's data folder; returns their `data.files` specs
    (training checks the files against them)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    specs = {}
    for split, seed in (("train", 1), ("test", 2)):
        images, labels = synthetic_split(rows[split], seed=seed)
        for kind, array in (("images", images), ("labels", labels)):
            key, raw = f"{split}_{kind}", idx_bytes(array)
            (data_dir / FILE_NAMES[key]).write_bytes(raw)
            specs[key] = {
                "name": FILE_NAMES[key],
                "bytes": len(raw),
                "sha256": hashlib.sha256(raw).hexdigest(),
            }
    return specs


TRAINING_ROWS = {"train": 2600, "test": 300}


def training_mirror(folder: Path) -> Mirror:
    """A mirror serving synthetic MNIST large enough to train the smoke profile on."""
    train_images, train_labels = synthetic_split(TRAINING_ROWS["train"], seed=1)
    test_images, test_labels = synthetic_split(TRAINING_ROWS["test"], seed=2)
    return make_mirror(
        folder,
        {
            "train_images": train_images,
            "train_labels": train_labels,
            "test_images": test_images,
            "test_labels": test_labels,
        },
    )
