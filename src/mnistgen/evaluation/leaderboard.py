"""The leaderboard: every evaluated variant beside the real-data floor, as Markdown and as an HTML page."""

from __future__ import annotations

import base64
import html
import io
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

from mnistgen import figures
from mnistgen.folders import swap_in
from mnistgen.settings import Variants
from mnistgen.training.run_folder import COMPLETED

METRICS_DIR = "metrics"
FLOOR = "real data (floor)"  # the row of real training images, measured as a generator's samples are
FLOOR_DESCRIPTION = "MNIST's training images"


class Description(NamedTuple):
    """What a variant is, shown beside its figures so that the leaderboard reads as one comparison: what
    it is trained to minimise, and its networks."""

    loss: str
    network: str

    def __str__(self) -> str:
        return f"{self.loss}; {self.network}"


GDL_NETWORKS = "upsampling convolutions"  # tutorial 001's generator: UpSampling2D + Conv2D blocks
ADVERSARIAL_LOSSES = {"bce": "non-saturating GAN", "hinge": "hinge GAN"}  # the `loss` setting's choices
DESCRIPTIONS: dict[str, Description] = {  # "": the loss is the variant's `loss` setting
    "mlp_gan": Description("non-saturating GAN", "MLPs, one hidden layer"),
    "dcgan": Description("non-saturating GAN", "transposed convolutions"),
    "conv_gan": Description("non-saturating GAN", GDL_NETWORKS),
    "wgan": Description("Wasserstein, weight clipping", GDL_NETWORKS),
    "wgan_gp": Description("Wasserstein, gradient penalty", "transposed convolutions"),
    "autoencoder": Description("reconstruction (MSE)", "convolutional encoder and decoder"),
    "vae": Description("ELBO (reconstruction + KL)", "convolutional encoder and decoder"),
    "toy_gan_1d": Description("non-saturating GAN", "MLPs on one number"),
    "cgan": Description("", "transposed convolutions, projection discriminator; digit labels"),
    "cvae": Description("ELBO (reconstruction + KL)", "convolutional encoder and decoder; digit labels"),
    "scgan": Description("", "cgan's networks on k-means clusters of the images; no labels"),
}


def describe(variant: str, variants: Variants) -> Description:
    """What `variant` is: its loss and networks, the loss read from its settings where it is a setting
    (cgan's and scgan's `loss`).

    Args:
        variant: a name of `models.VARIANTS`.
        variants: the settings of every variant (`Settings.variants`).

    Returns:
        The loss and the networks, in words.
    """
    description = DESCRIPTIONS[variant]
    if description.loss:
        return description
    return description._replace(loss=ADVERSARIAL_LOSSES[variants.of(variant).loss])


@dataclass
class Entry:
    """One leaderboard row: a variant's run (or the real-data floor) and its scores."""

    name: str
    run_id: str | None
    kind: str
    metrics: dict[str, float]
    grid: np.ndarray | None = None  # (64, 28, 28) in [0, 1] for image models
    tags: dict[str, str] = field(default_factory=dict)
    quality_curve: list[tuple[float, float]] = field(default_factory=list)  # (training seconds, FID)
    rescored: bool = False  # the registered champion, scored again with today's classifier (not a variant)
    description: str = ""  # what the variant is: its loss and networks (`describe`)

    @property
    def complete(self) -> bool:
        """Whether the run reached its step budget (the floor and untracked rows count as complete)."""
        return self.tags.get("stopped_by", COMPLETED) == COMPLETED


