"""The champion/challenger rules against a real MLflow store in a temporary folder."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import keras
import mlflow
import numpy as np
import pytest
from helpers.settings import registry_settings, settings

from mnistgen import figures, registry, tracking
from mnistgen.models import VARIANTS
from mnistgen.models.base import sampling_info
from mnistgen.training.run_folder import FINAL_GRID, SAMPLES_DIR, grid_file

pytestmark = pytest.mark.slow
EXTRACTOR = "abc123def456"


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    # MLflow exports the URI it is given to the environment: pin it here so it is undone after the test.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow/mlflow.db")
    params = settings("smoke")
    experiment_id = tracking.use_experiment(tmp_path, params.mlflow)
    yield tmp_path, params, experiment_id, mlflow.MlflowClient()


def evaluated_run(
    tmp_path: Path,
    experiment_id: str,
    variant: str,
    fid: float,
    stopped_by: str = "completed",
    **extra: float,
) -> str:
    """A run holding an (untrained) generator, its last sample grid and evaluation figures, as
    `mnistgen evaluate` leaves it."""
    keras.backend.clear_session()
    keras.mixed_precision.set_dtype_policy("float32")
    cfg = settings("smoke").variants.of(variant)
    spec = VARIANTS[variant].build(cfg)
    model_dir = tmp_path / f"model-{variant}-{fid}"
    model_dir.mkdir()
    spec.generator.save(model_dir / "generator.keras")
    info = {"variant": variant, **sampling_info(spec)}
    (model_dir / "model_info.json").write_text(json.dumps(info))
    grid = model_dir.parent / f"samples-{variant}-{fid}" / grid_file(FINAL_GRID)
    grid.parent.mkdir()
    figures.image_grid(np.zeros((4, 28, 28)), grid)
    with mlflow.start_run(
        experiment_id=experiment_id,
        tags={
            "variant": variant,
            "kind": "adversarial",
            "eval/extractor_version": EXTRACTOR,
            "stopped_by": stopped_by,
            "steps": "1500/1500" if stopped_by == "completed" else "854/1500",
        },
    ) as run:
        mlflow.log_artifacts(str(model_dir), artifact_path="model")
        mlflow.log_artifact(str(grid), SAMPLES_DIR)
        mlflow.log_metrics(
            {
                "eval/fid": fid,
                "eval/mode_entropy": 0.95,
                "eval/memorisation_ratio": 1.0,
                **{f"eval/{k}": v for k, v in extra.items()},
            }
        )
    return run.info.run_id


def register(client, experiment_id: str, params: dict) -> registry.Decision:
    runs = client.search_runs([experiment_id], filter_string="tags.`eval/extractor_version` != ''")
    return registry.register_best(client, runs, params.registry, EXTRACTOR)


def champion_run(client, params: dict) -> str:
    return client.get_model_version_by_alias(params.registry.model_name, "champion").run_id


def test_champion_moves_only_for_a_better_generator(store) -> None:
    tmp_path, params, experiment_id, client = store
    first = evaluated_run(tmp_path, experiment_id, "mlp_gan", fid=50.0)
    decision = register(client, experiment_id, params)
    assert decision.alias == "champion" and "first registration" in decision.reason
    assert champion_run(client, params) == first

    evaluated_run(tmp_path, experiment_id, "dcgan", fid=80.0)  # worse: the best is still the champion
    assert register(client, experiment_id, params).version is None
    assert champion_run(client, params) == first

    better = evaluated_run(tmp_path, experiment_id, "dcgan", fid=30.0)
    decision = register(client, experiment_id, params)
    assert decision.alias == "champion" and "beats champion v1" in decision.reason
    assert champion_run(client, params) == better
    version = client.get_model_version(params.registry.model_name, decision.version)
    assert version.tags["score"] == "30.0" and "beats" in version.description
    model = Path(
        mlflow.artifacts.download_artifacts(
            f"models:/{version.name}/{version.version}", dst_path=tmp_path / "registered"
        )
    )
    grids = [path.relative_to(model).as_posix() for path in model.rglob(grid_file(FINAL_GRID))]
    assert grids == [f"artifacts/{grid_file(FINAL_GRID)}"], f"the version's sample grid: {grids}"


def test_a_worse_best_becomes_the_challenger(store) -> None:
    tmp_path, params, experiment_id, client = store
    champion = evaluated_run(tmp_path, experiment_id, "mlp_gan", fid=20.0)
    register(client, experiment_id, params)
    client.set_tag(champion, "eval/extractor_version", "older")  # the champion's run is no longer a candidate
    evaluated_run(tmp_path, experiment_id, "dcgan", fid=40.0)
    decision = register(client, experiment_id, params)
    assert decision.alias == "challenger" and "does not beat champion v1" in decision.reason
    assert champion_run(client, params) == champion
    name = params.registry.model_name
    assert client.get_model_version_by_alias(name, "challenger").version == decision.version


def test_guards_keep_collapsed_and_copying_generators_out(store) -> None:
    tmp_path, params, experiment_id, client = store
    guards = registry_settings(min_mode_entropy=0.8, min_memorisation_ratio=0.5)
    evaluated_run(tmp_path, experiment_id, "mlp_gan", fid=5.0, mode_entropy=0.1)
    evaluated_run(tmp_path, experiment_id, "dcgan", fid=6.0, memorisation_ratio=0.2)
    runs = client.search_runs([experiment_id])
    with pytest.raises(registry.RegistryError) as refused:
        registry.register_best(client, runs, guards, EXTRACTOR)
    assert "mode entropy 0.100 < 0.8 (collapsed)" in str(refused.value)
    assert "memorisation ratio 0.200 < 0.5" in str(refused.value)


def test_a_run_cut_short_is_never_registered_however_good(store) -> None:
    """The wall-clock safety cap cut it: its figures say nothing about the settings, so it stays out."""
    tmp_path, params, experiment_id, client = store
    complete = evaluated_run(tmp_path, experiment_id, "dcgan", fid=40.0)
    evaluated_run(tmp_path, experiment_id, "cgan", fid=5.0, stopped_by="time cap")
    decision = register(client, experiment_id, params)
    assert decision.candidate.run_id == complete and champion_run(client, params) == complete
    runs = [r for r in client.search_runs([experiment_id]) if r.data.tags["variant"] == "cgan"]
    with pytest.raises(registry.RegistryError, match=r"cut short \(time cap at step 854/1500\)"):
        registry.register_best(client, runs, params.registry, EXTRACTOR)


@pytest.mark.parametrize("while_a", ["checks its version", "writes the alias"])
def test_two_registrations_at_once_leave_the_champion_on_the_better(store, monkeypatch, while_a) -> None:
    """Two pipelines register on one store at the same time: B (the better generator) registers from
    start to end while A (the worse) is between two steps, after registering its version (before checking
    it), or just before writing the alias (A decided against the store as it was before B, and writes
    last). The champion ends on B, A is the challenger and says why, and no version is lost."""
    tmp_path, params, experiment_id, client = store
    cfg, name = params.registry, params.registry.model_name
    worse = evaluated_run(tmp_path, experiment_id, "mlp_gan", fid=30.0)
    better = evaluated_run(tmp_path, experiment_id, "dcgan", fid=20.0)
    runs = {run.info.run_id: run for run in client.search_runs([experiment_id])}
    b_started, b_decisions = [], []

    def b_registers() -> None:
        if not b_started:
            b_started.append(True)
            b_decisions.append(registry.register_best(client, [runs[better]], cfg, EXTRACTOR))

    if while_a == "checks its version":
        check = registry.check_generates
        monkeypatch.setattr(registry, "check_generates", lambda uri: (b_registers(), check(uri)))
    else:
        set_alias = client.set_registered_model_alias

        def b_first(model: str, alias: str, version: str) -> None:
            b_registers()
            set_alias(model, alias, version)

        monkeypatch.setattr(client, "set_registered_model_alias", b_first)
    a = registry.register_best(client, [runs[worse]], cfg, EXTRACTOR)
    (b,) = b_decisions
    assert b.alias == "champion" and champion_run(client, params) == better
    assert (
        a.alias == "challenger"
        and "which claimed it too (registered at the same time), is better" in a.reason
    )
    assert client.get_model_version_by_alias(name, "challenger").run_id == worse
    assert a.reason in client.get_model_version(name, a.version).description, "the card gives the decision"
    versions = client.search_model_versions(f"name = '{name}'")
    assert sorted(v.run_id for v in versions) == sorted([worse, better]), "no version lost, none twice"


def test_the_champion_generates_in_a_fresh_process(store) -> None:
    tmp_path, params, experiment_id, client = store
    evaluated_run(tmp_path, experiment_id, "dcgan", fid=10.0)
    register(client, experiment_id, params)
    script = (
        "import json, mlflow, numpy as np, pandas as pd\n"
        f"mlflow.set_tracking_uri({mlflow.get_tracking_uri()!r})\n"
        "model = mlflow.pyfunc.load_model('models:/mnist-generator@champion')\n"
        "images = model.predict(pd.DataFrame({'seed': [1, 2, 3]}))\n"
        "again = model.predict(pd.DataFrame({'seed': [1]}))\n"
        "print(images.shape, images.dtype, float(images.min()) >= 0, float(images.max()) <= 1,\n"
        "      np.array_equal(again[0], images[0]))\n"
        "small = model.predict(pd.DataFrame({'seed': [1, 2, 3]}), params={'pixels': 'uint8'})\n"
        "print(small.dtype, np.array_equal(small, np.rint(images * 255)))\n"
        "bad = {'label': pd.DataFrame({'seed': [0, 1], 'label': [3, 12]}),\n"
        "       'seed': pd.DataFrame({'seed': [5, -1]}), 'rows': pd.DataFrame({'seed': range(1001)}),\n"
        "       'fraction': pd.DataFrame({'seed': [1.5]}), 'flag': pd.DataFrame({'seed': [True]}),\n"
        "       'unconditional': pd.DataFrame({'seed': [0, 1], 'label': [3, 4]})}\n"
        "from mlflow.models import validate_serving_input\n"
        "from mlflow.models.utils import load_serving_example\n"
        "example = load_serving_example('models:/mnist-generator@champion')\n"
        "shown = validate_serving_input('models:/mnist-generator@champion', example)\n"
        "print('example', json.loads(example)['dataframe_split']['columns'], np.shape(shown))\n"
        "for name, frame in [*bad.items(), ('pixels', pd.DataFrame({'seed': [0]}))]:\n"
        "    try:\n"
        "        model.predict(frame, params={'pixels': 'gray'} if name == 'pixels' else None)\n"
        "    except mlflow.exceptions.MlflowException as err:\n"
        "        print(name, err.error_code, err.message)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    printed = done.stdout.strip().splitlines()
    assert printed[-10] == "(3, 28, 28) float32 True True True", "same seed, same image"
    assert printed[-9] == "uint8 True", "pixels='uint8': the same images in 0..255"
    # The stored example of a request is one this (unconditional) model answers: seeds, no label.
    assert printed[-8] == "example ['seed'] (4, 28, 28)", printed
    refusals = {line.split()[0]: line for line in printed[-7:]}
    assert "`label` 12 in row 1: it must be 0..9" in refusals["label"], printed
    assert "`seed` -1 in row 1: it must be an integer of at least 0" in refusals["seed"], printed
    assert "1001 rows in one request; at most 1000" in refusals["rows"], printed
    assert "pixels='gray' is not a pixel format; use one of float, uint8" in refusals["pixels"], printed
    assert "`label` given, but this model is not class-conditional" in refusals["unconditional"], printed
    for name in ("fraction", "flag"):  # never read as seed 1
        assert "`seed` must be an integer in every row" in refusals[name], printed
    assert all(" INVALID_PARAMETER_VALUE " in line for line in refusals.values()), printed


# `tracking.download` in a process whose file-size limit (a stand-in for a full disk) is below the size
# of a generator, asked for the model and for an artifact the run does not have.
COPIED_UNDER_A_LIMIT = """
import resource, sys
import mlflow
from mnistgen import tracking
mlflow.set_tracking_uri(sys.argv[1])
resource.setrlimit(resource.RLIMIT_FSIZE, (50_000, 50_000))
for path in ("model", "nothing"):
    try:
        tracking.download(sys.argv[2], path, sys.argv[3])
    except tracking.TrackingError as err:
        print(str(err).replace("\\n", " | "))
