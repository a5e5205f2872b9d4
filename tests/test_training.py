"""Training end to end, one process per run as the pipeline does it, against a real MLflow store."""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from helpers.cli import cli_env, run_cli, same_image_per_seed
from helpers.mirror import TRAINING_ROWS, synthetic_split
from helpers.projects import SMOKE_KINDS, make_training_project, snapshot

from mnistgen import tracking

pytestmark = pytest.mark.slow

MODEL_FILES = {
    "adversarial": {"generator.keras", "discriminator.keras", "model_info.json"},
    "toy": {"generator.keras", "discriminator.keras", "model_info.json"},
    "reconstruction": {"encoder.keras", "decoder.keras", "model_info.json"},
}


def mlflow_client(project: Path):
    import mlflow

    return mlflow.MlflowClient(tracking_uri=f"sqlite:///{project}/mlflow/mlflow.db")


def run_record(project: Path, variant: str) -> dict:
    return json.loads((project / "runs" / variant / "run.json").read_text())


def staged_record(project: Path, variant: str) -> dict:
    """The record of a run that never ended normally: it stays in the staging folder."""
    return json.loads((project / ".mnistgen" / "runs" / variant / "run.json").read_text())


@pytest.mark.parametrize("variant", SMOKE_KINDS)
def test_smoke_training_is_tracked_in_mlflow(variant: str, smoke_run) -> None:
    project = smoke_run(variant)
    assert run_record(project, variant)["stopped_by"] == "completed"

    client = mlflow_client(project)
    run = client.get_run(run_record(project, variant)["run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.tags["variant"] == variant and run.data.tags["profile"] == "smoke"
    assert run.data.tags["seed"] == "42" and run.data.tags["git_commit"]
    assert run.data.params["train.seed"] == "42" and "variant.batch_size" in run.data.params
    first_loss = "loss" if variant in ("autoencoder", "vae", "cvae") else "g_loss"
    history = client.get_metric_history(run.info.run_id, f"train/{first_loss}")
    assert len(history) >= 2 and all(point.value == point.value for point in history)
    assert [m.step for m in client.get_metric_history(run.info.run_id, f"epoch/{first_loss}")] == [1, 2]
    assert any(name.startswith("system/cpu") for name in run.data.metrics), "the run's CPU use, every second"
    inputs = {(i.dataset.name, i.dataset.digest, i.tags[0].value) for i in run.inputs.dataset_inputs}
    read = {("mnist-train", tracking.data_version(project), "training")} if variant != "toy_gan_1d" else set()
    assert inputs == read, "the data it trained on, by its DVC version (the toy GAN draws its own)"

    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"samples", "figures", "model", "history.csv"} <= artifacts
    kind = json.loads((project / "runs" / variant / "model" / "model_info.json").read_text())["kind"]
    assert {Path(a.path).name for a in client.list_artifacts(run.info.run_id, "model")} == MODEL_FILES[kind]
    figures = {Path(a.path).name for a in client.list_artifacts(run.info.run_id, "figures")}
    assert "loss_curves.png" in figures
    if kind == "reconstruction":
        assert {"reconstructions.png", "latent_space.png", "interpolation.png"} <= figures
    samples = {Path(a.path).name for a in client.list_artifacts(run.info.run_id, "samples")}
    prefix = "densities" if kind == "toy" else "samples"
    assert {f"{prefix}_epoch_001.png", f"{prefix}_epoch_002.png"} <= samples
    sizes, positions = same_image_per_seed(project / "runs" / variant / "model")
    assert sizes, "image k of a request of 16 is image k of a request of 200"
    assert positions, "a seed's image does not depend on where it stands in a request"


IN_MEMORY = """
import json, sys
from pathlib import Path
from mnistgen.training.plan import TrainRequest
from mnistgen.training.run import train_variant
from mnistgen.training.tracker import MemoryTracker
tracker = MemoryTracker()
result = train_variant(TrainRequest(Path(sys.argv[1]), "cgan", "smoke", progress=False), tracker=tracker)
files = {folder: sorted(path.name for path in paths) for folder, paths in tracker.files.items()}
print(json.dumps({
    "same_run": result.run_id == tracker.run_id, "status": tracker.status, "name": tracker.name,
    "tags": tracker.tags, "params": sorted(tracker.params), "metrics": sorted(tracker.metrics),
    "steps": [step for step, _ in tracker.metrics["train/g_loss"]], "files": files,
}))
"""


def test_a_run_reports_to_any_tracker_and_needs_no_tracking_store(tmp_path: Path) -> None:
    """The loop talks to a tracker: given an in-memory one, a run gets everything an MLflow run would get
    and no store is created or asked."""
    project = make_training_project(tmp_path / "project")
    shutil.rmtree(project / "mlflow")  # no store at all, not even an empty one
    env = {**cli_env(), "MLFLOW_TRACKING_URI": "http://127.0.0.1:9"}  # were it asked, it would fail
    done = subprocess.run(
        [sys.executable, "-c", IN_MEMORY, str(project)], capture_output=True, text=True, env=env, cwd=project
    )
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.splitlines()[-1])
    assert seen["same_run"] and seen["status"] == "FINISHED" and seen["name"] == "cgan · smoke · seed 42"
    assert seen["tags"]["stopped_by"] == "completed" and seen["tags"]["steps"] == "40/40"
    assert "variant.generator.optimizer.lr" in seen["params"] and "total_steps" in seen["params"]
    assert seen["steps"] == [5, 10, 15, 20, 25, 30, 35, 40]
    assert {"epoch/g_loss", "final/g_loss", "time/step_seconds"} <= set(seen["metrics"])
    assert seen["files"]["samples"] == ["samples_epoch_001.png", "samples_epoch_002.png", "samples_final.png"]
    assert {"generator.keras", "discriminator.keras", "model_info.json"} == set(seen["files"]["model"])
    assert seen["files"][""] == ["history.csv"] and "loss_curves.png" in seen["files"]["figures"]
    assert not (project / "mlflow").exists()
    assert json.loads((project / "runs" / "cgan" / "run.json").read_text())["stopped_by"] == "completed"