# (metric, label, better): the columns, in order; "lower"/"higher" tells how to read them.
IMAGE_COLUMNS = [
    ("fid", "FID", "lower"),
    ("kid", "KID", "lower"),
    ("inception_score", "IS", "higher"),
    ("precision", "precision", "higher"),
    ("recall", "recall", "higher"),
    ("mode_entropy", "mode entropy", "higher"),
    ("rarest_class_share", "rarest class", "higher"),
    ("memorisation_ratio", "memorisation ratio", "higher"),
    ("reconstruction_mse", "recon. MSE", "lower"),
    ("label_accuracy", "label accuracy", "higher"),  # class-conditional models only
    ("label_accuracy_worst", "worst digit", "higher"),  # the label accuracy of the digit drawn worst
    ("class_fid_mean", "per-class FID", "lower"),
    ("cas", "CAS", "higher"),  # train on synthetic, test on real; the floor row: trained on real
]
TOY_COLUMNS = [
    ("wasserstein1", "W1", "lower"),
    ("ks", "KS", "lower"),
    ("sample_mean", "mean", "-1"),
    ("sample_std", "std", "1"),
]


def ranked(entries: list[Entry], primary: str) -> list[Entry]:
    """Image models by the primary metric (FID: lower is better; NaN or missing last), then the floor,
    then the toy GAN."""

    def score(entry: Entry) -> float:  # NaN or missing last: NaN would otherwise scramble the sort
        value = entry.metrics.get(primary, np.inf)
        return value if np.isfinite(value) else np.inf

    images = sorted((e for e in entries if e.kind in ("adversarial", "reconstruction")), key=score)
    return images + [e for e in entries if e.kind == "real"] + [e for e in entries if e.kind == "toy"]


def describe_entries(entries: list[Entry], variants: Variants) -> None:
    """Give every variant's row its loss and networks as `variants` set them, and the floor its own; a
    re-scored champion, trained with settings of its own, keeps none."""
    for entry in entries:
        if entry.kind == "real":
            entry.description = FLOOR_DESCRIPTION
        elif not entry.rescored:
            entry.description = str(describe(entry.name, variants))


def steps(entry: Entry) -> str:
    """The steps a run trained, with † when it was cut short of its budget (never registered)."""
    if "steps" not in entry.tags:
        return ""
    done, total = (int(n) for n in entry.tags["steps"].split("/"))
    return f"{done:,}" if entry.complete else f"{done:,}/{total:,} † {entry.tags.get('stopped_by', '')}"


def _number(value: float) -> str:
    return f"{value:.3g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.2e}"


def _cell(entry: Entry, metric: str) -> str:
    value = entry.metrics.get(metric)
    if value is None:
        return "–"
    if metric == "kid":
        return f"{value:.4f} ± {entry.metrics['kid_std']:.4f}"
    low, high = entry.metrics.get(f"{metric}_ci_low"), entry.metrics.get(f"{metric}_ci_high")
    if low is not None and high is not None:  # FID and recall: the bootstrap interval of the samples' noise
        return f"{_number(value)} [{_number(low)}, {_number(high)}]"
    return _number(value)


def image_table(entries: list[Entry], primary: str, top: int | None = None, runs: bool = True) -> list[str]:
    """The image models ranked by `primary`, then the floor, as Markdown table lines: the `top` best only
    if given; with their MLflow run ids if `runs`."""
    head = "| rank | variant | what it is | steps | " + " | ".join(label for _, label, _ in IMAGE_COLUMNS)
    lines = [head + (" | run |" if runs else " |"), "|" + " --- |" * (len(IMAGE_COLUMNS) + 4 + runs)]
    rank = 0
    for entry in ranked(entries, primary):
        if entry.kind == "toy" or (entry.kind != "real" and top is not None and rank >= top):
            continue
        rank_text = "" if entry.kind == "real" else str(rank := rank + 1)
        cells = " | ".join(_cell(entry, metric) for metric, _, _ in IMAGE_COLUMNS)
        run = f" {entry.run_id or ''} |" if runs else ""
        lines.append(f"| {rank_text} | {entry.name} | {entry.description} | {steps(entry)} | {cells} |{run}")
    return lines


