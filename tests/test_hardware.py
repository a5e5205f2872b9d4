"""Precision choice: bf16 only where the hardware has it and the variant opted in."""

from __future__ import annotations

from pathlib import Path

import pytest

from mnistgen.training import hardware


def cpuinfo(tmp_path: Path, flags: str) -> Path:
    path = tmp_path / "cpuinfo"
    path.write_text(
        f"processor\t: 0\nflags\t\t: fpu sse2 avx2 {flags}\n\nprocessor\t: 1\nflags\t\t: fpu {flags}\n"
    )
    return path


@pytest.mark.parametrize(
    ("flags", "expected"), [("avx512f amx_bf16", True), ("avx512_bf16", True), ("avx512f", False)]
)
def test_cpu_bf16_detection_reads_the_flags(tmp_path: Path, flags: str, expected: bool) -> None:
    assert hardware.cpu_supports_bf16(cpuinfo(tmp_path, flags)) is expected


def test_unreadable_cpuinfo_means_no_bf16(tmp_path: Path) -> None:
    assert hardware.cpu_supports_bf16(tmp_path / "missing") is False


def test_explicit_precision_wins_and_auto_needs_opt_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hardware, "cpu_supports_bf16", lambda: True)
    assert hardware.choose_precision("float32", True, "CPU") == "float32"
    assert hardware.choose_precision("auto", True, "CPU") == "bfloat16"
    assert hardware.choose_precision("auto", False, "CPU") == "float32"
    monkeypatch.setattr(hardware, "cpu_supports_bf16", lambda: False)
    assert hardware.choose_precision("auto", True, "CPU") == "float32"