def _final_weights(project: Path) -> list:
    import keras

    generator = keras.saving.load_model(
        project / "runs" / "mlp_gan" / "model" / "generator.keras", safe_mode=True
    )
    return [w.copy() for w in generator.get_weights()]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory):
    """`uninterrupted(*SETTINGS)`: a project where mlp_gan's smoke run went straight through with those
    settings, trained once per module (the plain one serves both cases below)."""
    trained: dict[tuple[str, ...], Path] = {}

    def run(*settings: str) -> Path:
        if settings not in trained:
            project = make_training_project(tmp_path_factory.mktemp("straight") / "project")
            done = run_cli(project, "train", "mlp_gan", "--profile", "smoke", *settings)
            assert done.returncode == 0, done.stderr[-3000:]
            trained[settings] = project
        return trained[settings]

    return run


@pytest.mark.parametrize("settings", [[], ["--set", "variants.mlp_gan.ema_decay=0.9"]], ids=["plain", "ema"])
def test_resume_continues_the_same_run_and_matches_an_uninterrupted_one(
    settings: list[str], tmp_path: Path, uninterrupted
) -> None:
    """With a generator average, the average is checkpointed too, and it is what the run saves."""
    import numpy as np

    interrupted = make_training_project(tmp_path / "interrupted")
    first = run_cli(interrupted, "train", "mlp_gan", "--profile", "smoke", "--max-steps", "13", *settings)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "step limit at step 13/40" in first.stdout
    run_id = run_record(interrupted, "mlp_gan")["run_id"]

    second = run_cli(interrupted, "train", "mlp_gan", "--profile", "smoke", "--resume", *settings)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "completed at step 40/40" in second.stdout
    assert run_record(interrupted, "mlp_gan")["run_id"] == run_id
    client = mlflow_client(interrupted)
    assert client.get_run(run_id).info.status == "FINISHED"
    steps = [m.step for m in client.get_metric_history(run_id, "train/g_loss")]
    assert steps == sorted(set(steps)) and steps[-1] == 40 and 15 in steps and 10 in steps

    straight = uninterrupted(*settings)
    for resumed, whole in zip(_final_weights(interrupted), _final_weights(straight), strict=True):
        np.testing.assert_array_equal(resumed, whole)  # bit for bit
    if settings:
        run = client.get_run(run_id)
        assert run.data.params["variant.ema_decay"] == "0.9" and run.data.tags["overrides"] == settings[1]
        saved_average, raw_generator = _final_weights(straight), _final_weights(uninterrupted())
        assert any(not np.allclose(a, b) for a, b in zip(saved_average, raw_generator, strict=True))


