"""The `mnistgen` command line: each verb wraps the same functions the Prefect flows call."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from mnistgen.config import resolve_mirrors
from mnistgen.errors import MnistgenError

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


@app.callback()
def main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))
    project_log = logging.getLogger("mnistgen")
    project_log.addHandler(handler)
    project_log.setLevel(logging.DEBUG if verbose else logging.INFO)


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
    """Report `MnistgenError`s as a message and exit status 1, not a traceback."""
    try:
        yield
    except MnistgenError as error:
        typer.secho(f"error: {error}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from error


@app.command()
def train(
    variant: Annotated[
        str, typer.Argument(help="mlp_gan, dcgan, conv_gan, wgan, wgan_gp, autoencoder, vae or toy_gan_1d.")
    ],
    profile: Annotated[
        str | None, typer.Option(help="smoke, cpu or gpu (default: the `profile:` key of params.yaml).")
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
    project_dir: ProjectDir = None,
) -> None:
    """Train one variant; checkpoints, sample grids, loss curves and the model go to runs/ and MLflow."""
    from mnistgen.config import find_project_root
    from mnistgen.training.run import TrainRequest, train_variant

    with _user_errors():
        root = project_dir.resolve() if project_dir else find_project_root()
        request = TrainRequest(root, variant, profile, seed, resume, max_minutes, max_steps, progress)
        try:
            result = train_variant(request)
        except KeyboardInterrupt:
            typer.secho(f"interrupted; `mnistgen train {variant} --resume` continues.", err=True)
            raise typer.Exit(130) from None
    typer.echo(
        f"{result.variant}: {result.status} at step {result.step}/{result.total_steps} on {result.device} "
        f"({result.precision}); MLflow run {result.run_id}"
    )
    typer.echo("final: " + ", ".join(f"{k}={v:.4g}" for k, v in result.metrics.items()))
    typer.echo(f"figures and model: {result.run_dir}")
