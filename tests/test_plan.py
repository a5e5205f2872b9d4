"""A run before it starts: its step budget, what is on disk for it, the lock, and publishing."""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from helpers.paths import REPO
from helpers.projects import write_project

from mnistgen.config import ConfigError, deep_merge
from mnistgen.folders import swap_in
from mnistgen.training import plan as plan_module
from mnistgen.training.plan import Budget, TrainRequest, budget, plan_run
from mnistgen.training.run_folder import (
    COMPLETED,
    TIME_CAP,
    RunBusy,
    RunRecord,
    exclusive,
    previous_run,
    publish,
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
    RunRecord("r1", fingerprint, "digest", total_steps=16, **record).write(folder)


def test_budgets_are_steps_and_an_impossible_epoch_is_refused() -> None:
    assert budget("x", SimpleNamespace(epochs=2, steps_per_epoch=None), 64, 1000) == Budget(2, 15, 64)
    assert budget("x", SimpleNamespace(epochs=3, steps_per_epoch=10), 64, 1000).total_steps == 30
    assert budget("toy", SimpleNamespace(epochs=2, steps_per_epoch=50), 200, None).total_steps == 100
    with pytest.raises(ConfigError, match="steps_per_epoch is 20, but an epoch of 1000 images has only 15"):
        budget("x", SimpleNamespace(epochs=1, steps_per_epoch=20), 64, 1000)
    with pytest.raises(ConfigError, match="one step takes 640 training images"):
        budget("x", SimpleNamespace(epochs=1, steps_per_epoch=None), 640, 100)


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
    assert not plan.staging_dir.exists() and not any(plan.run_dir.parent.glob(".*"))


def test_publishing_to_a_runs_folder_on_another_filesystem(project: Path, tmp_path: Path) -> None:
    """`train.runs_dir` on its own disk: the run is copied beside the previous one, then swapped in."""
    elsewhere = Path(tempfile.mkdtemp(dir="/dev/shm"))
    try:
        (project / "runs").symlink_to(elsewhere)
        plan = _plan(project)
        assert os.stat(project).st_dev != os.stat(elsewhere).st_dev
        _run_folder(plan.run_dir, {"old": True}, stopped_by=COMPLETED)
        _run_folder(plan.staging_dir, plan.fingerprint, stopped_by=COMPLETED)
        publish(plan)
        published = json.loads((elsewhere / plan.variant / "run.json").read_text())
        assert published["fingerprint"] == plan.fingerprint
        assert not plan.staging_dir.exists() and sorted(p.name for p in elsewhere.iterdir()) == [plan.variant]
    finally:
        shutil.rmtree(elsewhere)


def test_a_failed_swap_puts_the_previous_folder_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target, incoming = tmp_path / "runs" / "cgan", tmp_path / "staging" / "cgan"
    (target / "old").mkdir(parents=True)
    (incoming / "new").mkdir(parents=True)
    rename = Path.replace

    def failing(self: Path, to: Path) -> Path:  # the new folder's move fails (a disk error, a kill)
        if self == incoming:
            raise OSError(errno.EIO, "Input/output error")
        return rename(self, to)

    monkeypatch.setattr(Path, "replace", failing)
    with pytest.raises(OSError, match="Input/output error"):
        swap_in(incoming, target)
    assert (target / "old").is_dir() and (incoming / "new").is_dir()
    assert sorted(p.name for p in target.parent.iterdir()) == ["cgan"]


def test_a_run_record_reads_back_as_written(tmp_path: Path) -> None:
    record = RunRecord("r1", {"seed": 7}, "d1", total_steps=16, step=16, stopped_by=COMPLETED)
    record.write(tmp_path)
    assert RunRecord.read(tmp_path) == record
    written = json.loads((tmp_path / "run.json").read_text())
    assert "failed" not in written and written["stopped_by"] == COMPLETED, "what does not apply is absent"
    (tmp_path / "run.json").write_text('{"run_id": "r1", "fing')  # cut short by a crash
    assert RunRecord.read(tmp_path) is None
    (tmp_path / "run.json").write_text('{"run_id": "r1"}')  # not a run of this project
    assert RunRecord.read(tmp_path) is None
