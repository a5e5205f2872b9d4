"""Bad input and faults, as a careless or hostile user meets them: each gets one `error:` line naming the
problem and the fix (no traceback), and loses nothing (the previous run, its MLflow run and its model stay
as they were; no crash is recorded as FINISHED). Faults use real mechanisms: a file-size limit for a full
disk, a closed port for a dead server, bytes cut off a file on disk. The README's table of cases
("When things go wrong") names these tests."""

from __future__ import annotations

import json
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from helpers.cli import cli_env, run_cli
from helpers.projects import make_training_project

pytestmark = pytest.mark.slow

VARIANT = "mlp_gan"
SECRET = "s3cret-pw"


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project with one finished smoke run of mlp_gan: the run every case must leave alone."""
    project = make_training_project(tmp_path_factory.mktemp("faults") / "project")
    done = run_cli(project, "train", VARIANT, "--profile", "smoke")
    assert done.returncode == 0, done.stderr[-2000:]
    return project


def mnistgen(
    project: Path, *args: str, env: dict[str, str] | None = None, file_limit: int | None = None
) -> subprocess.CompletedProcess[str]:
    """`mnistgen ARGS` like `run_cli`, with extra environment and an optional file-size limit (bytes):
    a disk that fills up at that size, for this process only."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (file_limit, file_limit))

    quiet = ["--no-progress"] if args[0] == "train" else []
    return subprocess.run(
        [sys.executable, "-m", "mnistgen", *args, "--project-dir", str(project), *quiet],
        capture_output=True,
        text=True,
        timeout=300,
        env={**cli_env(), **(env or {})},
        cwd=project,
        preexec_fn=limit if file_limit else None,
    )


def one_error(done: subprocess.CompletedProcess[str], *expected: str) -> str:
    """The command failed with status 1 and one `error:` line (plus its `Fix:`), no traceback; returns it."""
    assert done.returncode == 1, (done.returncode, done.stderr[-3000:])
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, done.stderr[-3000:]
    message = done.stderr[done.stderr.index("error:") :]
    for text in expected:
        assert text in message, message
    return message


def state(project: Path) -> dict:
    """What must not change: the published run's files and every MLflow run's status."""
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{project}/mlflow/mlflow.db")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    return {"files": state_files(project), "runs": {r.info.run_id: r.info.status for r in runs}}


def state_files(project: Path) -> dict[str, bytes]:
    run_dir = project / "runs" / VARIANT
    return {
        p.relative_to(run_dir).as_posix(): p.read_bytes() for p in sorted(run_dir.rglob("*")) if p.is_file()
    }


def no_finished_run_without_a_model(project: Path) -> None:
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{project}/mlflow/mlflow.db")
    for run in client.search_runs([e.experiment_id for e in client.search_experiments()]):
        if run.info.status == "FINISHED" and "variant" in run.data.tags:
            names = {a.path for a in client.list_artifacts(run.info.run_id, "model")}
            assert "model/model_info.json" in names, f"FINISHED run {run.info.run_id} has no model"


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["--set", "variants.mlp_gan.batch_size=abc"], "variants.mlp_gan.batch_size is 'abc'"),
        (["--set", "variants.mlp_gan.batch_size=0"], "it must be a whole number of at least 1"),
        (
            ["--set", "variants.mlp_gan.generator.optimizer.lr=-0.1"],
            "variants.mlp_gan.generator.optimizer.lr is -0.1",
        ),
        (["--set", "variants.mlp_gan.ema_decay=2"], "variants.mlp_gan.ema_decay is 2"),
        (["--set", "variants.mlp_gan.noise=cauchy"], "variants.mlp_gan.noise is 'cauchy'"),
        (["--set", "variants.mlp_gan.epochs=0"], "variants.mlp_gan.epochs is 0"),
        (["--set", "variants.mlp_gan.batch_size=100000000"], "Fix: lower batch_size"),
        (["--set", "variants.mlp_gan.ema_decy=0.9"], "variants.mlp_gan.ema_decy is not a setting"),
        (["--max-steps", "0"], "--max-steps is 0"),
        (["--max-steps", "-5"], "--max-steps is -5"),
        (["--max-minutes", "-1"], "--max-minutes is -1.0"),
        (["--seed", "-1"], "--seed is -1"),
        (["--seed", str(10**20)], "--seed is 100000000000000000000"),
        (["--set", "train.seed=[1"], "the --set value '[1' is not valid YAML"),
        (["--set", "train.seed=!!python/object/apply:os.system [touch planted]"], "is not valid YAML"),
        (["--set", "variants.mlp_gan=5"], "variants.mlp_gan is a section, not a setting"),
        (["--set", "train=[]"], "train is a section, not a setting"),
        (["--set", "variants.mlp_gan.batch_size=64.0"], "variants.mlp_gan.batch_size is 64.0"),
        (["--set", "variants.mlp_gan.z_dim=1e2"], "variants.mlp_gan.z_dim is 100.0"),
        (["--set", "variants.mlp_gan.generator.init=glorot_unifrom"], "init is 'glorot_unifrom'"),
        (["--set", "variants.conv_gan.generator.activation=relux"], "activation is 'relux'"),
        (["--set", "variants.dcgan.generator.filters=[]"], "variants.dcgan.generator.filters is []"),
    ],
)
def test_a_bad_setting_or_option_changes_nothing(trained: Path, options: list[str], expected: str) -> None:
    before = state(trained)
    one_error(mnistgen(trained, "train", VARIANT, "--profile", "smoke", *options), expected, "Fix:")
    assert state(trained) == before
    assert not (trained / "planted").exists(), "no code from a setting ran"


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda p: p.pop("mlflow"), "no 'mlflow' section"),
        (lambda p: p.update(trian={}), "unknown key 'trian'"),
        (lambda p: p["train"].update(seed="abc"), "train.seed is 'abc'"),
        (
            lambda p: p["profiles"]["smoke"]["variants"]["mlp_gan"].update(ema_decy=0.9),
            "sets variants.mlp_gan.ema_decy",
        ),
    ],
    ids=["missing-section", "unknown-section", "wrong-type", "profile-typo"],
)
def test_a_broken_params_file_changes_nothing(trained: Path, edit, expected: str) -> None:
    refused_with_params(trained, edited(trained, edit), ["train", VARIANT, "--profile", "smoke"], expected)