def toy_table(entries: list[Entry], runs: bool = True) -> list[str]:
    """The 1-D toy GANs against N(-1, 1) as Markdown table lines (none if there are none)."""
    toys = [e for e in entries if e.kind == "toy"]
    if not toys:
        return []
    head = "| variant | what it is | steps | " + " | ".join(label for _, label, _ in TOY_COLUMNS)
    lines = [head + (" | run |" if runs else " |"), "|" + " --- |" * (len(TOY_COLUMNS) + 3 + runs)]
    for entry in toys:
        cells = " | ".join(_cell(entry, metric) for metric, _, _ in TOY_COLUMNS)
        run = f" {entry.run_id} |" if runs else ""
        lines.append(f"| {entry.name} | {entry.description} | {steps(entry)} | {cells} |{run}")
    return lines


def markdown(entries: list[Entry], primary: str, extractor: str) -> str:
    lines = [
        "# mnistgen leaderboard",
        "",
        f"Ranked by `{primary}`; features from classifier version `{extractor}`. Each score compares "
        "samples with the MNIST test set; the floor row is real training images measured the same way.",
        "",
        *image_table(entries, primary),
    ]
    if toys := toy_table(entries):
        lines += ["", "1-D toy GAN against N(-1, 1):", "", *toys]
    lines += ["", legend()]
    return "\n".join(lines) + "\n"


def legend() -> str:
    """How to read the leaderboard's columns."""
    better = ", ".join(f"{label}: {way} is better" for _, label, way in IMAGE_COLUMNS)
    return (
        f"Reading the columns: {better}. Memorisation ratio: mean L1 distance of samples to their "
        "nearest training image over the same for real test images (below 1 suggests copying). "
        "FID and recall [in brackets]: the bootstrap confidence interval of their sampling noise "
        "(`evaluation.bootstrap`); a challenger takes `champion` only beyond it. "
        "Steps: the training steps of the run; † marks a run the safety cap or `--max-steps` stopped "
        "before its step budget: shown, never registered."
    )


def _png(grid: np.ndarray, title: str) -> str:
    buffer = io.BytesIO()
    figures.image_grid(grid, buffer, title)
    return base64.b64encode(buffer.getvalue()).decode()


def _quality_figure(entries: list[Entry]) -> str:
    curves = {e.name: sorted(e.quality_curve) for e in entries if e.quality_curve}
    if not curves:
        return ""
    floor = next((e.metrics.get("fid") for e in entries if e.kind == "real"), None)
    buffer = io.BytesIO()
    figures.quality_curves(curves, floor, buffer)
    encoded = base64.b64encode(buffer.getvalue()).decode()
    return (
        "<h2>Time to quality</h2><p>FID on 2,000 samples, measured during training against the seconds "
        "spent in training steps on this machine (fewer samples than the table's FID, so higher).</p>"
        f'<img class="wide" alt="FID against minutes of training" src="data:image/png;base64,{encoded}">'
    )


def html_page(entries: list[Entry], primary: str, extractor: str) -> str:
    cards = []
    for entry in ranked(entries, primary):
        columns = TOY_COLUMNS if entry.kind == "toy" else IMAGE_COLUMNS
        rows = "".join(
            f"<tr><td>{html.escape(label)}</td><td>{_cell(entry, metric)}</td></tr>"
            for metric, label, _ in columns
            if metric in entry.metrics
        )
        if steps(entry):
            rows = f"<tr><td>steps</td><td>{html.escape(steps(entry))}</td></tr>" + rows
        image = (
            f'<img alt="samples of {html.escape(entry.name)}" '
            f'src="data:image/png;base64,{_png(entry.grid, entry.name)}">'
            if entry.grid is not None
            else ""
        )
        cards.append(
            f'<div class="card"><h2>{html.escape(entry.name)}</h2>'
            f'<p class="what">{html.escape(entry.description)}</p>{image}<table>{rows}</table>'
            f'<p class="run">{html.escape(entry.run_id or "")}</p></div>'
        )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>mnistgen leaderboard</title><style>"
        "body{font-family:sans-serif;margin:2em} .card{display:inline-block;vertical-align:top;margin:1em;"
        "padding:1em;border:1px solid #ccc;border-radius:6px} img{width:260px} td{padding:0 .6em}"
        "img.wide{width:700px} .run{color:#888;font-size:80%} .what{margin:0 0 .5em;max-width:260px}"
        "</style></head><body>"
        f"<h1>mnistgen leaderboard</h1><p>Ranked by {html.escape(primary)}; classifier version "
        f"{html.escape(extractor)}. The floor card is real training data measured the same way.</p>"
        + _quality_figure(entries)
        + "".join(cards)
        + "</body></html>\n"
    )


