"""Which device trains, and whether bfloat16 pays there: detected, not assumed."""

from __future__ import annotations

import os
import platform
from pathlib import Path

CPU_BF16_FLAGS = {"avx512_bf16", "amx_bf16"}
GPU_BF16_COMPUTE_CAPABILITY = (8, 0)  # Ampere and newer have bf16 tensor cores


def machine(cpuinfo: Path = Path("/proc/cpuinfo")) -> dict[str, object]:
    """What a run's scores may depend on besides code, data and settings: the CPU (its model and the
    instruction sets oneDNN picks its kernels by), the cores, Python and TensorFlow."""
    try:
        lines = cpuinfo.read_text().splitlines()
    except OSError:
        lines = []
    model = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), "")
    flags = {flag for line in lines if line.startswith("flags") for flag in line.split()}
    import tensorflow as tf

    return {
        "cpu": model or platform.processor() or "unknown",
        "instruction_sets": sorted(flags & {"avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile"}),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
    }


def device() -> str:
    """ "GPU:0 (name)" when TensorFlow sees a GPU, else "CPU"."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return "CPU"
    details = tf.config.experimental.get_device_details(gpus[0])
    return f"GPU:0 ({details.get('device_name', 'unknown')})"


def cpu_supports_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    try:
        text = cpuinfo.read_text()
    except OSError:
        return False
    flags = {flag for line in text.splitlines() if line.startswith("flags") for flag in line.split()}
    return bool(flags & CPU_BF16_FLAGS)


def gpu_supports_bf16() -> bool:
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return False
    capability = tf.config.experimental.get_device_details(gpus[0]).get("compute_capability", (0, 0))
    return tuple(capability) >= GPU_BF16_COMPUTE_CAPABILITY


def choose_precision(setting: str, variant_allows_bf16: bool, on: str) -> str:
    """`auto` picks bfloat16 where the hardware has native support and the variant opted in (`bf16: true`,
    set where it was measured to speed the variant up with healthy losses); float32 otherwise."""
    if setting != "auto":
        return setting
    supported = gpu_supports_bf16() if on.startswith("GPU") else cpu_supports_bf16()
    return "bfloat16" if supported and variant_allows_bf16 else "float32"
