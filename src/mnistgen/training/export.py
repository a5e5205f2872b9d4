"""A trained run's files: its networks in Keras' native format and `model_info.json`, which tells
`serving.sampler.Sampler` how to sample them (the schema is `models.base.sampling_info`)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from mnistgen.serving.sampler import INFO_FILE


def write_json(path: Path, values: dict[str, Any]) -> None:
    path.write_text(json.dumps(values, indent=2) + "\n")


def save_networks(model_dir: Path, networks: dict[str, Any], info: dict[str, Any]) -> None:
    """Each network as `NAME.keras` (loadable with `safe_mode=True`), then the sampling facts.

    `model_info.json` is written last: a folder without it is not a model (a crash mid-save leaves none).
    """
    model_dir.mkdir(parents=True, exist_ok=True)
    for name, network in networks.items():
        network.save(model_dir / f"{name}.keras")
    write_json(model_dir / INFO_FILE, info)


def discard(model_dir: Path) -> None:
    """Remove a run's model folder: a failed run leaves nothing that evaluation or registration could take."""
    shutil.rmtree(model_dir, ignore_errors=True)
