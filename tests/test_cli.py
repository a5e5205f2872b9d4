"""`mnistgen data` as a user runs it: mirrors from flags or the environment, clear failures."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.cli import cli_env
from helpers.mirror import Mirror
from helpers.paths import REPO
from helpers.projects import snapshot
from typer.testing import CliRunner

from mnistgen import locks
from mnistgen.cli import app


def run(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(app, list(args), env=env)


def test_data_command_downloads_validates_and_versions(dvc_project: Path, mirror: Mirror, serve) -> None:
    result = run(
        "data", "--project-dir", str(dvc_project), "--mirror", serve(mirror.folder).url, "--no-progress"
    )
    assert result.exit_code == 0, result.output
    assert "validation passed" in result.output
    assert "data.dvc updated" in result.output
    assert (dvc_project / "data.dvc").is_file()
    assert (dvc_project / "reports" / "data_docs" / "index.html").is_file()


def test_mirrors_environment_variable_is_honoured(dvc_project: Path, mirror: Mirror, dead_url: str) -> None:
    env = {"MNISTGEN_MIRRORS": f"{dead_url},{mirror.folder}"}
    result = run("data", "--project-dir", str(dvc_project), "--no-progress", "--no-push", env=env)
    assert result.exit_code == 0, result.output
    assert "data.dvc updated" in result.output


def test_a_second_data_stage_waits_for_the_first(dvc_project: Path, mirror: Mirror) -> None:
    """Two `mnistgen data` at once share the staging folder: the second waits for the first, then finds
    the files in place (here the first is this test, holding the project's data lock)."""
    command = [sys.executable, "-m", "mnistgen", "data", "--project-dir", str(dvc_project), "--no-progress"]
    with locks.held(dvc_project, "data"):
        second = subprocess.Popen(
            [*command, "--no-push", "--mirror", str(mirror.folder)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=cli_env(),
        )
        waiting = second.stdout.readline()
        while waiting and "waiting for process" not in waiting:
            waiting = second.stdout.readline()
        assert f"waiting for process {os.getpid()} to end its data in {dvc_project}" in waiting, waiting
        assert second.poll() is None and not (dvc_project / "data").exists()
    rest, _ = second.communicate(timeout=300)
    assert second.returncode == 0 and "validation passed" in rest, rest


def test_a_password_in_a_mirror_url_is_never_printed(
    dvc_project: Path, mirror: Mirror, dead_url: str
) -> None:
    with_password = dead_url.replace("http://", "http://reader:s3cret-pw@")
    env = {"MNISTGEN_MIRRORS": f"{with_password},{mirror.folder}"}
    result = run("data", "--project-dir", str(dvc_project), "--no-progress", "--no-push", env=env)
    assert result.exit_code == 0, result.output
    assert "mirror http://***@127.0.0.1" in result.output, "the failed mirror is named, without its password"
    assert "s3cret-pw" not in result.output


def test_corrupt_mirror_exits_non_zero_naming_file_and_problem(dvc_project: Path, mirror: Mirror) -> None:
    ok = run("data", "--project-dir", str(dvc_project), "--mirror", str(mirror.folder), "--no-progress")
    assert ok.exit_code == 0, ok.output
    data_before, dvc_before = snapshot(dvc_project / "data"), (dvc_project / "data.dvc").read_text()
    (dvc_project / "data" / "mnist" / "train-labels-idx1-ubyte").unlink()  # must be fetched again
    data_before.pop("mnist/train-labels-idx1-ubyte")
    mirror.corrupt("train_labels", gzip.compress(b"\x00\x00\x08\x01garbage"))

    result = run("data", "--project-dir", str(dvc_project), "--mirror", str(mirror.folder), "--no-progress")
    assert result.exit_code == 1
    assert "error: train-labels-idx1-ubyte: no mirror delivered a valid copy" in result.output
    assert "decompressed size" in result.output
    assert snapshot(dvc_project / "data") == data_before
    assert (dvc_project / "data.dvc").read_text() == dvc_before


def test_outside_a_project_says_where_to_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = run("data")
    assert result.exit_code == 1
    assert "no params.yaml" in result.output and "--project-dir" in result.output


def test_train_names_the_known_variants_and_profiles(dvc_project: Path) -> None:
    unknown = run("train", "nope", "--project-dir", str(dvc_project))
    assert (
        unknown.exit_code == 1 and "unknown variant 'nope'; choose one of: mlp_gan, dcgan" in unknown.output
    )
    bad_profile = run("train", "dcgan", "--profile", "huge", "--project-dir", str(dvc_project))
    assert bad_profile.exit_code == 1 and "unknown profile 'huge'" in bad_profile.output


def test_train_without_data_says_to_fetch_it_first(dvc_project: Path) -> None:
    (dvc_project / "dvc.yaml").write_text((REPO / "dvc.yaml").read_text())
    result = run("train", "dcgan", "--project-dir", str(dvc_project))
    assert result.exit_code == 1
    assert "MNIST is not in" in result.output and "run `mnistgen data`" in result.output


@pytest.mark.slow  # two trainings in child processes: a third of the fast lane's time on 2 slow cores
def test_tensorflow_start_up_notices_are_held_back_unless_verbose(tmp_path: Path) -> None:
    """TensorFlow writes its start-up notices straight to file descriptor 2; the CLI holds them back while
    TensorFlow is imported, and lets everything else through."""
    import subprocess
    import sys

    from helpers.cli import cli_env
    from helpers.projects import make_training_project

    project = make_training_project(tmp_path / "project")

    def train(*flags: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "mnistgen", *flags, "train", "toy_gan_1d", "--profile", "smoke"]
        options = ["--max-steps", "1", "--no-progress", "--project-dir", str(project)]
        # Every notice on: at the CLI's default level (2) a CPU without oneDNN's kernels (AMD EPYC) prints
        # none at all, and the check below could not fail; the filter must hold them back at any level.
        env = {**cli_env(), "TF_CPP_MIN_LOG_LEVEL": "0"}
        return subprocess.run(command + options, capture_output=True, text=True, timeout=300, env=env)

    quiet, verbose = train(), train("--verbose")
    for done in (quiet, verbose):
        assert done.returncode == 0 and "step limit at step 1/" in done.stdout, done.stderr[-2000:]
    assert "absl::InitializeLog" in verbose.stderr  # what is held back, so the check below can fail
    for notice in ("absl::InitializeLog", "oneDNN", "rebuild TensorFlow"):
        assert notice not in quiet.stderr, quiet.stderr
    assert "MLflow run" in quiet.stderr, "the command's own log lines still come through"


def test_a_bad_option_is_refused_before_tensorflow_is_imported(dvc_project: Path) -> None:
    """The verbs import TensorFlow late, so a mistake is refused before the seconds of that import."""
    import subprocess
    import sys

    (dvc_project / "dvc.yaml").write_text((REPO / "dvc.yaml").read_text())
    mistakes = (
        ["train", "dcgan", "--max-steps", "-5"],
        ["train", "dcgan", "--set", "variants.dcgan.batch_size=abc"],
        ["sample", "--seed", "-1"],
    )
    for args in mistakes:
        command = [sys.executable, "-X", "importtime", "-m", "mnistgen", *args]
        command += ["--project-dir", str(dvc_project)]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert done.returncode == 1 and "error:" in done.stderr, done.stderr[-2000:]
        timed = [line for line in done.stderr.splitlines() if line.startswith("import time:")]
        imported = {line.split("|")[-1].strip() for line in timed}
        assert "mnistgen.cli" in imported and "tensorflow" not in imported, args


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["--seed", "-1"], "error: --seed is -1; it must be a whole number"),
        (["--variants", ""], "error: --variants names no variant"),
        (["--variants", "mlp_gan,nope"], "error: unknown variants nope; params.yaml defines mlp_gan, "),
        (
            ["--mirror", "/srv/mnist,copy"],
            "error: --mirror '/srv/mnist,copy': a mirror's URL or folder cannot",
        ),
    ],
    ids=["seed", "no-variants", "unknown-variant", "comma"],
)
def test_pipeline_options_are_refused_before_any_step(dvc_project: Path, options, expected: str) -> None:
    """Refused before Prefect starts its server or the first step runs: nothing is fetched or written.
    In a process of its own, as a user runs it (the verb sets up Prefect's logging for the process)."""
    import subprocess
    import sys

    before = snapshot(dvc_project)
    command = [sys.executable, "-m", "mnistgen", "pipeline", "--project-dir", str(dvc_project), *options]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=dvc_project)
    assert done.returncode == 1 and expected in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert snapshot(dvc_project) == before