@pytest.fixture(scope="module", params=["autoencoder", "vae", "vae-mixture", "cvae-mixture"])
def fitted_prior(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, str]:
    """A project where the autoencoder, the VAE or the conditional VAE trained with a prior fitted to its
    codes: one Gaussian, or (-mixture) a mixture of three (the conditional VAE's: one for each digit)."""
    variant = request.param.split("-")[0]
    project = make_training_project(tmp_path_factory.mktemp(f"fitted-{request.param}") / "project")
    settings = ["--set", f"variants.{variant}.latent_prior=fitted"]
    if request.param.endswith("mixture"):
        settings += ["--set", f"variants.{variant}.latent_components={MIXTURE}"]
    done = run_cli(project, "train", variant, "--profile", "smoke", *settings)
    assert done.returncode == 0, done.stderr[-3000:]
    return project, variant


MIXTURE = 3  # the components of the fixture's mixture


def _moments(fit: dict) -> tuple[Any, Any]:
    """The mean and covariance of a fitted prior: its Gaussian's, or its mixture's as a whole."""
    import numpy as np

    if "weights" not in fit:
        return np.asarray(fit["mean"]), np.asarray(fit["cov"])
    weights, means, covs = (np.asarray(fit[k]) for k in ("weights", "means", "covs"))
    mean = weights @ means
    second = np.einsum("k,kij->ij", weights, covs + np.einsum("ki,kj->kij", means, means))
    return mean, second - np.outer(mean, mean)


def test_a_fitted_prior_samples_where_the_codes_are(fitted_prior: tuple[Path, str]) -> None:
    import numpy as np

    from mnistgen.serving.sampler import Sampler

    project, variant = fitted_prior
    sampler = Sampler(project / "runs" / variant / "model")
    fit = sampler.info["latent_fit"]
    digits = np.full(4000, 3) if "per_class" in fit else None  # a conditional model's: the threes' prior
    mean, cov = _moments(fit if digits is None else fit["per_class"][3])
    z = sampler.noise(np.arange(4000), digits)
    assert z.shape == (4000, sampler.info["z_dim"])  # a mixture's picking coordinate is used up
    spread = np.sqrt(np.diag(cov))
    np.testing.assert_allclose(z.mean(axis=0), mean, atol=0.1 * spread.max())
    np.testing.assert_allclose(np.cov(z, rowvar=False), cov, rtol=0.15, atol=0.05 * spread.max() ** 2)
    assert sampler.sample(8).shape == (8, 28, 28)


