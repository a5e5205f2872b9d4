"""Downloading from mirrors: fallback, skip, retry, and bad files that must never reach the data folder."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from helpers.mirror import FILE_NAMES, Mirror, make_mirror
from helpers.projects import snapshot

from mnistgen.data.download import (
    DownloadError,
    is_valid,
    mirror_url,
    publish,
    stage_files,
)
from mnistgen.settings import DataFiles, Download

QUICK = Download(attempts=3, backoff_seconds=0.01, timeout_seconds=5)


def stage(mirror: Mirror, mirrors: list[str], tmp_path: Path) -> dict[str, Path]:
    return stage_files(
        dict(DataFiles.model_validate(mirror.files)),
        mirrors,
        tmp_path / "data",
        tmp_path / "staging",
        QUICK,
        progress=False,
    )


def test_mirror_url_accepts_http_file_urls_and_folders(tmp_path: Path) -> None:
    assert mirror_url("https://example.org/mnist", "f") == "https://example.org/mnist/f.gz"
    assert mirror_url("https://example.org/mnist/", "f") == "https://example.org/mnist/f.gz"
    assert mirror_url("file:///srv/mnist/", "f") == "file:///srv/mnist/f.gz"
    assert mirror_url(str(tmp_path), "f") == f"{tmp_path.as_uri()}/f.gz"


def test_downloads_verifies_and_publishes_from_http(mirror: Mirror, serve, tmp_path: Path) -> None:
    server = serve(mirror.folder)
    verified = stage(mirror, [server.url], tmp_path)
    specs = dict(DataFiles.model_validate(mirror.files))
    assert all(is_valid(path, specs[key]) for key, path in verified.items())
    assert {path.parent for path in verified.values()} == {tmp_path / "staging"}
    assert not (tmp_path / "data").exists(), "staging must not touch the data folder"

    moved = publish(verified, tmp_path / "data", tmp_path / "staging")
    assert sorted(moved) == sorted(FILE_NAMES.values())
    assert all(is_valid(tmp_path / "data" / spec.name, spec) for spec in specs.values())
    assert not (tmp_path / "staging").exists()


@pytest.mark.parametrize("source", ["folder", "file_url"])
def test_local_folder_and_file_url_mirrors(mirror: Mirror, tmp_path: Path, source: str) -> None:
    where = str(mirror.folder) if source == "folder" else mirror.folder.as_uri()
    assert len(stage(mirror, [where], tmp_path)) == 4


def test_falls_back_when_first_mirror_is_dead(mirror: Mirror, serve, dead_url: str, tmp_path: Path) -> None:
    server = serve(mirror.folder)
    verified = stage(mirror, [dead_url, server.url], tmp_path)
    assert len(verified) == 4
    assert len(server.requests) == 4


def test_falls_back_when_first_mirror_serves_corrupt_file(mirror: Mirror, serve, tmp_path: Path) -> None:
    bad = make_mirror(tmp_path / "bad")
    bad.corrupt("train_images", gzip.compress(b"\x00\x00\x08\x03 not the real images"))
    bad_server, good_server = serve(bad.folder), serve(mirror.folder)
    verified = stage(mirror, [bad_server.url, good_server.url], tmp_path)
    assert len(verified) == 4
    assert good_server.requests == ["/train-images-idx3-ubyte.gz"], (
        "only the corrupt file comes from mirror 2"
    )


def test_a_password_in_a_mirror_url_is_sent_as_basic_authentication(
    mirror: Mirror, serve, tmp_path: Path
) -> None:
    """`https://user:password@host/` authenticates to that host (urllib alone would take the login for
    part of the host name); a wrong password is that mirror's failure, and the next mirror is tried."""
    locked = serve(mirror.folder, ("alice", "s3cret"))
    wrong = locked.url.replace("s3cret", "guess")
    open_mirror = serve(mirror.folder)
    verified = stage(mirror, [wrong, locked.url], tmp_path)
    assert len(verified) == 4 and locked.authorized == 4
    assert not open_mirror.requests
    with pytest.raises(DownloadError) as refused:
        stage(mirror, [wrong], tmp_path / "again")
    assert "HTTP 401" in str(refused.value) and "guess" not in str(refused.value), "the password is hidden"