def edited(project: Path, edit) -> str:
    """The project's params.yaml after `edit` (a function that changes the parsed settings in place)."""
    params = yaml.safe_load((project / "params.yaml").read_text())
    edit(params)
    return yaml.safe_dump(params, sort_keys=False)


def refused_with_params(project: Path, text: str, args: list[str], expected: str) -> None:
    """`mnistgen ARGS` with params.yaml holding `text`: one error line naming `expected` and the fix, and
    nothing of the project changed; params.yaml is restored afterwards."""
    path = project / "params.yaml"
    original = path.read_text()
    before = state(project)
    path.write_text(text)
    try:
        one_error(mnistgen(project, *args), expected, "Fix:")
    finally:
        path.write_text(original)
    assert state(project) == before


@pytest.mark.parametrize(
    ("verb", "edit", "expected"),
    [
        ("register", lambda p: p["registry"].update(direction="Lower"), "registry.direction is 'Lower'"),
        ("register", lambda p: p["registry"].update(direction="higher"), "but fid is better lower"),
        (
            "register",
            lambda p: p["profiles"]["smoke"]["registry"].update(min_mode_entropy=float("nan")),
            "min_mode_entropy is nan",
        ),
        ("register", lambda p: p["registry"].update(model_name="a' or name = 'b"), "registry.model_name is"),
        ("classifier", lambda p: p["classifier"].update(batch_size=0), "classifier.batch_size is 0"),
        (
            "evaluate",
            lambda p: p["profiles"]["smoke"]["evaluation"].update(samples=1),
            "evaluation.samples is 1",
        ),
        ("data", lambda p: p["data"]["download"].update(attempts=0), "data.download.attempts is 0"),
        (
            "data",
            lambda p: p["data"].update(dir="/tmp/mnist-elsewhere"),
            "data.dir is '/tmp/mnist-elsewhere'",
        ),
        ("train", lambda p: p["train"].update(variants=[]), "train.variants is []"),
        (
            "train",
            lambda p: p["variants"]["mlp_gan"].update(ema_decy=0.9),
            "variants.mlp_gan.ema_decy is not a setting mnistgen reads (did you mean "
            "variants.mlp_gan.ema_decay?)",
        ),
        ("train", lambda p: p["train"].update(max_minute=3), "(did you mean train.max_minutes?)"),
        (
            "train",
            lambda p: p["variants"]["mlp_gan"].update(pixel_range=[0, 0]),
            "pixel_range is not a setting",
        ),
        (
            "register",
            lambda p: p["registry"].update(primary_metirc="fid"),
            "registry.primary_metirc is not a",
        ),
    ],
    ids=[
        "direction-capitalised",
        "direction-inverted",
        "guard-nan",
        "model-name-quote",
        "classifier-batch",
        "evaluation-samples",
        "download-attempts",
        "data-dir-absolute",
        "no-variants",
        "base-variant-typo",
        "base-train-typo",
        "not-a-setting",
        "registry-typo",
    ],
)
def test_a_bad_setting_of_any_section_is_refused_before_any_work(
    trained: Path, verb: str, edit, expected: str
):
    """Each verb checks the whole of params.yaml first: one error line, and nothing changed."""
    options = {"data": ["--mirror", str(trained / "no-mirror")], "train": [VARIANT, "--profile", "smoke"]}
    refused_with_params(
        trained, edited(trained, edit), [verb, *options.get(verb, ["--profile", "smoke"])], expected
    )
    assert not Path("/tmp/mnist-elsewhere").exists()


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("profile: smoke\n", "the key 'profile' is written twice"),
        (  # nine lines that stand for a billion values
            "".join(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}' if i else '1'] * 10)}]\n" for i in range(9)),
            "values once its aliases (*name) are expanded",
        ),
    ],
    ids=["duplicate-key", "alias-bomb"],
)
def test_a_params_file_with_a_key_twice_or_an_alias_bomb_is_refused_at_once(trained: Path, extra, expected):
    text = (trained / "params.yaml").read_text() + "\n" + extra
    refused_with_params(trained, text, ["train", VARIANT, "--profile", "smoke"], expected)


