"""Where the repository and the offline MNIST mirror are."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


SHARED_MNIST = Path(os.environ.get("MNISTGEN_TEST_MNIST", REPO.parent / "shared" / "mnist"))
