"""The staleness rule read from dvc.yaml: which params and deps a stage has, their values and hashes."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from helpers.paths import REPO

from mnistgen import lineage
from mnistgen.config import ConfigError

RAW = yaml.safe_load((REPO / "params.yaml").read_text())


def test_a_foreach_stage_lists_its_item_and_profile_params_and_deps() -> None:
    inputs = lineage.stage_inputs(REPO, "train", "smoke", "cgan")
    assert inputs.params == (
        "profile",
        "train",
        "variants.cgan",
        "profiles.smoke.train",
        "profiles.smoke.variants.cgan",
    )
    assert "src/mnistgen/models/cgan.py" in inputs.deps and "src/mnistgen/training" in inputs.deps
    assert "runs/cgan/model" in inputs.outs


def test_param_values_are_the_written_ones_with_the_profile_in_use() -> None:
    values = lineage.param_values(RAW, ("profile", "variants.cgan", "profiles.cpu.variants.cgan"), "smoke")
    assert values["profile"] == "smoke"  # --profile beats the `profile:` key, as the run was trained
    assert values["variants.cgan"] == RAW["variants"]["cgan"]
    written = {"kernel": 4, "projection_rank": 128, "optimizer": {"lr": 0.0008, "beta_1": 0.0}}  # unmerged
    assert values["profiles.cpu.variants.cgan"]["discriminator"] == written
    with pytest.raises(ConfigError, match="params.yaml has no 'variants.gan9', which dvc.yaml tracks"):
        lineage.param_values(RAW, ("variants.gan9",), "cpu")


def test_folder_hashes_follow_content_and_ignore_byte_code(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "a.py").write_text("x = 1\n")
    before = lineage.content_hash(tmp_path / "pkg")
    (tmp_path / "pkg" / "__pycache__").mkdir()
    (tmp_path / "pkg" / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"\x00compiled")
    assert lineage.content_hash(tmp_path / "pkg") == before, "byte code is not part of the code"
    (tmp_path / "pkg" / "a.py").write_text("x = 2\n")
    assert lineage.content_hash(tmp_path / "pkg") != before
    assert lineage.content_hash(tmp_path / "missing") == "missing"
    assert {"__pycache__/", "*.pyc"} <= set((REPO / ".dvcignore").read_text().split()), "DVC ignores them too"


def test_changes_name_what_differs() -> None:
    old = {"params": {"train": {"seed": 1}, "variants.cgan": {}}, "deps": {"src/x.py": "a"}, "seed": 1}
    new = {"params": {"train": {"seed": 1}, "variants.cgan": {"z": 2}}, "deps": {"src/x.py": "b"}, "seed": 7}
    assert lineage.changes(old, new) == ["src/x.py", "variants.cgan", "seed"]
    assert lineage.changes(old, old) == []


def test_a_project_without_a_source_tree_hashes_the_installed_package(tmp_path: Path) -> None:
    (tmp_path / "dvc.yaml").write_text((REPO / "dvc.yaml").read_text())
    beside = lineage.fingerprint(tmp_path, RAW, "train", "cpu", "dcgan")
    inside = lineage.fingerprint(REPO, RAW, "train", "cpu", "dcgan")
    assert beside["deps"]["src/mnistgen/training"] == inside["deps"]["src/mnistgen/training"] != "missing"
    assert lineage.digest(beside) != lineage.digest({**beside, "seed": 1})


def test_every_dvc_parameter_and_code_dependency_of_training_exists() -> None:
    """A dep that does not exist would hash as "missing" forever: nothing would ever be stale."""
    for variant in RAW["train"]["variants"]:
        inputs = lineage.stage_inputs(REPO, "train", "cpu", variant)
        assert all((REPO / dep).exists() for dep in inputs.deps if dep.startswith("src/")), variant
        lineage.param_values(RAW, inputs.params, "cpu")


def test_training_deps_cover_the_model_modules_each_variant_imports() -> None:
    """Editing a module a variant builds on must make that variant stale, for DVC and the pipeline alike."""
    import ast

    for variant in RAW["train"]["variants"]:
        tree = ast.parse((REPO / "src" / "mnistgen" / "models" / f"{variant}.py").read_text())
        imported = {
            node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
        }
        imported |= {
            f"{node.module}.{alias.name}"
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module == "mnistgen.models"
            for alias in node.names
        }
        needed = {
            f"src/mnistgen/models/{m.split('.')[-1]}.py" for m in imported if m.startswith("mnistgen.models.")
        }
        deps = set(lineage.stage_inputs(REPO, "train", "cpu", variant).deps)
        assert needed <= deps, f"{variant} builds on {sorted(needed - deps)}, which dvc.yaml does not list"