def test_a_garbage_tracking_database_changes_nothing(trained: Path) -> None:
    database = trained / "mlflow" / "mlflow.db"
    before = state(trained)
    saved = database.read_bytes()
    database.write_bytes(np.random.default_rng(0).bytes(5000))
    try:
        done = mnistgen(trained, "train", VARIANT, "--profile", "smoke")
        files = state_files(trained)
    finally:
        database.write_bytes(saved)
    one_error(done, "cannot use the MLflow store", "file is not a database", "Fix:")
    assert files == before["files"] and state(trained) == before


@pytest.fixture
def dead_server(dead_url: str) -> str:
    """A closed port on 127.0.0.1, with credentials in its URL that must never be printed."""
    return dead_url.replace("http://", f"http://admin:{SECRET}@").rstrip("/")


# The verbs that reach the MLflow store, as a user types them.
TRAIN, SAMPLE = ["train", VARIANT, "--profile", "smoke"], ["sample", "--out", "x.png"]
EVALUATE, REGISTER = ["evaluate", "--profile", "smoke"], ["register", "--profile", "smoke"]


@pytest.mark.parametrize("command", [TRAIN, SAMPLE, EVALUATE], ids=["train", "sample", "evaluate"])
def test_a_dead_mlflow_server_fails_fast_without_showing_its_password(
    trained: Path, dead_server: str, command: list[str]
) -> None:
    before = state(trained)
    began = time.monotonic()
    done = mnistgen(trained, *command, env={"MLFLOW_TRACKING_URI": dead_server})
    took = time.monotonic() - began
    message = one_error(done, "is not reachable", "http://***@127.0.0.1")
    assert SECRET not in done.stdout + done.stderr, message
    assert took < 30, f"{command[0]} took {took:.0f} s to give up on a dead server"
    assert state(trained) == before


@pytest.mark.parametrize("command", [TRAIN, SAMPLE], ids=["train", "sample"])
def test_a_store_in_a_missing_folder_at_the_root_is_refused(trained: Path, command: list[str]) -> None:
    """A slash too many (`sqlite:////mlflow/mlflow.db`) would make MLflow create a folder at the root."""
    missing = Path("/") / f"mnistgen-missing-{os.getpid()}" / "mlflow"
    before = state(trained)
    done = mnistgen(trained, *command, env={"MLFLOW_TRACKING_URI": f"sqlite:///{missing}/mlflow.db"})
    one_error(done, f"is in a folder that does not exist ({missing})", "Fix: correct the path")
    assert not missing.parent.exists()
    assert state(trained) == before


