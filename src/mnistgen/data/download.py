"""Fetching the MNIST files from an ordered list of mirrors, verified and written atomically.

A file is only ever *staged* here: decompressed into a staging folder under a temporary name, checked
(size and SHA-256 of the decompressed bytes) and renamed. Moving staged files to where the pipeline reads
is `publish`'s job, called once the whole data set has been validated.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import http.client
import logging
import os
import shutil
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from tqdm.auto import tqdm

from mnistgen.errors import MnistgenError, redact
from mnistgen.settings import DataFile, Download

log = logging.getLogger(__name__)

CHUNK_BYTES = 1 << 20


class DownloadError(MnistgenError):
    """No mirror delivered a valid copy of a file."""


class _TransientError(Exception):
    """A network hiccup worth retrying on the same mirror."""


class _MirrorError(Exception):
    """This mirror cannot deliver a valid copy; try the next one."""


def mirror_url(mirror: str, name: str) -> str:
    """The URL of `name.gz` on a mirror given as an http(s) URL, a file:// URL or a local folder."""
    if "://" in mirror:
        return f"{mirror.rstrip('/')}/{name}.gz"
    return f"{Path(mirror).expanduser().resolve().as_uri()}/{name}.gz"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def is_valid(path: Path, spec: DataFile) -> bool:
    return path.is_file() and path.stat().st_size == spec.bytes and sha256_of(path) == spec.sha256


def stage_files(
    specs: dict[str, DataFile],
    mirrors: list[str],
    data_dir: Path,
    staging_dir: Path,
    policy: Download,
    progress: bool = True,
) -> dict[str, Path]:
    """Make sure a verified copy of every file exists, downloading only what is missing or invalid.

    Returns, per key, the path of the verified copy: the file in `data_dir` when it is already valid
    (it is never touched), else the copy staged in `staging_dir` (valid copies left there by an
    interrupted run are reused).
    """
    staging_dir.mkdir(parents=True, exist_ok=True)
    verified: dict[str, Path] = {}
    for key, spec in specs.items():
        for candidate in (data_dir / spec.name, staging_dir / spec.name):
            if is_valid(candidate, spec):
                log.info("%s: present and valid (%s)", spec.name, candidate)
                verified[key] = candidate
                break
        else:
            verified[key] = fetch_file(spec, mirrors, staging_dir, policy, progress)
    return verified


def publish(verified: dict[str, Path], data_dir: Path, staging_dir: Path) -> list[str]:
    """Move staged files into `data_dir` (an atomic rename each); returns the names that changed."""
    data_dir.mkdir(parents=True, exist_ok=True)
    moved = []
    for path in verified.values():
        if path.parent.resolve() == staging_dir.resolve():
            os.replace(path, data_dir / path.name)
            moved.append(path.name)
    shutil.rmtree(staging_dir, ignore_errors=True)
    return moved


def fetch_file(
    spec: DataFile, mirrors: list[str], staging_dir: Path, policy: Download, progress: bool = True
) -> Path:
    """Download one file from the first mirror that delivers a verified copy."""
    failures = []
    for mirror in mirrors:
        url = mirror_url(mirror, spec.name)
        try:
            path = _fetch_with_retries(url, spec, staging_dir, policy, progress)
        except _MirrorError as err:
            log.warning("%s: mirror %s failed: %s", spec.name, redact(mirror), redact(str(err)))
            failures.append(f"{mirror}: {err}")
            continue
        log.info("%s: downloaded and verified from %s", spec.name, redact(mirror))
        return path
    listing = "\n".join(f"  - {failure}" for failure in failures)
    raise DownloadError(
        f"{spec.name}: no mirror delivered a valid copy.\n{listing}\n"
        "Fix: check the network or the mirror list (--mirror, MNISTGEN_MIRRORS or data.mirrors in "
        "params.yaml); an offline copy of the four .gz files in a local folder works as a mirror."
    )


def _fetch_with_retries(
    url: str, spec: DataFile, staging_dir: Path, policy: Download, progress: bool
) -> Path:
    for attempt in range(1, policy.attempts + 1):
        try:
            return _download_verified(url, spec, staging_dir, policy.timeout_seconds, progress)
        except _TransientError as err:
            if attempt == policy.attempts:
                raise _MirrorError(f"network error after {attempt} attempts: {err}") from err
            delay = policy.backoff_seconds * 2 ** (attempt - 1)
            log.warning(
                "%s: attempt %d failed (%s); retrying in %.1f s",
                redact(url),
                attempt,
                redact(str(err)),
                delay,
            )
            time.sleep(delay)
    raise AssertionError("unreachable: attempts must be at least 1")


