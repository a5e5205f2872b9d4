"""A result is a function of (code, data, params, seed) only: bit-identical reruns, one image per seed, one
staleness rule for the pipeline and `dvc status`, and a safety cap that is marked and never registered."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers.cli import cli_env, run_cli
from helpers.mirror import TRAINING_ROWS, publish_synthetic_mnist
from helpers.projects import SMOKE_KINDS, copy_repository, git, make_training_project, set_params

pytestmark = pytest.mark.slow

# One variant of each kind (helpers.projects.SMOKE_KINDS) in float32 and, for two, in bfloat16.
KINDS = {
    **{variant: () for variant in SMOKE_KINDS},
    "cgan-bf16": ("--set", "train.precision=bfloat16"),
    "vae-bf16": ("--set", "train.precision=bfloat16"),
}


def _weights(run_dir: Path) -> dict[str, list[np.ndarray]]:
    import keras

    return {
        path.stem: keras.saving.load_model(path, safe_mode=True).get_weights()
        for path in sorted((run_dir / "model").glob("*.keras"))
    }


@pytest.fixture(scope="module")
def twice(smoke_run, tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    """Each kind trained twice with the same seed, each time in a fresh project and process: the session's
    shared smoke run (with MLflow's system metrics every second, as the smoke profile has them), and one
    more here without them: sampling the machine must not touch a result."""
    runs = {}
    for name, extra in KINDS.items():
        variant = name.split("-")[0]
        again = make_training_project(tmp_path_factory.mktemp(f"{name}-again") / "project")
        quiet = ("--set", "train.system_metrics_seconds=null")
        done = run_cli(again, "train", variant, "--profile", "smoke", *extra, *quiet)
        assert done.returncode == 0, done.stderr[-3000:]
        runs[name] = (smoke_run(variant, *extra) / "runs" / variant, again / "runs" / variant)
    return runs


@pytest.mark.parametrize("name", list(KINDS))
def test_the_same_seed_gives_the_same_weights_and_metrics_to_the_last_bit(twice, name: str) -> None:
    first, second = twice[name]
    a, b = _weights(first), _weights(second)
    assert a.keys() == b.keys() and a
    for network in a:
        for x, y in zip(a[network], b[network], strict=True):
            np.testing.assert_array_equal(x, y, err_msg=f"{name}: {network} differs")
    assert (first / "metrics.json").read_text() == (second / "metrics.json").read_text()
    assert (first / "history.csv").read_text() == (second / "history.csv").read_text()
    info = json.loads((first / "model" / "model_info.json").read_text())
    assert info["precision"] == ("bfloat16" if name.endswith("bf16") else "float32")


def test_another_seed_gives_other_weights(twice, tmp_path: Path) -> None:
    project = make_training_project(tmp_path / "project")
    done = run_cli(project, "train", "dcgan", "--profile", "smoke", "--seed", "7")
    assert done.returncode == 0, done.stderr[-3000:]
    other, seed42 = _weights(project / "runs" / "dcgan"), _weights(twice["dcgan"][0])
    assert any(not np.array_equal(x, y) for x, y in zip(other["generator"], seed42["generator"], strict=True))


# ---------------------------------------------------------------- the safety cap


def test_a_run_the_safety_cap_cuts_short_is_marked_shown_and_never_registered(tmp_path: Path) -> None:
    project = make_training_project(tmp_path / "project")
    cut = run_cli(project, "train", "dcgan", "--profile", "smoke", "--max-minutes", "0.0001")
    assert cut.returncode == 0, cut.stderr[-3000:]
    assert "dcgan: time cap at step 1/16" in cut.stdout and "safety cap stopped the run" in cut.stderr
    record = json.loads((project / "runs" / "dcgan" / "run.json").read_text())
    assert record["stopped_by"] == "time cap" and record["step"] == 1
    for command in (("train", "mlp_gan"), ("classifier",), ("evaluate",)):
        done = run_cli(project, *command, "--profile", "smoke")
        assert done.returncode == 0, f"{command}: {done.stderr[-3000:]}"

    board = (project / "reports" / "leaderboard.md").read_text()
    assert "| dcgan | non-saturating GAN; transposed convolutions | 1/16 † time cap |" in board
    assert json.loads((project / "reports" / "metrics" / "dcgan.json").read_text())["complete"] is False
    registered = run_cli(project, "register", "--profile", "smoke")
    assert registered.returncode == 0, registered.stderr[-3000:]
    assert json.loads((project / "reports" / "registration.json").read_text())["variant"] == "mlp_gan"
    assert "dcgan" in registered.stderr and "cut short (time cap at step 1/16)" in registered.stderr

    resumed = run_cli(project, "train", "dcgan", "--profile", "smoke", "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "dcgan: completed at step 16/16" in resumed.stdout
    assert json.loads((project / "runs" / "dcgan" / "run.json").read_text())["run_id"] == record["run_id"]


# ---------------------------------------------------------------- one staleness rule


@pytest.fixture(scope="module")
def pipeline(prefect_harness):
    from flows import pipeline as module

    return module


def _dvc_status(repo: Path) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-m", "dvc", "status", "--json"],
        cwd=repo,
        capture_output=True,
        text=True,
        env=cli_env(),
    )
    assert done.returncode == 0, done.stderr
    return {stage for stage in json.loads(done.stdout) if stage.startswith(("train@", "classifier"))}


def _pipeline_would_redo(repo: Path, variants: list[str]) -> set[str]:
    from mnistgen.config import load_params
    from mnistgen.evaluation.classifier import trained_on
    from mnistgen.training.plan import TrainRequest, plan_run
    from mnistgen.training.run_folder import previous_run

    redo = {f"train@{v}" for v in variants if previous_run(plan_run(TrainRequest(repo, v)))[0] != "finished"}
    info = json.loads((repo / "models" / "classifier" / "classifier.json").read_text())
    if info["trained_on"] != trained_on(repo, load_params(repo)["profile"]):
        redo.add("classifier")
    return redo


def test_the_pipeline_and_dvc_status_agree_on_what_is_stale(
    pipeline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    repo = tmp_path / "clone"
    copy_repository(repo)
    files = publish_synthetic_mnist(repo / "data" / "mnist", TRAINING_ROWS)
    variants = ["mlp_gan", "toy_gan_1d"]
    set_params(
        repo,
        {
            "profile": "smoke",
            "train": {"variants": variants},
            "data": {"files": files, "validation": {"rows": dict(TRAINING_ROWS)}, "dvc": {"push": False}},
        },
    )
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "clone")
    result = pipeline.retrain(project_dir=str(repo), mirrors=[str(repo / "data" / "mnist")])
    assert result["trainings"] == {"mlp_gan": "trained", "toy_gan_1d": "trained"}
    assert _dvc_status(repo) == set(), "after the pipeline, DVC calls what it produced current"

    edits = {
        "a variant's setting": ("params", {"profiles": {"smoke": {"variants": {"mlp_gan": {"epochs": 3}}}}}),
        "a train key": ("params", {"train": {"log_every_steps": 7}}),
        "the classifier's settings": ("params", {"classifier": {"features": 64}}),
        "a variant not in this project": ("params", {"variants": {"dcgan": {"z_dim": 64}}}),
        "the model file": ("file", "src/mnistgen/models/mlp_gan.py"),
        "the engine": ("file", "src/mnistgen/training/engine.py"),
        "the evaluation code": ("file", "src/mnistgen/evaluation/metrics.py"),
        "the README": ("file", "README.md"),
    }
    seen = set()
    for what, (kind, edit) in edits.items():
        target = repo / ("params.yaml" if kind == "params" else edit)
        before = target.read_text()
        if kind == "params":
            set_params(repo, edit)
        else:
            target.write_text(before + "\n# an edit\n")
        stale = _dvc_status(repo)
        assert _pipeline_would_redo(repo, variants) == stale, f"{what}: dvc status says {stale or 'nothing'}"
        seen |= stale
        target.write_text(before)
    assert seen == {"train@mlp_gan", "train@toy_gan_1d", "classifier"}, "the edits did make stages stale"
    assert _dvc_status(repo) == set()