"""


def test_an_artifact_that_cannot_be_copied_out_of_the_store_is_named_with_the_cause(store) -> None:
    tmp_path, _, experiment_id, _ = store
    run_id = evaluated_run(tmp_path, experiment_id, "dcgan", fid=10.0)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    done = subprocess.run(
        [sys.executable, "-c", COPIED_UNDER_A_LIMIT, mlflow.get_tracking_uri(), run_id, str(scratch)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    too_large, missing = done.stdout.strip().splitlines()
    assert f"'model' of run {run_id} could not be copied out of the MLflow store into {scratch}" in too_large
    assert "a file-size limit of 50,000 bytes" in too_large and "raise the file-size limit" in too_large
    assert f"run {run_id} has no artifact 'nothing'. Fix: train the run's variant again" in missing


def test_a_registration_that_failed_after_registering_takes_its_version_over(store, monkeypatch) -> None:
    """A retry (Prefect's, or the user's) after the store failed between `register_model` and the alias
    neither registers the run twice nor leaves it without its alias."""
    tmp_path, params, experiment_id, client = store
    run_id = evaluated_run(tmp_path, experiment_id, "mlp_gan", fid=30.0)
    set_alias = client.set_registered_model_alias

    def store_down(*args, **kwargs):
        raise mlflow.exceptions.MlflowException("the store went away")

    monkeypatch.setattr(client, "set_registered_model_alias", store_down)
    with pytest.raises(mlflow.exceptions.MlflowException):
        register(client, experiment_id, params)
    monkeypatch.setattr(client, "set_registered_model_alias", set_alias)
    client.log_metric(run_id, "eval/fid", 25.0)  # evaluated again before the retry: the version says so
    decision = register(client, experiment_id, params)
    name = params.registry.model_name
    (version,) = client.search_model_versions(f"name = '{name}'")
    assert decision.version == version.version and decision.alias == "champion"
    assert champion_run(client, params) == run_id and version.tags["decision"] == decision.reason
    assert version.tags["score"] == "25.0" and version.tags["extractor_version"] == EXTRACTOR
