"""The `mnistgen` command line: each verb wraps the same functions the Prefect flows call.

Each verb imports what it runs inside its function: TensorFlow, MLflow and Prefect take seconds to import,
and `mnistgen --help` or a refused option should not wait for them.
"""

from __future__ import annotations

import errno
import importlib.abc
import importlib.util
import logging
import os
import re
import signal
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import replace
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType
from typing import Annotated, NoReturn

import typer

from mnistgen.config import (
    MIRRORS_ENV,
    ConfigError,
    check_options,
    check_variants,
    load_project,
    project_root,
    resolve_mirrors,
)
from mnistgen.errors import INTERRUPTED_EXIT, MnistgenError, free_space, interrupted, redact
from mnistgen.prefect_api import prefect_api
from mnistgen.tracking import SERVER_PREFIXES

app = typer.Typer(
    help="Generative models of handwritten digits: data, training, evaluation, registry.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

ProjectDir = Annotated[
    Path | None,
    typer.Option(
        "--project-dir", help="Folder holding params.yaml (default: the nearest one above the cwd)."
    ),
]


CLI_LOG_HANDLER = "mnistgen-cli"
PREFECT_FLUSH_SECONDS = 10  # for the logs and events Prefect still holds at the end of a pipeline
# What importing TensorFlow writes to the process's stderr before any log level applies (absl's notice,
# oneDNN's, the CPU-feature one); `--verbose` shows them.
TENSORFLOW_NOTICE = re.compile(
    r"WARNING: All log messages before absl::InitializeLog\(\) is called"
    r"|I\d{4} [\d:.]+\s+\d+ (port|cpu_feature_guard)\.cc:\d+\]"
    r"|To enable the following instructions: .* rebuild TensorFlow"
)


# Prefect's console lines that only say that all went well (a task or subflow completed, where its page
# is, that a subflow began): the pipeline's numbered step lines say it once. `--verbose` shows them; a
# failure's lines always show.
ROUTINE_PREFECT_LINE = re.compile(r"Finished in state Completed\(|View at |Beginning subflow run")


class _HideRoutinePrefectLines(logging.Filter):
    """Routine lines dropped; an interrupted training's task failure said in its line, without the
    traceback of an interruption the user asked for."""

    def filter(self, record: logging.LogRecord) -> bool:
        routine = record.name.startswith(("prefect.flow_runs", "prefect.task_runs"))
        if routine and record.exc_info and interrupted(record.exc_info[1]):
            record.exc_info, record.exc_text = None, None
        return not (routine and ROUTINE_PREFECT_LINE.match(record.getMessage()))


def _quiet_prefect_console() -> None:
    """Filter Prefect's console handler. Prefect sets up its logging when the first flow starts and only
    adjusts levels after that, so it is set up here first and the filter stays on its handler."""
    from prefect.logging.configuration import setup_logging  # the pipeline verb imports Prefect anyway
    from prefect.logging.handlers import PrefectConsoleHandler

    setup_logging()
    for handler in logging.getLogger().handlers:
        if isinstance(handler, PrefectConsoleHandler):
            handler.addFilter(_HideRoutinePrefectLines())


class _RedactingFormatter(logging.Formatter):
    """Log lines with the credentials of any URL in them replaced by `***`."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


@app.callback()
def main(
    ctx: typer.Context,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Debug logging, and TensorFlow's start-up notices.")
    ] = False,
) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # one bar per artifact download
    project_log = logging.getLogger("mnistgen")
    project_log.setLevel(logging.DEBUG if verbose else logging.INFO)
    if not verbose:  # a store's database error reaches the user as one `error:` line, not a traceback
        logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)
    for earlier in [h for h in project_log.handlers if h.get_name() == CLI_LOG_HANDLER]:
        project_log.removeHandler(earlier)  # one per process, whatever ran before in it (tests, notebooks)
    if not verbose and not any(isinstance(f, _QuietTensorFlowImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietTensorFlowImport())
    if ctx.invoked_subcommand == "pipeline":
        # Before Prefect reads its settings: its temporary server would send usage telemetry, and its
        # heartbeat trips over SQLite locks.
        os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
        # Its temporary server gets 20 s to start by default: on a busy machine (CI running tests beside
        # it) that is not enough, and the pipeline would fail before its first step.
        os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
        if not verbose:
            _quiet_prefect_console()
    if ctx.invoked_subcommand != "pipeline":  # in the pipeline, Prefect's console handler shows these
        handler = logging.StreamHandler()
        handler.set_name(CLI_LOG_HANDLER)
        handler.setFormatter(
            _RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S")
        )
        project_log.addHandler(handler)


class _QuietTensorFlowImport(importlib.abc.MetaPathFinder):
    """Holds back TensorFlow's start-up notices: they go straight to file descriptor 2, where no log level
    reaches them. The verbs import TensorFlow late, after their cheap checks (a bad option fails
    before seconds of import), so this finder waits for that first import and
    runs it with descriptor 2 sent to a temporary file, then passes on whatever was written except the
    notices. Bounded to the import, so no error message can be lost."""

    def find_spec(
        self, name: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)  # once: the real finders locate it, this only wraps the loading
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = _NoticesHeldBack(spec.loader)
        return spec


class _NoticesHeldBack(importlib.abc.Loader):
    """The loader of `tensorflow`, running the module's code with TensorFlow's notices held back."""

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self.loader = loader

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        sys.stderr.flush()
        saved = os.dup(2)
        with tempfile.TemporaryFile() as caught:
            os.dup2(caught.fileno(), 2)
            try:
                self.loader.exec_module(module)
            finally:
                os.dup2(saved, 2)
                os.close(saved)
                caught.seek(0)
                written = caught.read().decode(errors="replace").splitlines(keepends=True)
                sys.stderr.write("".join(line for line in written if not TENSORFLOW_NOTICE.match(line)))
                module.__loader__ = module.__spec__.loader = self.loader  # as if never wrapped


@app.command()
def data(
    mirror: Annotated[
        list[str] | None,
        typer.Option(
            "--mirror",
            "-m",
            help="A mirror to fetch from (http(s) URL, file:// URL or folder); repeat for fallbacks. "
            "Overrides MNISTGEN_MIRRORS and params.yaml.",
        ),
    ] = None,
    push: Annotated[bool, typer.Option(help="Push the data to the default DVC remote.")] = True,
    progress: Annotated[bool, typer.Option(help="Show download progress bars.")] = True,
    project_dir: ProjectDir = None,
) -> None:
    """Download MNIST (verified, atomic), validate it with Great Expectations and version it with DVC."""
    from mnistgen.data.prepare import DataSettings, prepare_mnist

    with _user_errors():
        settings = DataSettings.load(project_dir)
        settings = replace(settings, push=settings.push and push)
        result = prepare_mnist(settings, resolve_mirrors(mirror, settings.mirrors), progress=progress)

    for name, split in result.report.splits.items():
        typer.echo(
            f"{name}: {split['rows']} images, mean intensity {split['mean_intensity']}, "
            f"class counts {split['class_counts']}"
        )
    typer.echo(f"validation passed; Data Docs: {result.report.data_docs}")
    typer.echo(f"downloaded: {', '.join(result.downloaded) or 'nothing (all files present and valid)'}")
    if result.version:
        state = "updated, commit it" if result.version.changed else "unchanged"
        typer.echo(f"data.dvc {state}: md5 {result.version.md5} ({result.version.nfiles} files)")


@contextmanager
def _user_errors() -> Iterator[None]:
    """Report what a user can fix as one `error:` line and exit status 1, not a traceback (`--verbose`
    logs the traceback too): the project's own errors, and the file system's (a folder that cannot be
    written, a full disk), which name the path."""
    try:
        yield
    except MnistgenError as error:
        _fail(str(error), error)
    except OSError as error:
        if error.filename is None:
            raise  # not about a file: a fault worth its traceback
        _fail(_file_problem(error), error)


def _fail(message: str, error: BaseException) -> NoReturn:
    logging.getLogger("mnistgen").debug("the error's traceback", exc_info=error)
    typer.secho(f"error: {redact(message)}", fg=typer.colors.RED, err=True)
    raise typer.Exit(1) from error


def _file_problem(error: OSError) -> str:
    """What went wrong with which path, and the fix: for a full disk, how much space is left there."""
    path = Path(error.filename)
    problem = f"cannot write {path}: {error.strerror}"
    if error.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
        return (
            f"{problem} ({free_space(path)}, or a file-size limit). "
            "Fix: free space there (or raise the limit) and run again."
        )
    if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"{problem}. Fix: choose a folder you can write to, or change its permissions."
    return f"{problem}. Fix: check the path."


@app.command()
def train(
    variant: Annotated[
        str,
        typer.Argument(
            help="mlp_gan, dcgan, conv_gan, wgan, wgan_gp, autoencoder, vae, toy_gan_1d, cgan, cvae or scgan."
        ),
    ],
    profile: Annotated[
        str | None,
        typer.Option(help="smoke, cpu, faithful or gpu (default: the `profile:` key of params.yaml)."),
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (default: train.seed).")] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue from the last checkpoint and MLflow run.")
    ] = False,
    max_minutes: Annotated[
        float | None, typer.Option(help="Stop (checkpointed, resumable) after this long.")
    ] = None,
    max_steps: Annotated[
        int | None, typer.Option(help="Stop (checkpointed, resumable) at this step.")
    ] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar per epoch.")] = True,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="Override a setting for this run (repeatable), e.g. --set variants.cgan.ema_decay=0.999; "
            "the run records every setting in MLflow.",
        ),
    ] = None,
    project_dir: ProjectDir = None,
) -> None:
    """Train one variant; checkpoints, sample grids, loss curves and the model go to runs/ and MLflow."""
    from mnistgen.evaluation import quality_clock
    from mnistgen.training.run import TrainRequest, train_variant

    with _user_errors():
        request = TrainRequest(
            project_root(project_dir),
            variant,
            profile,
            seed,
            resume,
            max_minutes,
            max_steps,
            progress,
            tuple(set_ or ()),
        )
        for signum in (signal.SIGINT, signal.SIGTERM):  # `kill` ends a run as Ctrl-C: KILLED, resumable
            signal.signal(signum, _interrupt)
        try:
            result = train_variant(request, quality_clock.start)
        except KeyboardInterrupt:
            typer.secho(f"interrupted; `mnistgen train {variant} --resume` continues.", err=True)
            raise typer.Exit(INTERRUPTED_EXIT) from None
    typer.echo(
        f"{result.variant}: {result.status} at step {result.step}/{result.total_steps} on {result.device} "
        f"({result.precision}); MLflow run {result.run_id}"
    )
    typer.echo("final: " + ", ".join(f"{k}={v:.4g}" for k, v in result.metrics.items()))
    typer.echo(f"figures and model: {result.run_dir}")


def _interrupt(signum: int, frame: object) -> NoReturn:
    """The first Ctrl-C or SIGTERM interrupts; the ones after it wait for the checkpoint it writes."""
    for later in (signal.SIGINT, signal.SIGTERM):
        signal.signal(later, _let_it_finish)  # not SIG_IGN: a signal already on its way would then raise
    raise KeyboardInterrupt(f"signal {signum}")


def _let_it_finish(signum: int, frame: object) -> None:
    """A signal after the first: the run is already being checkpointed and ended."""


def _interrupt_pipeline(signum: int, frame: object) -> NoReturn:
    """Ctrl-C or SIGTERM of the pipeline, once its main thread runs: the trainings still running are told
    too (a signal to this process only does not reach them), then the flow reports its runs to a server
    still up (see `mnistgen.prefect_api`)."""
    from mnistgen.training.isolated import interrupt_trainings  # imported by `pipeline` before this runs

    interrupt_trainings()
    _interrupt(signum, frame)


ProfileOption = Annotated[
    str | None, typer.Option(help="smoke, cpu, faithful or gpu (default: the `profile:` key of params.yaml).")
]


@app.command()
def params(
    variant: Annotated[str, typer.Argument(help="The variant whose settings to print.")],
    profile: ProfileOption = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="An override to apply first, as `train --set` takes it.")
    ] = None,
    project_dir: ProjectDir = None,
) -> None:
    """Print the settings a training of VARIANT uses: params.yaml, its profile and --set merged, checked."""
    import yaml

    from mnistgen.training.plan import TrainRequest, plan_run

    with _user_errors():
        plan = plan_run(
            TrainRequest(project_root(project_dir), variant, profile, overrides=tuple(set_ or ()))
        )
    resolved = {
        "profile": plan.profile,
        "seed": plan.seed,
        "train": plan.train.plain(),
        "variants": {variant: plan.cfg.plain()},
    }
    typer.echo(yaml.safe_dump(resolved, sort_keys=False, default_flow_style=None).rstrip())


@app.command()
def classifier(profile: ProfileOption = None, progress: bool = True, project_dir: ProjectDir = None) -> None:
    """Train the MNIST classifier whose features FID, KID and precision/recall are measured in."""
    from mnistgen.evaluation.classifier import train_and_log

    with _user_errors():
        root, params = load_project(project_dir, profile)
        path, version, accuracy = train_and_log(root, params, progress)
    typer.echo(f"classifier {version}: test accuracy {accuracy:.4f}; saved to {path}")


SeedOption = Annotated[
    int | None, typer.Option(help="The training seed of the runs to take (default: train.seed).")
]


@app.command()
def evaluate(profile: ProfileOption = None, seed: SeedOption = None, project_dir: ProjectDir = None) -> None:
    """Evaluate each variant's current run, log the metrics into it, and write the leaderboard."""
    from mnistgen.evaluation.evaluate import evaluate_all
    from mnistgen.registry import champion_of

    with _user_errors():
        root, params = load_project(project_dir, profile)
        entries, extractor, (markdown, page) = evaluate_all(root, params, seed, champion_of(root, params))
    typer.echo(markdown.read_text())
    typer.echo(f"leaderboard: {markdown} and {page}")


@app.command()
def register(profile: ProfileOption = None, seed: SeedOption = None, project_dir: ProjectDir = None) -> None:
    """Register the best evaluated generator; it becomes `champion` only if it beats the current one."""
    from mnistgen.registry import register as register_best

    with _user_errors():
        root, params = load_project(project_dir, profile)
        decision = register_best(root, params, seed)
    if decision is None:
        typer.echo("not registered: this is a DVC experiment (see reports/registration.json)")
        return
    name = params.registry.model_name
    where = f"{name} v{decision.version}" if decision.version else name
    typer.echo(f"{where} @{decision.alias}: {decision.reason}")


@app.command()
def pipeline(
    profile: ProfileOption = None,
    variants: Annotated[
        str | None, typer.Option(help="Comma-separated variants to train (default: train.variants).")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Training seed (default: train.seed).")] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Retrain variants even when their run is current.")
    ] = False,
    mirror: Annotated[
        list[str] | None,
        typer.Option("--mirror", "-m", help="An MNIST mirror (overrides MNISTGEN_MIRRORS and params.yaml)."),
    ] = None,
    project_dir: ProjectDir = None,
) -> None:
    """The whole pipeline as the Prefect flow `retrain`: data, classifier, training, evaluation, registry."""
    with _user_errors():
        root = project_root(project_dir)
        chosen = [v.strip() for v in variants.split(",") if v.strip()] if variants is not None else None
        check_options(seed=seed)  # before Prefect is imported, its server started, or a step run
        if chosen == []:
            raise ConfigError(
                "--variants names no variant. Fix: name some (mlp_gan,cgan), or drop it for all."
            )
        check_variants(chosen)
        if mirror:  # through the environment: a flow's parameters are kept in Prefect's database
            os.environ[MIRRORS_ENV] = _mirrors_variable(mirror)
        from mnistgen.training import isolated  # noqa: F401 - the handler below must not import anything

        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, _interrupt_pipeline)
        try:
            with prefect_api() as temporary, _prefect_settings(temporary):
                # The flows are the outer, orchestrating layer: imported here, never by the computing modules.
                from flows.pipeline import retrain

                try:
                    result = retrain(
                        profile=profile,
                        variants=chosen,
                        seed=seed,
                        force=force,
                        on_workers=False,
                        project_dir=str(root),
                    )
                finally:
                    _flush_prefect()
        except KeyboardInterrupt:
            typer.secho(
                "interrupted; `mnistgen pipeline` again reuses the finished steps and resumes the training "
                "cut short.",
                err=True,
            )
            raise typer.Exit(INTERRUPTED_EXIT) from None
    registration = result["registration"]
    typer.echo(
        f"\n{registration['variant']} is {registration['alias']} of the MLflow model "
        f"'{registration['model']}': {registration['reason']}"
    )
    typer.echo(f"leaderboard:   {result['reports']['leaderboard']}")
    typer.echo(f"champion grid: {result['reports']['champion_grid']}")
    uri, page = redact(result["tracking_uri"]), redact(result["experiment_page"])
    tools = Path(sys.executable).parent  # the environment's own commands, so each line runs as printed
    if uri.startswith(SERVER_PREFIXES):
        typer.echo(f"MLflow UI:     {page}")
    else:
        typer.echo(f"MLflow UI:     {tools / 'mlflow'} ui --backend-store-uri {uri}  (then {page})")
    from prefect.settings import get_current_settings

    run_page = f"/runs/flow-run/{result['flow_run_id']}"
    if not temporary and (ui := get_current_settings().ui_url):  # a Prefect server (PREFECT_API_URL)
        typer.echo(f"Prefect UI:    {ui}{run_page}")
    else:  # the temporary server kept the run in Prefect's database, which `prefect server start` opens
        typer.echo(
            f"Prefect UI:    {tools / 'prefect'} server start --host 127.0.0.1 --analytics-off  "
            f"(then http://127.0.0.1:4200{run_page})"
        )


