"""`dvc.yaml`: consistent with params.yaml; `dvc repro` end to end in a temporary copy of the repository."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from helpers.cli import cli_env
from helpers.mirror import TRAINING_ROWS, publish_synthetic_mnist
from helpers.paths import REPO
from helpers.projects import copy_repository, set_params, snapshot, stages_run

DVC_YAML = yaml.safe_load((REPO / "dvc.yaml").read_text())
PARAMS = yaml.safe_load((REPO / "params.yaml").read_text())


def _lookup(params: dict, dotted: str) -> bool:
    node = params
    for key in dotted.split("."):
        if not isinstance(node, dict) or key not in node:
            return False
        node = node[key]
    return True


@pytest.mark.parametrize("profile", sorted(PARAMS["profiles"]))
def test_every_profile_defines_every_parameter_a_stage_tracks(profile: str) -> None:
    """DVC refuses a tracked parameter that is missing, so each profile must name each tracked section."""
    missing = []
    for name, stage in DVC_YAML["stages"].items():
        items = PARAMS["train"]["variants"] if "foreach" in stage else [None]
        body = stage.get("do", stage)
        for item in items:
            for entry in body.get("params", []):
                dotted = entry.replace("${profile}", profile).replace("${item}", str(item))
                if not _lookup(PARAMS, dotted):
                    missing.append(f"{name}: {dotted}")
    assert not missing, f"params.yaml lacks: {missing}"


def test_the_training_stage_and_the_plots_cover_every_variant() -> None:
    assert DVC_YAML["stages"]["train"]["foreach"] == "${train.variants}"
    plotted = {next(iter(plot)).split("/")[1] for plot in DVC_YAML["plots"]}
    assert plotted == set(PARAMS["train"]["variants"])


# ---------------------------------------------------------------- dvc repro end to end


def _dvc_env() -> dict[str, str]:
    env = cli_env()
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"  # `mnistgen` in the stages
    return env


def _run(repo: Path, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(args, cwd=repo, capture_output=True, text=True, env=_dvc_env(), timeout=timeout)
    assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.mark.slow
def test_dvc_repro_rebuilds_everything_then_only_what_changed(tmp_path: Path) -> None:
    repo = tmp_path / "clone"
    copy_repository(repo)
    files = publish_synthetic_mnist(repo / "data" / "mnist", TRAINING_ROWS)  # what `dvc pull` would restore
    # One variant of each kind the stages treat apart (a GAN, the toy, a conditional one): every variant's
    # own training is tested in test_training.py; here the DVC graph is (about 3 minutes saved).
    variants = ["mlp_gan", "toy_gan_1d", "cgan"]
    set_params(repo, {"profile": "smoke", "data": {"files": files}, "train": {"variants": variants}})
    dvc = (sys.executable, "-m", "dvc")
    _run(repo, "git", "init", "-q")
    _run(repo, *dvc, "commit", "-f", "-q", "data.dvc")  # data.dvc tracks data/mnist
    _run(repo, "git", "add", "-A")
    _run(repo, "git", "-c", "user.email=t@mnistgen.invalid", "-c", "user.name=t", "commit", "-qm", "clone")

    first = _run(repo, *dvc, "repro")
    assert stages_run(first.stdout) == {
        "classifier",
        "evaluate",
        "register",
        *(f"train@{v}" for v in variants),
    }

    second = _run(repo, *dvc, "repro")
    assert stages_run(second.stdout) == set(), second.stdout

    metrics = json.loads(_run(repo, *dvc, "metrics", "show", "--json").stdout)
    workspace = metrics[""]["data"]  # "" is the workspace
    image_variants = [v for v in variants if v != "toy_gan_1d"]
    assert all("fid" in workspace[f"reports/metrics/{v}.json"]["data"] for v in image_variants)
    assert "wasserstein1" in workspace["reports/metrics/toy_gan_1d.json"]["data"]
    assert "fid" in workspace["reports/metrics/floor.json"]["data"]
    assert all("g_loss" in workspace[f"runs/{v}/metrics.json"]["data"] for v in variants if "gan" in v)
    registration = json.loads((repo / "reports" / "registration.json").read_text())
    assert registration["alias"] == "champion" and registration["variant"] in image_variants

    plots = _run(repo, *dvc, "plots", "show", "-o", str(tmp_path / "plots"))
    assert (tmp_path / "plots" / "index.html").is_file(), plots.stdout

    # One variant's setting changed: only its training is stale (the stages after it follow from its
    # outputs, as the trial below shows by running them).
    _run(repo, "git", "add", "-A")
    _run(repo, "git", "-c", "user.email=t@mnistgen.invalid", "-c", "user.name=t", "commit", "-qm", "baseline")

    # A setting mnistgen refuses: DVC runs the stage, mnistgen stops before any work, and the previous
    # run, its figures and the reports are all still there (DVC deletes no output: `persist: true`).
    before = {folder: snapshot(repo / folder) for folder in ("runs", "reports", "models")}
    set_params(repo, {"profiles": {"smoke": {"variants": {"mlp_gan": {"batch_size": 0}}}}})
    refused = subprocess.run(
        [*dvc, "repro", "train@mlp_gan"], cwd=repo, capture_output=True, text=True, env=_dvc_env()
    )
    assert refused.returncode != 0 and "variants.mlp_gan.batch_size is 0" in refused.stderr, refused.stderr
    assert {folder: snapshot(repo / folder) for folder in before} == before, "an output was touched"
    _run(repo, "git", "checkout", "--", "params.yaml")
    assert stages_run(_run(repo, *dvc, "repro").stdout) == set(), "the kept outputs are current"

    # The same refused in a DVC experiment: `-S` wrote the value into params.yaml, which the error says.
    trial = subprocess.run(
        [*dvc, "exp", "run", "-S", "++profiles.smoke.variants.mlp_gan.batch_size=0"],
        cwd=repo,
        capture_output=True,
        text=True,
        env=_dvc_env(),
    )
    assert trial.returncode != 0 and "`git checkout params.yaml` restores it" in trial.stderr, trial.stderr
    _run(repo, "git", "checkout", "--", "params.yaml")

    # The data deleted: DVC stops at the missing data source (data.dvc tracks data/mnist itself) and
    # touches neither data.dvc nor any output; `dvc checkout` puts the data back.
    recorded = (repo / "data.dvc").read_text()
    shutil.rmtree(repo / "data" / "mnist")
    gone = subprocess.run([*dvc, "repro"], cwd=repo, capture_output=True, text=True, env=_dvc_env())
    assert gone.returncode != 0 and "data/mnist" in gone.stderr, gone.stderr
    assert (repo / "data.dvc").read_text() == recorded, "DVC recorded the deleted data"
    assert {folder: snapshot(repo / folder) for folder in before} == before, "an output was touched"
    _run(repo, *dvc, "checkout", "-q", "data.dvc")
    assert stages_run(_run(repo, *dvc, "repro").stdout) == set(), "the data and every output are as before"

    # A data file deleted in place: DVC records the folder as it finds it (a data source changed), and
    # mnistgen then names the way back, which restores the data and its record.
    (repo / "data" / "mnist" / "t10k-labels-idx1-ubyte").unlink()
    changed = subprocess.run([*dvc, "repro"], cwd=repo, capture_output=True, text=True, env=_dvc_env())
    assert changed.returncode != 0, changed.stdout + changed.stderr
    told = subprocess.run(
        [sys.executable, "-m", "mnistgen", "train", "mlp_gan", "--project-dir", str(repo), "--no-progress"],
        capture_output=True,
        text=True,
        env=_dvc_env(),
    )
    assert told.returncode == 1 and "data.dvc now records 3 files" in told.stderr, told.stderr
    assert "Fix: run `git checkout data.dvc && dvc checkout data.dvc`" in told.stderr, told.stderr
    assert {folder: snapshot(repo / folder) for folder in before} == before, "an output was touched"
    _run(repo, "git", "checkout", "--", "data.dvc")
    _run(repo, *dvc, "checkout", "-q", "data.dvc")
    assert (repo / "data.dvc").read_text() == recorded
    assert stages_run(_run(repo, *dvc, "repro").stdout) == set(), "the data and every output are as before"

    set_params(repo, {"profiles": {"smoke": {"variants": {"toy_gan_1d": {"epochs": 3}}}}})
    status = _run(repo, *dvc, "status", "--json")
    assert set(json.loads(status.stdout)) == {"train@toy_gan_1d"}
    _run(repo, "git", "checkout", "--", "params.yaml")

    # A tuning trial, the DVC way: only its variant retrains, the others' figures are reused, nothing is
    # registered, and the trial is listed by `dvc exp show` and logged in the tuning experiment.
    trial = _run(repo, *dvc, "exp", "run", "-n", "mlp-s5", "-S", "++profiles.smoke.variants.mlp_gan.seed=5")
    assert stages_run(trial.stdout) == {"train@mlp_gan", "evaluate", "register"}, trial.stdout
    for unchanged in ("toy_gan_1d", "real data (floor)"):
        assert f"{unchanged}: measured before under the same evaluation; scores reused" in (
            trial.stdout + trial.stderr
        )
    assert "skipped" in json.loads((repo / "reports" / "registration.json").read_text())
    shown = json.loads(_run(repo, *dvc, "exp", "show", "--json").stdout)
    trials = [rev for base in shown for exp in base.get("experiments") or [] for rev in exp["revs"]]
    assert [rev["name"] for rev in trials] == ["mlp-s5"]
    trial_metrics = trials[0]["data"]["metrics"]["reports/metrics/mlp_gan.json"]["data"]
    assert trial_metrics["fid"] != workspace["reports/metrics/mlp_gan.json"]["data"]["fid"], "another seed"

    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{repo}/mlflow/mlflow.db")
    tuning = client.get_experiment_by_name(PARAMS["mlflow"]["tuning_experiment"])
    (run,) = client.search_runs([tuning.experiment_id], filter_string="tags.dvc_experiment = 'mlp-s5'")
    assert (
        run.data.tags["variant"] == "mlp_gan"
        and run.data.tags["seed"] == "5"
        and "eval/fid" in run.data.metrics
    )