@pytest.mark.parametrize("command", [TRAIN, EVALUATE, REGISTER], ids=["train", "evaluate", "register"])
def test_a_store_held_by_another_process_names_the_wait(trained: Path, command: list[str]) -> None:
    """Another process holds the embedded store (a long write): the error says so, not "is the server
    up?" or "check the space"."""
    classified = mnistgen(trained, "classifier", "--profile", "smoke")  # evaluate and register read it first
    assert classified.returncode == 0, classified.stderr[-2000:]
    before = state(trained)
    holder = sqlite3.connect(trained / "mlflow" / "mlflow.db", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        done = mnistgen(trained, *command)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    message = one_error(done, "database is locked", "Fix: another process held the embedded store")
    assert "server up" not in message and "space" not in message
    assert state(trained) == before


def test_data_changed_after_it_was_verified_is_refused(trained: Path) -> None:
    images = trained / "data" / "mnist" / "train-images-idx3-ubyte"
    original = images.read_bytes()
    changed = bytearray(original)
    changed[-1000:] = bytes(1000)  # the last images overwritten in place: same size, other pixels
    before = state(trained)
    images.write_bytes(bytes(changed))
    try:
        done = mnistgen(trained, "train", VARIANT, "--profile", "smoke")
    finally:
        images.write_bytes(original)
    one_error(done, "train-images-idx3-ubyte", "no longer match the size and SHA-256", "Fix:")
    assert state(trained) == before


def test_a_full_disk_during_training_is_a_failed_run_and_changes_nothing_published(trained: Path) -> None:
    before = state(trained)
    # A limit just under a checkpoint's size: the first checkpoint is the first file to cross it.
    checkpoint = max(
        (trained / "runs" / VARIANT / "checkpoints").glob("*.data-*"), key=lambda p: p.stat().st_size
    )
    limit = checkpoint.stat().st_size - 2**18
    assert (trained / "mlflow" / "mlflow.db").stat().st_size + 2**19 < limit, "the store would fill up first"
    done = mnistgen(trained, "train", VARIANT, "--profile", "smoke", "--seed", "7", file_limit=limit)
    one_error(done, "failed at step", "is marked FAILED", "File too large", "Fix:")
    after = state(trained)
    assert after["files"] == before["files"], "the published run is untouched"
    new = {run: status for run, status in after["runs"].items() if run not in before["runs"]}
    assert list(new.values()) == ["FAILED"], new
    staged = trained / ".mnistgen" / "runs" / VARIANT
    assert not (staged / "model").exists()
    assert "failed" in json.loads((staged / "run.json").read_text())
    no_finished_run_without_a_model(trained)


def test_a_full_disk_under_the_tracking_store_is_one_error(trained: Path) -> None:
    """The file-size limit is the store's size, so the store's next new page fails; the store is padded
    first to be larger than any checkpoint or model file, so it is the store that fails, whatever ran
    before this test."""
    import sqlite3

    database = trained / "mlflow" / "mlflow.db"
    with sqlite3.connect(database) as connection:
        connection.execute("CREATE TABLE IF NOT EXISTS test_padding (payload BLOB)")
        connection.execute("INSERT INTO test_padding VALUES (zeroblob(64 * 1024 * 1024))")
    before = state(trained)
    size = database.stat().st_size
    done = mnistgen(trained, "train", VARIANT, "--profile", "smoke", "--seed", "8", file_limit=size)
    one_error(done, "the MLflow store at sqlite:///", "Fix: check the space (", "MiB free in")
    assert state(trained)["files"] == before["files"]
    no_finished_run_without_a_model(trained)


def test_a_full_disk_during_evaluate_is_one_error(trained: Path) -> None:
    """The store cannot grow (a file-size limit stands for a full disk) while the evaluation writes."""
    classified = mnistgen(trained, "classifier", "--profile", "smoke")
    assert classified.returncode == 0, classified.stderr[-2000:]
    before = state(trained)
    done = mnistgen(trained, "evaluate", "--profile", "smoke", file_limit=100_000)
    one_error(done, "the MLflow store at sqlite:///", "disk I/O error", "Fix: check the space (")
    assert state(trained) == before


def test_a_truncated_last_checkpoint_falls_back_to_the_one_before(tmp_path: Path) -> None:
    project = make_training_project(tmp_path / "project")
    assert run_cli(project, "train", VARIANT, "--profile", "smoke").returncode == 0
    whole = json.loads((project / "runs" / VARIANT / "metrics.json").read_text())
    done = run_cli(project, "train", VARIANT, "--profile", "smoke", "--max-steps", "25")
    assert done.returncode == 0, done.stderr[-2000:]
    checkpoints = project / "runs" / VARIANT / "checkpoints"
    last = checkpoints / "ckpt-25.data-00000-of-00001"
    last.write_bytes(last.read_bytes()[:100])
    done = run_cli(project, "train", VARIANT, "--profile", "smoke", "--resume")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "ckpt-25 is unreadable" in done.stderr and "at step 20 (ckpt-20)" in done.stderr
    resumed = json.loads((project / "runs" / VARIANT / "metrics.json").read_text())
    assert resumed == whole, "resumed from step 20, the run ends where an uninterrupted one does"


def test_resume_after_the_tracking_database_was_deleted_continues_in_a_new_run(tmp_path: Path) -> None:
    import mlflow

    project = make_training_project(tmp_path / "project")
    assert run_cli(project, "train", VARIANT, "--profile", "smoke", "--max-steps", "20").returncode == 0
    old_run = json.loads((project / "runs" / VARIANT / "run.json").read_text())["run_id"]
    (project / "mlflow" / "mlflow.db").unlink()
    done = run_cli(project, "train", VARIANT, "--profile", "smoke", "--resume")
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"MLflow run {old_run} is not in the store any more" in done.stderr
    record = json.loads((project / "runs" / VARIANT / "run.json").read_text())
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{project}/mlflow/mlflow.db")
    run = client.get_run(record["run_id"])
    assert record["run_id"] != old_run and record["step"] == record["total_steps"]
    assert run.info.status == "FINISHED" and run.data.tags["resumed_from"] == old_run


def test_resume_of_a_finished_run_is_refused_and_changes_nothing(trained: Path) -> None:
    before = state(trained)
    one_error(mnistgen(trained, "train", VARIANT, "--profile", "smoke", "--resume"), "nothing to resume")
    assert state(trained) == before


def _special(path: Path, device: str | None) -> None:
    """`path` replaced by a link to `device`, or by a FIFO (None): reading either never ends."""
    path.unlink()
    if device:
        path.symlink_to(device)
    else:
        os.mkfifo(path)


def _info(folder: Path, **changes: object) -> None:
    path = folder / "model_info.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


@pytest.mark.parametrize(
    ("plant", "expected"),
    [
        (lambda f: _info(f, z_dim=10**12), "z_dim is 1000000000000, not a whole number from 1 to 65,536"),
        (lambda f: _info(f, z_dim=50), "z_dim is 50, but generator.keras takes 100"),
        (lambda f: _info(f, kind="python", noise="cauchy"), "kind is 'python', not one of adversarial"),
        (lambda f: _info(f, classes=-3, pixel_range=[1, 1]), "classes is -3, not a whole number"),
        (lambda f: (f / "model_info.json").write_text("[1, 2]"), "it holds list, not the mapping"),
        (lambda f: (f / "model_info.json").write_text("{"), "it cannot be read"),
        (lambda f: (f / "generator.keras").write_text("junk"), "generator.keras cannot be loaded as a Keras"),
        (lambda f: _special(f / "generator.keras", "/dev/zero"), "generator.keras is not a regular file"),
        (lambda f: _special(f / "generator.keras", None), "generator.keras is not a regular file"),
        (lambda f: _special(f / "model_info.json", None), "not an mnistgen generator (no model_info.json)"),
    ],
    ids=[
        "absurd-z-dim",
        "z-dim-mismatch",
        "unknown-kind",
        "bad-classes",
        "not-a-mapping",
        "not-json",
        "junk",
        "link-to-a-device",
        "pipe",
        "pipe-for-info",
    ],
)
def test_sample_refuses_a_planted_model_folder(trained: Path, tmp_path: Path, plant, expected: str) -> None:
    """A folder that only looks like a saved generator: refused before any array is made or code runs."""
    planted = tmp_path / "model"
    shutil.copytree(trained / "runs" / VARIANT / "model", planted)
    plant(planted)
    before = state(trained)
    done = mnistgen(trained, "sample", "--model", str(planted), "--out", str(tmp_path / "x.png"))
    one_error(done, expected, "Fix: ")
    assert not (tmp_path / "x.png").exists() and state(trained) == before


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["--seed", "-1"], "--seed is -1"),
        (["--seed", str(10**20)], "--seed is 100000000000000000000"),
        (["--n", "0"], "--n is 0"),
        (
            ["--n", str(10**7), "--out", "x.npy"],
            "--n is 10000000; it must be a whole number from 1 to 1,000,000",
        ),
        (["--n", "5000", "--out", "x.png"], "too many for a picture"),
        (["--out", "x.jpg"], "--out must end in .png or .npy"),
        (["--out", "runs"], "must end in .png or .npy"),
        (["--out", "params.yaml/x.png"], "cannot write into"),
    ],
)
def test_sample_checks_its_options_before_any_work(trained: Path, options: list[str], expected: str) -> None:
    done = mnistgen(trained, "sample", "--model", f"runs/{VARIANT}/model", *options)
    one_error(done, expected)