def _prefect_settings(temporary: bool) -> AbstractContextManager[object]:
    """Prefect's settings with the temporary server's address (Prefect read `PREFECT_API_URL` when it was
    first imported, before that server started)."""
    if not temporary:
        return nullcontext()
    from prefect.settings import PREFECT_API_URL, temporary_settings

    return temporary_settings({PREFECT_API_URL: os.environ[PREFECT_API_URL.name]})


def _flush_prefect() -> None:
    """Send the logs and events Prefect still holds while its server is up (a temporary one stops next)."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=PREFECT_FLUSH_SECONDS)
    EventsWorker.drain_all(timeout=PREFECT_FLUSH_SECONDS)


def _mirrors_variable(mirrors: list[str]) -> str:
    """`--mirror` values as `MNISTGEN_MIRRORS` holds them (comma-separated, so none may hold a comma)."""
    if commas := [mirror for mirror in mirrors if "," in mirror]:
        raise ConfigError(
            f"--mirror {commas[0]!r}: a mirror's URL or folder cannot hold a comma here. Fix: use a "
            "folder whose path has none (or percent-encode it in a URL: %2C)."
        )
    return ",".join(mirrors)


@app.command()
def sample(
    model: Annotated[
        str, typer.Option(help="models:/NAME@ALIAS, runs:/RUN_ID/model, or a runs/VARIANT/model folder.")
    ] = "models:/mnist-generator@champion",
    n: Annotated[
        int, typer.Option("--n", help="How many images (up to 1,000,000; a .png grid up to 2,500).")
    ] = 64,
    out: Annotated[
        Path, typer.Option(help="A .png (a grid) or .npy (float32, (n, 28, 28), in [0, 1]).")
    ] = Path("samples.png"),
    seed: Annotated[int, typer.Option(help="The same seed gives the same images.")] = 0,
    digit: Annotated[
        int | None, typer.Option(help="Only this digit (class-conditional models: cgan, cvae).")
    ] = None,
    profile: ProfileOption = None,
    project_dir: ProjectDir = None,
) -> None:
    """Generate images from a registered generator, a training run's model or a runs/VARIANT/model folder."""
    from mnistgen.serving.generate import sample_to_file

    with _user_errors():
        root, params = load_project(project_dir, profile)
        path = sample_to_file(root, params, model, n, seed, out, digit)
    typer.echo(f"wrote {n} images{f' of the digit {digit}' if digit is not None else ''} to {path}")