def metrics_by_variant(entries: list[Entry]) -> dict[str, dict[str, float | int | bool | None]]:
    """Every variant's scores (and `floor` for real data), with its steps and whether it reached its
    budget; non-finite scores become null. A re-scored champion is not a variant of this run: left out."""
    rows: dict[str, dict[str, float | int | bool | None]] = {}
    for entry in entries:
        if entry.rescored:
            continue
        row: dict[str, float | int | bool | None] = {
            k: round(float(v), 6) if np.isfinite(v) else None for k, v in entry.metrics.items()
        }
        if "steps" in entry.tags:
            row |= {"steps": int(entry.tags["steps"].split("/")[0]), "complete": entry.complete}
        rows["floor" if entry.kind == "real" else entry.name] = row
    return rows


def read_metrics(metrics_dir: Path) -> tuple[list[Entry], str]:
    """The files `write` leaves under `metrics/` read back as entries (scores and steps; no run ids or
    grids), with the classifier version they were measured with: what the docs' results page shows."""
    entries, extractors = [], set()
    for path in sorted(metrics_dir.glob("*.json")):
        values = json.loads(path.read_text())
        extractors.add(values.pop("extractor_version"))
        done, complete = values.pop("steps", None), values.pop("complete", True)
        scores = {k: float("nan") if v is None else float(v) for k, v in values.items()}
        kind = (
            "real"
            if path.stem == "floor"
            else "toy"
            if "wasserstein1" in scores
            else "reconstruction"
            if "reconstruction_mse" in scores
            else "adversarial"
        )
        tags = {} if done is None else {"steps": f"{done}/{done}"}  # the budget itself is not kept
        if not complete:
            tags["stopped_by"] = "cut short"
        name = FLOOR if kind == "real" else path.stem
        entries.append(Entry(name, None, kind, scores, tags=tags))
    if len(extractors) != 1:
        raise ValueError(
            f"{metrics_dir}: scores of {len(extractors)} classifier versions: {sorted(extractors)}"
        )
    return entries, extractors.pop()


def write(entries: list[Entry], primary: str, extractor: str, reports_dir: Path) -> tuple[Path, Path]:
    """The leaderboard as Markdown and HTML, and one metrics file per variant under `metrics/` (a row
    each in `dvc metrics show`).

    Every file is written beside its place first and then renamed into it: a full disk or a crash while
    writing leaves the previous reports as they were, and no stale file of a variant no longer evaluated
    stays among the new ones.

    Returns:
        The Markdown and HTML pages.
    """
    reports_dir.mkdir(parents=True, exist_ok=True)
    md, page = reports_dir / "leaderboard.md", reports_dir / "leaderboard.html"
    metrics_dir, partial = reports_dir / METRICS_DIR, reports_dir / f".{METRICS_DIR}.partial"
    pages = {md: markdown(entries, primary, extractor), page: html_page(entries, primary, extractor)}
    drafts = {path: path.with_name(f".{path.name}.partial") for path in pages}
    shutil.rmtree(partial, ignore_errors=True)
    try:
        partial.mkdir()
        for name, values in metrics_by_variant(entries).items():
            scores = {**values, "extractor_version": extractor}
            (partial / f"{name}.json").write_text(json.dumps(scores, indent=2) + "\n")
        for path, text in pages.items():
            drafts[path].write_text(text)
    except OSError:
        shutil.rmtree(partial, ignore_errors=True)
        for draft in drafts.values():
            if draft.is_file():
                draft.unlink()
        raise
    swap_in(partial, metrics_dir)
    for path, draft in drafts.items():
        draft.replace(path)
    return md, page
