"""Classifier -> evaluate -> register -> sample, as a user runs them, each in its own process."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import yaml
from helpers.cli import cli_env, run_cli
from helpers.projects import make_training_project, snapshot

from mnistgen import tracking

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
    fid, low, high = (float(n) for n in cells[5].replace("[", "").replace("]", "").replace(",", "").split())
    assert cells[4] == "" and fid < 5.0, "real images (no steps) are close to the test set in FID"
    assert low < fid < high, "FID with its bootstrap interval"
    assert cells[3] == "MNIST's training images", "what the floor row is"
    mlp = [c.strip() for c in next(line for line in board.splitlines() if "| mlp_gan |" in line).split("|")]
    assert mlp[3:5] == ["non-saturating GAN; MLPs, one hidden layer", "40"], "what it is, and its steps"
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
    # The data each run read, as MLflow dataset inputs: the split, its DVC version, the context.
    version = tracking.data_version(project)
    read = {(i.dataset.name, i.dataset.digest, i.tags[0].value) for i in run.inputs.dataset_inputs}
    assert read == {("mnist-train", version, "training"), ("mnist-test", version, "evaluation")}
    (classifier_run,) = client.search_runs([run.info.experiment_id], "tags.kind = 'classifier'")
    read = {(i.dataset.name, i.tags[0].value) for i in classifier_run.inputs.dataset_inputs}
    assert read == {("mnist-train", "training"), ("mnist-test", "evaluation")}


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
    # The version's description is its model card, made from the figures the leaderboard reports.
    client = _store(project)
    version = client.get_model_version("mnist-generator", "1")
    variant = version.tags["variant"]
    figures = json.loads((project / "reports" / "metrics" / f"{variant}.json").read_text())
    floor = json.loads((project / "reports" / "metrics" / "floor.json").read_text())
    for metric in ("fid", "recall", "precision"):
        assert (
            f"{figures[metric]:.3g}" in version.description and f"{floor[metric]:.3g}" in version.description
        )
    assert "models:/mnist-generator/1" in version.description and "## Known limits" in version.description
    assert "How `champion` is decided" in client.get_registered_model("mnist-generator").description
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


def reports(project: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(project)): p.read_bytes() for p in (project / "reports").rglob("*") if p.is_file()
    }


def test_a_corrupt_model_costs_only_its_own_evaluation_and_leaves_the_reports_whole(evaluated) -> None:
    """The others are measured and logged; the reports stay as they were, so no variant vanishes from
    them (it would look as if it had gone)."""
    project, _ = evaluated
    run_id = json.loads((project / "runs" / "mlp_gan" / "run.json").read_text())["run_id"]
    (network,) = [p for p in (project / "mlflow" / "artifacts").rglob("generator.keras") if run_id in p.parts]
    original, before = network.read_bytes(), reports(project)
    network.write_bytes(original[: len(original) // 2])
    try:
        done = run_cli(project, "evaluate", "--profile", "smoke")
    finally:
        network.write_bytes(original)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr[-3000:]
    assert "1 of 3 runs could not be evaluated" in done.stderr and f"mlp_gan (run {run_id})" in done.stderr
    assert "reports in" in done.stderr and "left as they were" in done.stderr
    assert reports(project) == before
    assert run_cli(project, "evaluate", "--profile", "smoke").returncode == 0
    assert reports(project) == before, "the same scores once the model is back"


def test_reports_that_cannot_be_written_leave_the_previous_ones(evaluated) -> None:
    """Writing the leaderboard fails (a folder where its draft goes stands for a full disk): one error,
    every report as it was, no draft left."""
    project, _ = evaluated
    before = reports(project)
    blocker = project / "reports" / ".leaderboard.html.partial"
    blocker.mkdir()
    try:
        done = run_cli(project, "evaluate", "--profile", "smoke")
    finally:
        blocker.rmdir()
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr[-3000:]
    assert "the reports could not be written" in done.stderr and "Fix: free space" in done.stderr
    assert reports(project) == before
    assert not list((project / "reports").glob(".*.partial"))


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


# `mnistgen register`, killed by SIGKILL at the moment it writes the model's files into the store.
KILLED_WHILE_LOGGING = """
import os, signal
from mlflow import MlflowClient
MlflowClient.log_model_artifacts = lambda *args, **kwargs: os.kill(os.getpid(), signal.SIGKILL)
"""


def killed_in(project: Path, fault: str, verb: str) -> None:
    """`mnistgen VERB --profile smoke` with `fault` planted, which SIGKILLs it at its chosen moment."""
    done = run_cli(project, verb, "--profile", "smoke", fault=fault)
    assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]


@contextmanager
def registered_as(project: Path, name: str) -> Iterator[None]:
    """`registry.model_name` set to `name` in the project's params.yaml for the block: a model with no
    champion yet, so a registration logs and registers a version."""
    path = project / "params.yaml"
    original = path.read_text()
    params = yaml.safe_load(original)
    params["registry"]["model_name"] = name
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    try:
        yield
    finally:
        path.write_text(original)


def _store(project: Path):
    import mlflow

    return mlflow.MlflowClient(tracking_uri=f"sqlite:///{project}/mlflow/mlflow.db")


def _statuses(project: Path) -> dict[str, str]:
    client = _store(project)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    return {run.info.run_id: run.info.status for run in runs}


def _champion_run(project: Path, name: str = "mnist-generator") -> str:
    return _store(project).get_model_version_by_alias(name, "champion").run_id


def test_a_registration_killed_while_it_logs_leaves_every_run_as_it_was(evaluated) -> None:
    """The kill leaves no run RUNNING, so the next evaluation finds every variant and keeps its report,
    and the next registration crowns the same generator an uninterrupted one did."""
    project, _ = evaluated
    before = _statuses(project)
    with registered_as(project, "killed-generator"):
        killed_in(project, KILLED_WHILE_LOGGING, "register")
        assert _statuses(project) == before, "every run as it was: none left RUNNING"
        evaluated_again = run_cli(project, "evaluate", "--profile", "smoke")
        assert evaluated_again.returncode == 0, evaluated_again.stderr[-3000:]
        reports = {path.stem for path in (project / "reports" / "metrics").glob("*.json")}
        assert reports == {"mlp_gan", "autoencoder", "toy_gan_1d", "floor"}
        registered = run_cli(project, "register", "--profile", "smoke")
        assert registered.returncode == 0, registered.stderr[-3000:]
        assert "killed-generator v1 @champion: first registration" in registered.stdout
        assert _champion_run(project, "killed-generator") == _champion_run(project)


def test_two_registrations_at_once_register_the_best_once(evaluated) -> None:
    project, _ = evaluated
    command = [
        sys.executable,
        "-m",
        "mnistgen",
        "register",
        "--profile",
        "smoke",
        "--project-dir",
        str(project),
    ]
    with registered_as(project, "twice-generator"):
        both = [
            subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env()
            )
            for _ in range(2)
        ]
        printed = [process.communicate(timeout=300) for process in both]
        assert [process.returncode for process in both] == [0, 0], [err[-2000:] for _, err in printed]
        said = sorted(out.strip().splitlines()[-1] for out, _ in printed)
        assert said[0].startswith("twice-generator @champion: ") and "is already the champion" in said[0], (
            said
        )
        assert said[1].startswith("twice-generator v1 @champion: first registration"), said
        (version,) = _store(project).search_model_versions("name = 'twice-generator'")
        assert version.run_id == _champion_run(project), "the best generator, registered once"


# `mnistgen evaluate`, killed by SIGKILL at the moment it writes a run's figures into the store.
KILLED_WHILE_WRITING = KILLED_WHILE_LOGGING.replace("log_model_artifacts", "log_batch")


def test_an_evaluation_killed_while_it_writes_leaves_the_figures_and_their_key_together(evaluated) -> None:
    """Evaluated again under other settings and killed as it writes: each run keeps its earlier figures
    under its earlier key (so they are never reused as the new evaluation's), nothing half-written."""
    project, _ = evaluated
    client = _store(project)
    run_ids = [
        json.loads((project / "runs" / variant / "run.json").read_text())["run_id"]
        for variant in ("mlp_gan", "autoencoder", "toy_gan_1d")
    ]

    def written() -> dict[str, str]:  # as text: a NaN figure equals itself
        return {run_id: repr(client.get_run(run_id).data) for run_id in run_ids}

    before = written()
    path = project / "params.yaml"
    original = path.read_text()
    params = yaml.safe_load(original)
    params["profiles"]["smoke"]["evaluation"]["samples"] += 100  # another evaluation key
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    try:
        killed_in(project, KILLED_WHILE_WRITING, "evaluate")
    finally:
        path.write_text(original)
    assert written() == before


def test_registration_waits_for_figures_that_went_missing(evaluated) -> None:
    """A variant whose figures are gone from its run (an evaluation that never finished) stops the
    registration before it decides anything; evaluating again mends it."""
    project, _ = evaluated
    client = _store(project)
    run_id = json.loads((project / "runs" / "autoencoder" / "run.json").read_text())["run_id"]
    client.delete_tag(run_id, "eval/key")
    with registered_as(project, "waiting-generator"):
        refused = run_cli(project, "register", "--profile", "smoke")
        assert refused.returncode == 1 and "Traceback" not in refused.stderr, refused.stderr[-3000:]
        (error,) = [line for line in refused.stderr.splitlines() if line.startswith("error:")]
        assert f"autoencoder (run {run_id}) has no scores from the current evaluation" in error
        assert "Fix: run `mnistgen evaluate`, then `mnistgen register`" in error
        assert not client.search_model_versions("name = 'waiting-generator'"), "nothing registered"
        assert run_cli(project, "evaluate", "--profile", "smoke").returncode == 0
        assert run_cli(project, "register", "--profile", "smoke").returncode == 0
        assert _champion_run(project, "waiting-generator") == _champion_run(project)


def test_evaluate_and_register_flows(evaluated, prefect_harness) -> None:
    from flows import evaluate_flow

    project, _ = evaluated
    rows = evaluate_flow.evaluate(profile="smoke", project_dir=str(project))
    assert {row["variant"] for row in rows} == {"mlp_gan", "autoencoder", "toy_gan_1d", "real data (floor)"}
    decision = evaluate_flow.register(profile="smoke", project_dir=str(project))
    assert decision["alias"] == "champion"


def test_a_trial_seed_is_reported_beside_the_pipeline_reports(evaluated) -> None:
    """`evaluate --seed N` and `register --seed N` (a trial's runs) write under reports/seed-N/ and leave
    the reports of `train.seed`'s runs (the ones DVC tracks) as they were."""
    project, _ = evaluated
    reports = project / "reports"
    before = snapshot(reports)
    assert run_cli(project, "train", "mlp_gan", "--profile", "smoke", "--seed", "1").returncode == 0
    done = run_cli(project, "evaluate", "--profile", "smoke", "--seed", "1")
    assert done.returncode == 0, done.stderr[-3000:]
    with registered_as(project, "trial-generator"):
        done = run_cli(project, "register", "--profile", "smoke", "--seed", "1")
    assert done.returncode == 0, done.stderr[-3000:]
    after = snapshot(reports)
    assert {name: digest for name, digest in after.items() if not name.startswith("seed-1/")} == before
    assert {name for name in after if name.startswith("seed-1/")} == {
        "seed-1/leaderboard.md",
        "seed-1/leaderboard.html",
        "seed-1/metrics/mlp_gan.json",
        "seed-1/metrics/floor.json",
        "seed-1/registration.json",
    }
