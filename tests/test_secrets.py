"""Passwords stay out of argv, banners and logs: `mlflow/server.sh` and the URIs mnistgen prints."""

from __future__ import annotations

import subprocess
from pathlib import Path

from helpers.paths import REPO

SECRET = "s3cret-pw"


def test_server_script_passes_the_store_password_in_the_environment_only(tmp_path: Path) -> None:
    """`mlflow server` stands in for a script that records what it was given, as `ps` would see it."""
    fake = tmp_path / "mlflow"
    fake.write_text(
        "#!/usr/bin/env bash\n"
        'printf "%s\\n" "$@" > "$0.argv"\n'
        'printf "%s" "$MLFLOW_BACKEND_STORE_URI" > "$0.env"\n'
    )
    fake.chmod(0o755)
    uri = f"postgresql://mlflow:{SECRET}@db.example:5432/mlflow"
    done = subprocess.run(
        ["bash", str(REPO / "mlflow" / "server.sh")],
        env={"PATH": "/usr/bin:/bin", "MLFLOW_BIN": str(fake), "MLFLOW_BACKEND_STORE_URI": uri},
        capture_output=True,
        text=True,
        check=True,
    )
    argv = (tmp_path / "mlflow.argv").read_text()
    assert argv.startswith("server\n") and "--host\n127.0.0.1\n" in argv
    assert SECRET not in argv and SECRET not in done.stdout + done.stderr
    assert "store: postgresql://***@db.example:5432/mlflow" in done.stderr
    assert (tmp_path / "mlflow.env").read_text() == uri, "the server reads it from its environment"