def test_a_fitted_prior_is_the_gaussian_of_the_training_codes(fitted_prior: tuple[Path, str]) -> None:
    """Recomputed from the saved encoder over the same training images: the autoencoder's Gaussian is its
    codes' mean and covariance; the VAE's is its aggregate posterior's, the means' covariance plus the
    average posterior variance on the diagonal (the means alone would sample too narrowly); the conditional
    VAE's, one per digit, over that digit's images encoded with it. A mixture fitted by EM has, as a
    whole, the codes' mean and (biased) covariance: EM's last step sets each component from its
    responsibilities, which sum to one per code."""
    import keras
    import numpy as np

    from mnistgen.images import to_unit
    from mnistgen.serving.sampler import Sampler
    from mnistgen.training.reporters import FIT_IMAGES

    project, variant = fitted_prior
    model_dir = project / "runs" / variant / "model"
    fit = Sampler(model_dir).info["latent_fit"]
    encoder = keras.saving.load_model(model_dir / "encoder.keras", safe_mode=True)
    train_images, train_labels = synthetic_split(TRAINING_ROWS["train"], seed=1)  # what the project was given
    images = to_unit(train_images[:FIT_IMAGES, ..., None])
    conditional = variant == "cvae"
    encoded = encoder.predict(
        [images, train_labels[:FIT_IMAGES, None].astype(np.int32)] if conditional else images, verbose=0
    )
    variational = variant != "autoencoder"
    codes = np.asarray(encoded[0] if variational else encoded, dtype=np.float64)
    digits = train_labels[:FIT_IMAGES]
    groups = [(fit["per_class"][d], digits == d) for d in range(10)] if conditional else [(fit, digits >= 0)]
    for one, rows in groups:
        mixture = "weights" in one
        expected = np.cov(codes[rows], rowvar=False, bias=mixture)
        if variational:
            expected += np.diag(np.exp(np.asarray(encoded[1], dtype=np.float64)[rows]).mean(axis=0))
        if mixture:
            assert len(one["weights"]) == MIXTURE and abs(sum(one["weights"]) - 1) < 1e-9
        mean, cov = _moments(one)
        np.testing.assert_allclose(mean, codes[rows].mean(axis=0), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(cov, expected, rtol=1e-4, atol=1e-5)


def test_a_self_conditioned_gan_trains_on_clusters_and_samples_without_labels(smoke_run) -> None:
    """scgan: trained on the k-means clusters of the training images (never their digits), saved as an
    unconditional generator whose extra noise coordinate draws each cluster at its share of the data."""
    import numpy as np

    from mnistgen.data.clusters import cluster_labels, shares
    from mnistgen.serving.sampler import Sampler

    project = smoke_run("scgan")
    sampler = Sampler(project / "runs" / "scgan" / "model")
    train_images, _ = synthetic_split(TRAINING_ROWS["train"], seed=1)  # what the project was given
    expected = shares(cluster_labels(train_images, 100, seed=42), 100)  # the base settings' 100 clusters
    assert sampler.info["cluster_shares"] == expected
    assert sampler.classes == 0 and sampler.info["z_dim"] == 101  # z and the cluster's coordinate
    drawn = np.asarray(sampler.network.get_layer("cluster")(sampler.noise(np.arange(5000))[:, -1:]))
    np.testing.assert_allclose(np.bincount(drawn.ravel(), minlength=100) / 5000, expected, atol=0.01)
    assert sampler.sample(8, seed=1).shape == (8, 28, 28)


def test_cgan_on_styles_of_each_digit_trains_on_them_and_draws_the_digit_it_is_given(smoke_run) -> None:
    """cgan with `subclusters` 3: trained on 30 labels (3 k-means clusters of each digit's images), saved as
    a conditional generator on the 10 digits whose extra noise coordinate draws one of the given digit's
    own clusters, each as often as that digit's images fall in it."""
    import keras
    import numpy as np

    from mnistgen.data.clusters import relabel, shares
    from mnistgen.data.idx import Split
    from mnistgen.serving.sampler import Sampler

    project = smoke_run("cgan", "--set", "variants.cgan.subclusters=3")
    sampler = Sampler(project / "runs" / "cgan" / "model")
    train_images, train_digits = synthetic_split(TRAINING_ROWS["train"], seed=1)  # what the project was given
    styles = relabel(Split(train_images, train_digits), 3, seed=42, within_digits=True).labels
    expected = shares(styles, 30)
    assert sampler.info["cluster_shares"] == expected
    assert sampler.classes == 10 and sampler.info["z_dim"] == 101  # z and the style's coordinate; digits
    network = sampler.network  # the saved generator up to the label it hands the trained one
    router = keras.Model(network.inputs, network.get_layer("cluster").output)
    digits = (np.arange(6000) % 10)[:, None].astype(np.int32)
    drawn = np.asarray(router([sampler.noise(np.arange(6000)), digits])).ravel()
    np.testing.assert_array_equal(drawn // 3, digits.ravel())  # always one of the digit's own styles
    for digit in (0, 7):
        own = np.asarray(expected[digit * 3 : digit * 3 + 3])
        counts = np.bincount(drawn[digits.ravel() == digit] - digit * 3, minlength=3)
        np.testing.assert_allclose(counts / counts.sum(), own / own.sum(), atol=0.05)
    assert sampler.sample(8, seed=1, labels=np.arange(8) % 10).shape == (8, 28, 28)


def killed_after_checkpoint(project: Path, number: int) -> None:
    """`mnistgen train mlp_gan` killed (SIGKILL) once its checkpoint `number` is recorded."""
    checkpoints = project / ".mnistgen" / "runs" / "mlp_gan" / "checkpoints"  # the run in progress
    command = [sys.executable, "-m", "mnistgen", "train", "mlp_gan", "--profile", "smoke"]
    process = subprocess.Popen(
        [*command, "--project-dir", str(project), "--no-progress"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=cli_env(),
    )

    def recorded() -> bool:
        """The checkpoint manager lists it (its files are written first, then the `checkpoint` state file:
        a kill between the two leaves it unlisted, and the run resumes from the one before)."""
        state = checkpoints / "checkpoint"
        return state.is_file() and f'"ckpt-{number}"' in state.read_text()

    try:
        deadline = time.monotonic() + 120
        while not recorded() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert process.poll() is None, "training ended before it could be killed"
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()


@pytest.fixture(scope="module")
def killed_then_resumed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """A long mlp_gan run killed (SIGKILL) after its 40th-step checkpoint, then resumed up to step 100 of
    800: the project and the resuming command's stdout and stderr. The run stays unfinished."""
    project = make_training_project(
        tmp_path_factory.mktemp("killed") / "project",
        {"profiles": {"smoke": {"variants": {"mlp_gan": {"epochs": 40}}}}},
    )
    killed_after_checkpoint(project, 40)
    done = run_cli(project, "train", "mlp_gan", "--profile", "smoke", "--resume", "--max-steps", "100")
    assert done.returncode == 0, done.stderr[-3000:]
    return project, done.stdout, done.stderr


def test_a_killed_run_resumes_from_its_last_checkpoint(killed_then_resumed: tuple[Path, str, str]) -> None:
    _, stdout, stderr = killed_then_resumed
    assert "step limit at step 100/800" in stdout
    resumed_at = int(re.search(r"resuming run \w+ at step (\d+)", stderr).group(1))
    assert resumed_at >= 40 and resumed_at % 10 == 0, "resumes from a checkpoint, losing at most 10 steps"


def test_resume_refuses_changed_settings(killed_then_resumed: tuple[Path, str, str]) -> None:
    project, _, _ = killed_then_resumed
    before = snapshot(project / "runs"), snapshot(project / ".mnistgen")
    done = run_cli(project, "train", "mlp_gan", "--profile", "smoke", "--seed", "7", "--resume")
    assert done.returncode == 1
    assert "different settings, code or data (seed changed)" in done.stderr
    assert (snapshot(project / "runs"), snapshot(project / ".mnistgen")) == before


def test_a_terminated_training_ends_its_run_killed_and_resumable(tmp_path: Path) -> None:
    """SIGTERM (`kill`, a scheduler stopping a job) ends a training as Ctrl-C does: checkpointed, the MLflow
    run KILLED (never left RUNNING), nothing published, and `--resume` named."""
    project = make_training_project(
        tmp_path / "project", {"profiles": {"smoke": {"variants": {"mlp_gan": {"epochs": 40}}}}}
    )
    command = [sys.executable, "-m", "mnistgen", "train", "mlp_gan", "--profile", "smoke"]
    process = subprocess.Popen(
        [*command, "--project-dir", str(project), "--no-progress"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(),
    )
    state = project / ".mnistgen" / "runs" / "mlp_gan" / "checkpoints" / "checkpoint"
    deadline = time.monotonic() + 120
    while not state.is_file() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.2)
    assert process.poll() is None, "training ended before it could be stopped"
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130 and "Traceback" not in stderr, stderr[-3000:]
    assert "`mnistgen train mlp_gan --resume` continues" in stderr
    run = mlflow_client(project).get_run(staged_record(project, "mlp_gan")["run_id"])
    assert run.info.status == "KILLED" and run.data.tags["stopped_by"] == "interrupted"
    assert not (project / "runs" / "mlp_gan").exists(), "nothing published"


def test_a_new_run_closes_the_run_a_killed_training_left_running(tmp_path: Path) -> None:
    """SIGKILL gives a training no chance to end its MLflow run; the next training of the variant (which
    holds the lock, so no process still writes it) closes it as KILLED rather than leave it RUNNING."""
    project = make_training_project(
        tmp_path / "project", {"profiles": {"smoke": {"variants": {"mlp_gan": {"epochs": 40}}}}}
    )
    killed_after_checkpoint(project, 10)
    killed = staged_record(project, "mlp_gan")["run_id"]
    assert mlflow_client(project).get_run(killed).info.status == "RUNNING"
    done = run_cli(project, "train", "mlp_gan", "--profile", "smoke", "--max-steps", "20")
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"run {killed}, left running by a training that was killed, is marked KILLED" in done.stderr
    assert mlflow_client(project).get_run(killed).info.status == "KILLED"
    published = json.loads((project / "runs" / "mlp_gan" / "run.json").read_text())["run_id"]
    assert published != killed and mlflow_client(project).get_run(published).info.status == "FINISHED"


# The discriminator's loss made NaN from the first step on, as a diverging training makes it.
NAN_LOSS = """
from mnistgen.training import losses
discriminator, generator = losses.LOSSES["bce"]
losses.LOSSES["bce"] = (lambda real, fake: discriminator(real, fake) * float("nan"), generator)
"""


def test_nan_loss_stops_the_run_and_saves_no_model(tmp_path: Path) -> None:
    project = make_training_project(tmp_path / "project")
    done = run_cli(project, "train", "mlp_gan", "--profile", "smoke", fault=NAN_LOSS)
    assert done.returncode == 1
    assert "mlp_gan: loss '" in done.stderr and "at step" in done.stderr and "marked FAILED" in done.stderr
    assert not (project / "runs" / "mlp_gan").exists()
    record = staged_record(project, "mlp_gan")
    assert (
        "became" in record["failed"] and not (project / ".mnistgen" / "runs" / "mlp_gan" / "model").exists()
    )
    run = mlflow_client(project).get_run(record["run_id"])
    assert run.info.status == "FAILED" and "became" in run.data.tags["failure"]
    assert not mlflow_client(project).list_artifacts(run.info.run_id, "model")


def test_toy_gan_learns_the_target_mean(tmp_path: Path) -> None:
    # 1,500 steps in two epochs (not 30 of 50 steps): the same training, with two epochs' figures and
    # checkpoints to write instead of thirty.
    steps = {"epochs": 2, "steps_per_epoch": 750}
    project = make_training_project(
        tmp_path / "project", {"profiles": {"smoke": {"variants": {"toy_gan_1d": steps}}}}
    )
    done = run_cli(project, "train", "toy_gan_1d", "--profile", "smoke")
    assert done.returncode == 0, done.stderr[-3000:]
    metrics = json.loads((project / "runs" / "toy_gan_1d" / "metrics.json").read_text())
    assert abs(metrics["sample_mean"] - (-1.0)) < 0.3, metrics


def test_a_bad_setting_is_refused_before_the_previous_run_is_touched(fitted_prior: tuple[Path, str]) -> None:
    project, variant = fitted_prior
    before = run_record(project, variant)
    bad = f"variants.{variant}.latent_prior=fited"
    done = run_cli(project, "train", variant, "--profile", "smoke", "--set", bad)
    assert done.returncode == 1 and "latent_prior is 'fited'; it must be one of normal, fitted" in done.stderr
    assert run_record(project, variant) == before
    assert (project / "runs" / variant / "model" / "decoder.keras").is_file()


def test_a_prior_with_more_gaussians_than_images_is_refused_before_the_run_is_touched(
    fitted_prior: tuple[Path, str],
) -> None:
    project, variant = fitted_prior
    if variant != "cvae":
        pytest.skip("the conditional VAE fits each digit's 260 codes: the fewest of the fixtures")
    before = run_record(project, variant)
    too_many = [
        "--set",
        f"variants.{variant}.latent_prior=fitted",
        "--set",
        f"variants.{variant}.latent_components=300",
    ]
    done = run_cli(project, "train", variant, "--profile", "smoke", *too_many)
    assert done.returncode == 1, done.stderr[-2000:]
    assert (
        "error: latent_components is 300: a fitted prior needs 300 training images of a digit to fit it to, "
        "and there are 260. Fix: lower latent_components" in done.stderr
    )
    assert run_record(project, variant) == before