def test_a_mirror_holding_a_fifo_fails_at_once_and_the_next_is_tried(mirror: Mirror, tmp_path: Path) -> None:
    import os
    import shutil

    fifo_mirror = tmp_path / "fifo-mirror"
    shutil.copytree(mirror.folder, fifo_mirror)
    (fifo_mirror / f"{FILE_NAMES['train_images']}.gz").unlink()
    os.mkfifo(fifo_mirror / f"{FILE_NAMES['train_images']}.gz")  # opening it to read would block forever
    verified = stage(mirror, [str(fifo_mirror), str(mirror.folder)], tmp_path)
    assert len(verified) == 4


def test_skips_files_already_present_and_valid(mirror: Mirror, serve, tmp_path: Path) -> None:
    server = serve(mirror.folder)
    publish(stage(mirror, [server.url], tmp_path), tmp_path / "data", tmp_path / "staging")
    before = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "data").iterdir()}
    server.requests.clear()

    verified = stage(mirror, [server.url], tmp_path)
    assert server.requests == []
    assert all(path.parent == tmp_path / "data" for path in verified.values())
    assert publish(verified, tmp_path / "data", tmp_path / "staging") == []
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "data").iterdir()} == before


def test_resumes_from_files_staged_by_an_interrupted_run(mirror: Mirror, serve, tmp_path: Path) -> None:
    server = serve(mirror.folder)
    stage(mirror, [server.url], tmp_path)  # "interrupted" before publishing
    server.requests.clear()
    verified = stage(mirror, [server.url], tmp_path)
    assert server.requests == []
    assert all(path.parent == tmp_path / "staging" for path in verified.values())


def test_replaces_an_invalid_file_in_the_data_folder(mirror: Mirror, serve, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / FILE_NAMES["test_labels"]).write_bytes(b"damaged on disk")
    server = serve(mirror.folder)
    publish(stage(mirror, [server.url], tmp_path), data, tmp_path / "staging")
    assert is_valid(
        data / FILE_NAMES["test_labels"], dict(DataFiles.model_validate(mirror.files))["test_labels"]
    )


@pytest.mark.parametrize("failure", ["503", "drop"])
def test_retries_a_flaky_server(mirror: Mirror, serve, tmp_path: Path, failure: str) -> None:
    server = serve(mirror.folder)
    server.failure, server.failures_left = failure, 2
    verified = stage(mirror, [server.url], tmp_path)
    assert len(verified) == 4
    assert server.requests[:3] == ["/train-images-idx3-ubyte.gz"] * 3, "two failures, then success"


def test_gives_up_after_the_configured_attempts(mirror: Mirror, serve, tmp_path: Path) -> None:
    server = serve(mirror.folder)
    server.failure, server.failures_left = "503", 100
    with pytest.raises(
        DownloadError, match=r"(?s)train-images-idx3-ubyte.*network error after 3 attempts.*503"
    ):
        stage(mirror, [server.url], tmp_path)
    assert len(server.requests) == 3


def _truncated(raw: bytes) -> bytes:
    whole = gzip.compress(raw)
    return whole[: len(whole) // 2]


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        (lambda raw: gzip.compress(raw[:-1] + b"\x01"), "SHA-256 mismatch"),
        (lambda raw: gzip.compress(raw[:-10]), "decompressed size"),
        (lambda raw: gzip.compress(raw + b"extra bytes"), "more than the expected"),
        (_truncated, "truncated gzip"),
        (lambda raw: raw, "not a gzip file"),
    ],
    ids=["checksum", "short", "long", "truncated-gzip", "not-gzip"],
)
def test_bad_file_is_rejected_and_data_folder_untouched(
    mirror: Mirror, serve, tmp_path: Path, payload, problem
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "keep.txt").write_text("whatever was here before")
    before = snapshot(data)
    raw = gzip.decompress((mirror.folder / f"{FILE_NAMES['test_images']}.gz").read_bytes())
    mirror.corrupt("test_images", payload(raw))

    with pytest.raises(DownloadError) as caught:
        stage(mirror, [serve(mirror.folder).url], tmp_path)
    message = str(caught.value)
    assert "t10k-images-idx3-ubyte" in message and problem in message
    assert "Fix:" in message
    assert snapshot(data) == before
    assert not list((tmp_path / "staging").glob("*.part")), "no half-written file is left behind"