def test_sample_refuses_a_folder_as_output(trained: Path, tmp_path: Path) -> None:
    folder = tmp_path / "out.npy"
    folder.mkdir()
    one_error(
        mnistgen(trained, "sample", "--model", f"runs/{VARIANT}/model", "--out", str(folder)), "is a folder"
    )


def test_sample_on_a_full_disk_leaves_no_partial_file(trained: Path, tmp_path: Path) -> None:
    out = tmp_path / "samples.npy"
    out.write_bytes(b"the previous file")
    done = mnistgen(
        trained,
        "sample",
        "--model",
        f"runs/{VARIANT}/model",
        "--n",
        "2000",
        "--out",
        str(out),
        file_limit=2**20,
    )
    one_error(done, f"cannot write {out}", "File too large", "Fix:")
    assert out.read_bytes() == b"the previous file", "the previous file is replaced only by a complete one"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["samples.npy"]


def test_sample_streams_a_large_npy_in_chunks(trained: Path, tmp_path: Path) -> None:
    out = tmp_path / "many.npy"
    done = mnistgen(trained, "sample", "--model", f"runs/{VARIANT}/model", "--n", "2500", "--out", str(out))
    assert done.returncode == 0, done.stderr[-2000:]
    many = np.load(out, mmap_mode="r")
    few = tmp_path / "few.npy"
    assert (
        mnistgen(
            trained, "sample", "--model", f"runs/{VARIANT}/model", "--n", "3", "--out", str(few)
        ).returncode
        == 0
    )
    assert many.shape == (2500, 28, 28) and many.dtype == np.float32
    np.testing.assert_array_equal(many[:3], np.load(few))  # chunks do not change an image