def _download_verified(url: str, spec: DataFile, staging_dir: Path, timeout: float, progress: bool) -> Path:
    """Stream `url`, decompress, hash and size-check into a temporary file, then rename it into place."""
    partial = staging_dir / f"{spec.name}.part"
    try:
        with _open(url, timeout) as response, partial.open("wb") as out:
            length = response.headers.get("Content-Length")
            total = int(length) if length else None
            bar = tqdm(
                total=total,
                unit="B",
                unit_scale=True,
                desc=spec.name,
                disable=not progress,
                leave=False,
            )
            with bar:
                counted = _CountingReader(response, total, bar.update)
                size, digest = _decompress(counted, out, spec)
            out.flush()
            os.fsync(out.fileno())
        if size != spec.bytes:
            raise _MirrorError(f"decompressed size {size} bytes, expected {spec.bytes}")
        if digest != spec.sha256:
            raise _MirrorError(f"SHA-256 mismatch: got {digest}, expected {spec.sha256}")
        final = staging_dir / spec.name
        os.replace(partial, final)
        return final
    finally:
        partial.unlink(missing_ok=True)


def _request(url: str) -> urllib.request.Request:
    """A request for `url`; a `user:password@` in it becomes HTTP basic authentication (urllib would take
    it for part of the host name), sent to that host only, never along a redirect."""
    parts = urllib.parse.urlsplit(url)
    if parts.username is None:
        return urllib.request.Request(url)
    request = urllib.request.Request(parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl())
    user, password = urllib.parse.unquote(parts.username), urllib.parse.unquote(parts.password or "")
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    request.add_unredirected_header("Authorization", f"Basic {token}")
    return request


def _open(url: str, timeout: float) -> Any:
    if url.startswith("file:"):  # a FIFO or a device under a file's name would block or never end
        path = Path(urllib.request.url2pathname(urllib.parse.urlsplit(url).path))
        if path.exists() and not path.is_file():
            raise _MirrorError(f"{path} is not a regular file")
    try:
        return urllib.request.urlopen(_request(url), timeout=timeout)  # noqa: S310 - user-configured
    except urllib.error.HTTPError as err:
        if err.code >= 500 or err.code == 429:
            raise _TransientError(f"HTTP {err.code} {err.reason}") from err
        raise _MirrorError(f"HTTP {err.code} {err.reason} for {url}") from err
    except urllib.error.URLError as err:
        if isinstance(err.reason, (FileNotFoundError, PermissionError, IsADirectoryError)):
            raise _MirrorError(f"cannot read {url}: {err.reason}") from err
        raise _TransientError(f"{url}: {err.reason}") from err
    except (TimeoutError, ConnectionError, http.client.HTTPException) as err:
        raise _TransientError(f"{url}: {err!r}") from err


def _decompress(source: IO[bytes], out: IO[bytes], spec: DataFile) -> tuple[int, str]:
    """Gunzip `source` into `out`; stops early past the expected size so a bad file cannot fill the disk."""
    digest = hashlib.sha256()
    size = 0
    try:
        with gzip.GzipFile(fileobj=source, mode="rb") as gz:
            while chunk := gz.read(CHUNK_BYTES):
                size += len(chunk)
                if size > spec.bytes:
                    raise _MirrorError(f"decompresses to more than the expected {spec.bytes} bytes")
                digest.update(chunk)
                out.write(chunk)
    except gzip.BadGzipFile as err:
        raise _MirrorError(f"not a gzip file ({err})") from err
    except EOFError as err:
        raise _MirrorError(f"truncated gzip stream ({err})") from err
    except zlib.error as err:
        raise _MirrorError(f"corrupt gzip stream ({err})") from err
    except (TimeoutError, ConnectionError, http.client.IncompleteRead) as err:
        raise _TransientError(f"connection broke mid-transfer: {err!r}") from err
    return size, digest.hexdigest()


class _CountingReader:
    """A read-only stream that reports the bytes going through it and notices a transfer cut short.

    `http.client` returns a short read, not an error, when a server hangs up before `Content-Length`.
    """

    def __init__(self, raw: IO[bytes], expected: int | None, on_read: Callable[[int], Any]) -> None:
        self._raw = raw
        self._expected = expected
        self._seen = 0
        self._on_read = on_read

    def read(self, size: int = -1) -> bytes:
        chunk = self._raw.read(size)
        self._seen += len(chunk)
        self._on_read(len(chunk))
        if not chunk and size != 0 and self._expected is not None and self._seen < self._expected:
            raise _TransientError(f"connection closed after {self._seen} of {self._expected} bytes")
        return chunk
