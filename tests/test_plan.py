"""A run before it starts: its step budget, what is on disk for it, the lock, and publishing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from conftest import REPO, write_project

from mnistgen.config import ConfigError, deep_merge
from mnistgen.training import plan as plan_module
from mnistgen.training.plan import (
    COMPLETED,
    TIME_CAP,
    Budget,
    RunBusy,
    TrainRequest,
    budget,
    exclusive,
    plan_run,
    previous_run,
    publish,
    write_record,
)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return write_project(
        tmp_path / "project", yaml.safe_load((REPO / "params.yaml").read_text()), stages=True
    )


def _plan(project: Path, **request: object) -> plan_module.RunPlan:
    return plan_run(TrainRequest(project, "dcgan", "smoke", **request))


def _run_folder(folder: Path, fingerprint: dict, checkpoint: bool = True, **record: object) -> None:
    """What a run leaves: its record, a checkpoint, and the outputs dvc.yaml lists."""
    for name in ("model", "figures", "checkpoints"):
        (folder / name).mkdir(parents=True, exist_ok=True)
    if checkpoint:
        (folder / "checkpoints" / "ckpt-10.index").write_text("")
    (folder / "metrics.json").write_text("{}")
    write_record(folder, {"run_id": "r1", "fingerprint": fingerprint, "total_steps": 16, **record})


def test_budgets_are_steps_and_an_impossible_epoch_is_refused() -> None:
    assert budget("x", {"epochs": 2, "steps_per_epoch": None}, 64, 1000) == Budget(2, 15, 64)
    assert budget("x", {"epochs": 3, "steps_per_epoch": 10}, 64, 1000).total_steps == 30
    assert budget("toy", {"epochs": 2, "steps_per_epoch": 50}, 200, None).total_steps == 100
    with pytest.raises(ConfigError, match="steps_per_epoch is 20, but an epoch of 1000 images has only 15"):
        budget("x", {"epochs": 1, "steps_per_epoch": 20}, 64, 1000)
    with pytest.raises(ConfigError, match="one step takes 640 training images"):
        budget("x", {"epochs": 1, "steps_per_epoch": None}, 640, 100)


def test_the_states_of_what_is_on_disk(project: Path) -> None:
    plan = _plan(project)
    assert previous_run(plan) == ("none", None)

    _run_folder(plan.staging_dir, plan.fingerprint)  # killed mid-way
    assert previous_run(plan)[0] == "interrupted"
    _run_folder(plan.staging_dir, plan.fingerprint, failed="TrainingDiverged: loss nan")
    assert previous_run(plan)[0] == "stale", "a failed run would fail again: not resumed"

    _run_folder(plan.run_dir, plan.fingerprint, stopped_by=COMPLETED)
    assert previous_run(plan)[0] == "finished"
    (plan.run_dir / "figures").rmdir()  # an output dvc.yaml lists is gone: DVC calls it changed too
    assert previous_run(plan)[0] == "stale"

    _run_folder(plan.run_dir, plan.fingerprint, stopped_by=TIME_CAP)
    assert previous_run(plan)[0] == "incomplete", "cut short by the safety cap: finish it, do not reuse it"

    assert previous_run(_plan(project, seed=7))[0] == "stale"
    assert previous_run(_plan(project, overrides=("variants.dcgan.ema_decay=0.9",)))[0] == "stale"


def test_the_fingerprint_follows_what_dvc_tracks_and_nothing_else(tmp_path: Path) -> None:
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    base = _plan(write_project(tmp_path / "a", raw, stages=True)).fingerprint
    edits = {
        "a variant's own setting": {"profiles": {"smoke": {"variants": {"dcgan": {"epochs": 3}}}}},
        "a train key": {"train": {"log_every_steps": 7}},
        "the profile's train key": {"profiles": {"smoke": {"train": {"checkpoint_every_steps": 3}}}},
    }
    for what, edit in edits.items():
        changed = _plan(write_project(tmp_path / what.replace(" ", "_"), deep_merge(raw, edit), stages=True))
        assert changed.fingerprint != base, what
    untouched = {
        "another variant": {"variants": {"cgan": {"z_dim": 64}}},
        "another profile": {"profiles": {"cpu": {"variants": {"dcgan": {"epochs": 9}}}}},
        "evaluation": {"evaluation": {"samples": 5}},
    }
    for what, edit in untouched.items():
        same = _plan(write_project(tmp_path / what.replace(" ", "_"), deep_merge(raw, edit), stages=True))
        assert same.fingerprint == base, what


def test_a_second_training_of_the_same_variant_is_refused(project: Path) -> None:
    plan = _plan(project)
    with exclusive(plan):
        with pytest.raises(RunBusy, match=r"dcgan is already training in .* \(pid \d+\)"):
            with exclusive(plan):
                pass
    with exclusive(plan):  # released at the end
        pass


def test_publishing_replaces_the_last_run_only_when_the_new_one_is_done(project: Path) -> None:
    plan = _plan(project)
    _run_folder(plan.run_dir, {"old": True}, stopped_by=COMPLETED)
    _run_folder(plan.staging_dir, plan.fingerprint, stopped_by=COMPLETED)
    publish(plan)
    assert json.loads((plan.run_dir / "run.json").read_text())["fingerprint"] == plan.fingerprint
    assert not plan.staging_dir.exists() and not any(plan.staging_dir.parent.glob("*.retired"))
