"""Classifier -> evaluate -> register -> sample, as a user runs them, each in its own process."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import make_training_project, run_cli

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    project = make_training_project(tmp_path_factory.mktemp("evaluation") / "project")
    for variant in ("mlp_gan", "autoencoder", "toy_gan_1d"):
        done = run_cli(project, "train", variant, "--profile", "smoke")
        assert done.returncode == 0, done.stderr[-2000:]
    outputs = {}
    temp = project.parent / "system-temp"  # the commands' temporary folder: must be left empty
    temp.mkdir()
    for verb in ("classifier", "evaluate", "register"):
        done = run_cli(project, verb, "--profile", "smoke", env={"TMPDIR": str(temp)})
        assert done.returncode == 0, f"{verb}: {done.stderr[-3000:]}"
        outputs[verb] = done.stdout
    return project, outputs


def test_classifier_is_accurate_and_versioned(evaluated) -> None:
    project, outputs = evaluated
    info = json.loads((project / "models" / "classifier" / "classifier.json").read_text())
    assert info["test_accuracy"] >= 0.9 and len(info["version"]) == 12
    assert f"classifier {info['version']}: test accuracy" in outputs["classifier"]


def test_leaderboard_lists_every_variant_and_the_floor(evaluated) -> None:
    project, _ = evaluated
    board = (project / "reports" / "leaderboard.md").read_text()
    for name in ("mlp_gan", "autoencoder", "toy_gan_1d", "real data (floor)"):
        assert name in board
    floor = next(line for line in board.splitlines() if "real data (floor)" in line)
    cells = [c.strip() for c in floor.split("|")]
    fid, low, high = (float(n) for n in cells[4].replace("[", "").replace("]", "").replace(",", "").split())
    assert cells[3] == "" and fid < 5.0, "real images (no steps) are close to the test set in FID"
    assert low < fid < high, "FID with its bootstrap interval"
    mlp = next(line for line in board.splitlines() if "| mlp_gan |" in line)
    assert [c.strip() for c in mlp.split("|")][3] == "40", "the steps the run trained"
    page = (project / "reports" / "leaderboard.html").read_text()
    assert page.count("data:image/png;base64,") == 3  # two image models and the floor


def test_metrics_are_logged_into_the_training_runs(evaluated) -> None:
    import mlflow

    project, _ = evaluated
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{project}/mlflow/mlflow.db")
    run_id = json.loads((project / "runs" / "mlp_gan" / "run.json").read_text())["run_id"]
    run = client.get_run(run_id)
    assert {"eval/fid", "eval/kid", "eval/recall", "eval/mode_entropy", "eval/memorisation_ratio"} <= set(
        run.data.metrics
    )
    for metric in ("fid", "recall"):  # with their bootstrap interval
        m = run.data.metrics
        assert m[f"eval/{metric}_ci_low"] <= m[f"eval/{metric}"] <= m[f"eval/{metric}_ci_high"]
    assert (
        run.data.tags["eval/extractor_version"]
        == json.loads((project / "models" / "classifier" / "classifier.json").read_text())["version"]
    )
    toy = client.get_run(json.loads((project / "runs" / "toy_gan_1d" / "run.json").read_text())["run_id"])
    assert {"eval/wasserstein1", "eval/ks"} <= set(toy.data.metrics)


def test_evaluation_and_registration_leave_no_model_copies_behind(evaluated) -> None:
    project, _ = evaluated
    # TensorFlow's autograph leaves its generated sources there; no model copy may stay.
    left = [
        p.name for p in (project.parent / "system-temp").iterdir() if not p.name.startswith("__autograph")
    ]
    assert left == []


def test_register_sets_a_champion_and_sample_writes_images(evaluated, tmp_path: Path) -> None:
    project, outputs = evaluated
    assert "mnist-generator v1 @champion: first registration" in outputs["register"]
    grid = run_cli(project, "sample", "--n", "16", "--out", str(tmp_path / "grid.png"), "--seed", "3")
    assert grid.returncode == 0, grid.stderr[-2000:]
    assert (tmp_path / "grid.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for name in ("a.npy", "b.npy"):
        done = run_cli(project, "sample", "--n", "8", "--out", str(tmp_path / name), "--seed", "3")
        assert done.returncode == 0, done.stderr[-2000:]
    a, b = np.load(tmp_path / "a.npy"), np.load(tmp_path / "b.npy")
    assert a.shape == (8, 28, 28) and a.dtype == np.float32 and 0.0 <= a.min() and a.max() <= 1.0
    np.testing.assert_array_equal(a, b)


def test_digit_on_an_unconditional_champion_is_a_clear_error(evaluated, tmp_path: Path) -> None:
    project, _ = evaluated
    done = run_cli(project, "sample", "--digit", "3", "--out", str(tmp_path / "x.png"))
    assert done.returncode == 1
    assert "is not class-conditional" in done.stderr and "drop --digit" in done.stderr
    assert not (tmp_path / "x.png").exists()


def test_sample_without_a_champion_explains_what_to_do(tmp_path: Path) -> None:
    project = make_training_project(tmp_path / "empty")
    done = run_cli(project, "sample", "--n", "4", "--out", str(tmp_path / "x.png"))
    assert done.returncode == 1
    assert (
        "cannot load models:/mnist-generator@champion" in done.stderr and "mnistgen register" in done.stderr
    )


def test_a_corrupt_model_costs_only_its_own_evaluation(evaluated) -> None:
    project, _ = evaluated
    run_id = json.loads((project / "runs" / "mlp_gan" / "run.json").read_text())["run_id"]
    (network,) = [p for p in (project / "mlflow" / "artifacts").rglob("generator.keras") if run_id in p.parts]
    original = network.read_bytes()
    network.write_bytes(original[: len(original) // 2])
    try:
        done = run_cli(project, "evaluate", "--profile", "smoke")
    finally:
        network.write_bytes(original)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr[-3000:]
    assert "1 of 3 runs could not be evaluated" in done.stderr and f"mlp_gan (run {run_id})" in done.stderr
    board = (project / "reports" / "leaderboard.md").read_text()
    assert "| autoencoder |" in board and "| toy_gan_1d |" in board and "| mlp_gan |" not in board


def test_a_registered_model_changed_after_registration_is_refused(evaluated, tmp_path: Path) -> None:
    project, _ = evaluated
    registered = [
        p for p in (project / "mlflow" / "artifacts").rglob("model_info.json") if "models" in p.parts
    ]
    assert registered, "the registered version's copy of the networks"
    originals = {path: path.read_bytes() for path in registered}
    for path, content in originals.items():
        path.write_bytes(content + b" ")  # still valid JSON, other bytes
    try:
        done = run_cli(project, "sample", "--out", str(tmp_path / "x.png"))
    finally:
        for path, content in originals.items():
            path.write_bytes(content)
    assert done.returncode == 1 and "are not the ones registered" in done.stderr, done.stderr[-2000:]
    assert not (tmp_path / "x.png").exists()
    assert run_cli(project, "sample", "--out", str(tmp_path / "x.png")).returncode == 0


def test_evaluate_and_register_flows(evaluated, prefect_harness) -> None:
    from flows import evaluate_flow

    project, _ = evaluated
    rows = evaluate_flow.evaluate(profile="smoke", project_dir=str(project))
    assert {row["variant"] for row in rows} == {"mlp_gan", "autoencoder", "toy_gan_1d", "real data (floor)"}
    decision = evaluate_flow.register(profile="smoke", project_dir=str(project))
    assert decision["alias"] == "champion"