def test_sample_hints_name_the_real_problem(trained: Path) -> None:
    missing = mnistgen(trained, "sample", "--out", "x.png")
    one_error(
        missing, "Registered Model with name=mnist-generator not found", "run `mnistgen register` first"
    )
    database = trained / "mlflow" / "mlflow.db"
    saved = database.read_bytes()
    database.write_bytes(np.random.default_rng(1).bytes(5000))
    try:
        garbage = mnistgen(trained, "sample", "--out", "x.png")
    finally:
        database.write_bytes(saved)
    message = one_error(garbage, "file is not a database", "check the MLflow store")
    assert "mnistgen register" not in message

    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{database}")
    client.create_registered_model("mnist-generator")  # a model with no champion yet
    try:
        no_alias = mnistgen(trained, "sample", "--out", "x.png")
    finally:
        client.delete_registered_model("mnist-generator")
    one_error(no_alias, "alias champion not found", "run `mnistgen register` first")


def test_no_temporary_folders_are_left_behind(trained: Path, tmp_path: Path) -> None:
    temp = tmp_path / "system-temp"
    temp.mkdir()
    env = {"TMPDIR": str(temp)}
    run_id = json.loads((trained / "runs" / VARIANT / "run.json").read_text())["run_id"]
    done = mnistgen(
        trained, "sample", "--model", f"runs:/{run_id}/model", "--out", str(tmp_path / "a.png"), env=env
    )
    assert done.returncode == 0, done.stderr[-2000:]
    # TensorFlow's autograph leaves its generated sources there; no model copy may stay.
    leftovers = [p for p in temp.iterdir() if not p.name.startswith("__autograph_generated_file")]
    assert leftovers == [], leftovers


def test_a_training_process_that_exits_with_its_run_open_never_leaves_it_finished(tmp_path: Path) -> None:
    """An error while a run is being ended (a store that refuses the tag, say) leaves the MLflow run open
    when the process exits: it must end FAILED, never FINISHED as MLflow's own exit hook would end it."""
    import mlflow
    from helpers.projects import migrated_store

    store = tmp_path / "mlflow.db"
    shutil.copyfile(migrated_store(), store)
    script = (
        "import mlflow\n"
        "from mnistgen.training.tracker import MlflowTracker\n"
        f"mlflow.set_tracking_uri('sqlite:///{store}')\n"
        "print(MlflowTracker().start('abandoned', {}), flush=True)\n"
        "raise SystemExit(3)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 3, done.stderr[-2000:]
    run = mlflow.MlflowClient(tracking_uri=f"sqlite:///{store}").get_run(done.stdout.split()[-1])
    assert run.info.status == "FAILED"
