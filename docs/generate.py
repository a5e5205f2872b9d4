"""The pages of the documentation that are made, not written: the command-line reference (from the Typer
app), the settings reference (from params.yaml and the settings rules), the results (from the committed
reports and dvc.lock), the trial tables and the evaluation's time in the tuning log (from
benchmarks/trials.csv and benchmarks/records/) and the README's leaderboard block. docs/hooks.py hands
them to MkDocs; tests/test_docs.py holds the README to them.

    .venv/bin/python docs/generate.py --readme   # rewrite the README's generated block from the record
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import statistics
import sys
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
README_BLOCK = re.compile(r"(<!-- leaderboard:start.*?-->\n)(.*?)(<!-- leaderboard:end -->)", re.S)
README_TOP = 5  # variants shown in the README's leaderboard block
CHAMPION_IMAGE = "assets/champion.png"  # where the site carries reports/champion.png


# ---------------------------------------------------------------------------------------- command line


def cli_reference() -> str:
    """Every `mnistgen` command with its arguments and options, as the Typer app declares them."""
    import click
    import typer.main
    from typer.cli import get_docs_for_click

    from mnistgen.cli import app

    command = typer.main.get_command(app)
    body = get_docs_for_click(obj=command, ctx=click.Context(command), name="mnistgen", title="Command line")
    intro = (
        "Generated from the command-line app itself (`src/mnistgen/cli.py`); `mnistgen COMMAND --help` "
        "prints the same. Run the commands from the project root as `.venv/bin/mnistgen ...`.\n\n"
    )
    for name, sub in command.commands.items():  # each command's whole first line, not click's 45 characters
        body = body.replace(
            f"* `{name}`: {sub.get_short_help_str()}\n", f"* `{name}`: {sub.help.splitlines()[0]}\n", 1
        )
    title, rest = body.split("\n", 1)
    return f"{title}\n\n{intro}{rest.lstrip()}"


# ---------------------------------------------------------------------------------------- settings

KEY = re.compile(r"^(?P<indent>\s*)(?P<key>[A-Za-z0-9_]+):(?P<rest>.*)$")


def setting_comments(text: str) -> dict[str, str]:
    """Each setting's comment in params.yaml, by its dotted path: the comment on its line, else the comment
    lines right above it."""
    comments: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    above: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            above.append(stripped.lstrip("#").strip())
            continue
        found = KEY.match(line)
        if not found:
            above = []
            continue
        indent, key, rest = len(found["indent"]), found["key"], found["rest"]
        while stack and stack[-1][0] >= indent:
            stack.pop()
        path = ".".join([*(k for _, k in stack), key])
        value, _, inline = rest.partition(" #")
        comments[path] = inline.strip() or " ".join(above)
        above = []
        if not value.strip():
            stack.append((indent, key))
    return comments


def _meaning(path: str, comments: dict[str, str]) -> str:
    """A setting's comment; else that of the same setting of another variant (`variants.*.z_dim`), else
    its section's."""
    if comments.get(path):
        return comments[path]
    parts = path.split(".")
    if parts[0] == "variants" and len(parts) > 2:
        tail = ".".join(parts[2:])
        twin = next(
            (
                text
                for key, text in comments.items()
                if text and re.fullmatch(rf"variants\.[a-z0-9_]+\.{re.escape(tail)}", key)
            ),
            "",
        )
        if twin:
            return twin
    return next(
        (comments[p] for p in (".".join(parts[:n]) for n in range(len(parts) - 1, 0, -1)) if comments.get(p)),
        "",
    )


def _value(value: Any) -> str:
    return (
        "null"
        if value is None
        else yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()
    )


def settings_reference(root: Path = REPO) -> str:
    """Every setting of params.yaml: its default, what each profile sets, what it may be, what it does."""
    from mnistgen.config import SECTIONS, flatten, load_params
    from mnistgen.settings import rule_of

    params = load_params(root)
    comments = setting_comments((root / "params.yaml").read_text())
    profiles = {name: flatten(settings or {}) for name, settings in params["profiles"].items()}
    lines = [
        "# Settings",
        "",
        "Generated from `params.yaml` (its values and comments) and the rules every setting is checked "
        "against before anything runs (`src/mnistgen/settings.py`). A profile states only what it changes; "
        f"`profile:` (default `{params['profile']}`) or `--profile` picks one, and `mnistgen params VARIANT` "
        "prints what a training of VARIANT will use. `--set KEY.PATH=VALUE` changes one setting for one "
        "run.",
        "",
    ]
    for section in SECTIONS[:-1]:
        groups = (
            {f"variants.{name}": settings for name, settings in params["variants"].items()}
            if section == "variants"
            else {section: params[section]}
        )
        for group, settings in groups.items():
            lines += [f"## `{group}`", ""]
            if comments.get(group):
                lines += [comments[group], ""]
            lines += [f"| setting | default | {' | '.join(profiles)} | allowed | what it does |"]
            lines += ["|" + " --- |" * (len(profiles) + 4)]
            for path, value in flatten(settings, f"{group}.").items():
                rule = rule_of(path)
                overrides = [
                    f"`{_value(profiles[name][path])}`" if path in profiles[name] else "" for name in profiles
                ]
                meaning = _meaning(path, comments).replace("|", "\\|")
                lines.append(
                    f"| `{path.removeprefix(group + '.')}` | `{_value(value)}` | {' | '.join(overrides)} | "
                    f"{rule.what if rule else ''} | {meaning} |"
                )
            lines.append("")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------- results


def _minutes(seconds: float) -> str:
    return f"{int(seconds // 60)} min {seconds % 60:04.1f} s" if seconds >= 60 else f"{seconds:.1f} s"


def record_entries(root: Path = REPO) -> tuple[list[Any], str]:
    """The committed figures (reports/metrics/*.json) as leaderboard entries, each with what its variant
    is in the record's profile, and their classifier."""
    from mnistgen.config import load_project
    from mnistgen.evaluation.leaderboard import METRICS_DIR, describe_entries, read_metrics

    entries, extractor = read_metrics(root / "reports" / METRICS_DIR)
    profile = json.loads((root / "reports" / "pipeline_run.json").read_text())["profile"]
    describe_entries(entries, load_project(root, profile)[1].variants)
    return entries, extractor


def leaderboard_block(root: Path = REPO) -> str:
    """The README's block: the best variants of the committed record and the real-data floor."""
    from mnistgen.evaluation.leaderboard import image_table

    entries, _ = record_entries(root)
    columns = ("rank", "variant", "what it is", "steps", "FID", "precision", "recall", "label accuracy")
    table = [row.split(" | ") for row in image_table(entries, "fid", top=README_TOP, runs=False)]
    header = [cell.strip("| ") for cell in table[0]]
    keep = [header.index(column) for column in columns]
    rows = [[cells[i].strip("| ") for i in keep] for cells in table[2:]]
    lines = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    lines += ["| " + " | ".join(cells) + " |" for cells in rows]
    return "\n".join(lines) + "\n"


def results_page(root: Path = REPO) -> str:
    """The published run: where and how it ran, the time of each step, the champion's samples, every
    variant's figures (per digit too) and final losses: all read from the committed files."""
    from mnistgen.evaluation.leaderboard import image_table, legend, toy_table

    run = json.loads((root / "reports" / "pipeline_run.json").read_text())
    entries, extractor = record_entries(root)
    machine = run["machine"]
    data_md5 = yaml.safe_load((root / "data.dvc").read_text())["outs"][0]["md5"]
    lock = yaml.safe_load((root / "dvc.lock").read_text())
    trained = {name.removeprefix("train@") for name in lock["stages"] if name.startswith("train@")}
    registration = run["registration"]
    lines = [
        "# Results",
        "",
        "Generated from the committed record of the published run: `reports/metrics/*.json` (each "
        "variant's figures), `runs/*/metrics.json` (final losses), `reports/pipeline_run.json` (where, "
        "when and how long it ran), `reports/champion.png`, `data.dvc` and `dvc.lock`. `make pipeline` on "
        "a fresh clone reproduces it; `.venv/bin/dvc metrics diff` shows any difference.",
        "",
        f"- **Run**: `mnistgen pipeline` (profile `{run['profile']}`, seed {run['seed']}) on commit "
        f"`{run['commit'][:12]}`, {run['date']}.",
        f"- **Machine**: {machine['cpu']}, {machine['cores']} cores "
        f"({', '.join(machine['instruction_sets']) or 'no AVX2'}); Python {machine['python']}, TensorFlow "
        f"{machine['tensorflow']}. Figures are bit for bit the same on the same kind of CPU; another "
        "instruction set rounds differently (see the [tuning log](experiments.md)).",
        f"- **Data**: MNIST as `data.dvc` records it (md5 `{data_md5}`, the digest of the runs' dataset "
        f"inputs in MLflow); features from classifier `{extractor}`.",
        f"- **Stages**: `dvc.lock` records the classifier, the {len(trained)} trainings, the evaluation "
        "and the registration of this run; `.venv/bin/dvc status` after `make pipeline` says whether "
        "yours match.",
        f"- **Champion**: `{registration['variant']}` is `{registration['alias']}` of the registered model "
        f"`{registration['model']}`: {registration['reason']}.",
        "",
        "## Leaderboard",
        "",
        *image_table(entries, "fid", runs=False),
        "",
        *toy_table(entries, runs=False),
        "",
        legend(),
        "",
        "## The champion's samples",
        "",
        f"![64 samples of {registration['variant']}, seed 0]({CHAMPION_IMAGE})",
        "",
    ]
    conditional = [e for e in entries if "label_accuracy_0" in e.metrics]
    if conditional:
        lines += [
            "## Per digit",
            "",
            "Label accuracy: the share of a digit's samples the classifier reads as that digit. Per-class "
            "FID: a digit's samples against the real test images of that digit.",
            "",
            "| variant | figure | " + " | ".join(str(d) for d in range(10)) + " |",
            "|" + " --- |" * 12,
        ]
        for entry in conditional:
            for prefix, label in (("label_accuracy", "label accuracy"), ("class_fid", "per-class FID")):
                cells = [
                    f"{entry.metrics[f'{prefix}_{d}']:.3g}"
                    for d in range(10)
                    if f"{prefix}_{d}" in entry.metrics
                ]
                if len(cells) == 10:
                    lines.append(f"| {entry.name} | {label} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += ["## Time of each step", "", "| step | time |", "| --- | --- |"]
    for step, seconds in run["steps"].items():
        lines.append(f"| {step} | {_minutes(seconds)} |")
        if step.startswith("trainings"):
            lines += [f"| &nbsp;&nbsp;{part} | {_minutes(took)} |" for part, took in run["trainings"].items()]
    lines += [f"| **total** | **{_minutes(sum(run['steps'].values()))}** |", ""]
    lines += [
        "Wall-clock times of this machine: they vary with its load, never the figures (every run ends at "
        "its step budget).",
        "",
        "## Final losses",
        "",
        "| variant | losses at the last step |",
        "| --- | --- |",
    ]
    for path in sorted((root / "runs").glob("*/metrics.json")):
        losses = json.loads(path.read_text())
        lines.append(f"| {path.parent.name} | " + ", ".join(f"{k} {v:.4g}" for k, v in losses.items()) + " |")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------- trials

TRIAL_COLUMNS = (
    ("seed", "seed"),
    ("steps", "steps"),
    ("fid", "FID"),
    ("recall", "recall"),
    ("precision", "precision"),
    ("label_accuracy", "label accuracy"),
    ("worst_digit", "worst digit"),
    ("class_fid", "per-class FID"),
    ("seconds", "seconds"),
    ("machine", "CPU"),
)
MEDIAN_COLUMNS = ("fid", "recall", "label_accuracy", "worst_digit", "class_fid")


def read_trials(root: Path = REPO) -> list[dict[str, str]]:
    with (root / "benchmarks" / "trials.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def trials_table(round_: str, variant: str, root: Path = REPO) -> str:
    """One round's trials of one variant (every seed), then each trial's median over its seeds."""
    rows = [r for r in read_trials(root) if r["round"] == round_ and r["variant"] == variant]
    if not rows:
        raise ValueError(f"benchmarks/trials.csv has no trial of {variant} in round {round_}")
    shown = [(key, label) for key, label in TRIAL_COLUMNS if any(r[key] for r in rows)]
    lines = [
        "| trial | what it changes | " + " | ".join(label for _, label in shown) + " |",
        "|" + " --- |" * (len(shown) + 2),
    ]
    for row in rows:
        name = row["trial"] + (" (scratch)" if row["kind"] == "scratch" else "")
        cells = [row[key] or "–" for key, _ in shown]
        lines.append(f"| {name} | {row['changes']} | " + " | ".join(cells) + " |")
    by_trial: dict[tuple[str, str, str], list[dict[str, str]]] = {}  # a trial's runs on one CPU
    for row in rows:
        by_trial.setdefault((row["trial"], row["machine"], row["kind"]), []).append(row)
    seeded = {key: runs for key, runs in by_trial.items() if len({r["seed"] for r in runs}) >= 3}
    if seeded:
        columns = [key for key in MEDIAN_COLUMNS if any(r[key] for r in rows)]
        labels = dict(TRIAL_COLUMNS)
        lines += [
            "",
            "Median over its seeds (range in brackets), for the trials run on three or more:",
            "",
            "| trial | CPU | seeds | " + " | ".join(labels[key] for key in columns) + " |",
            "|" + " --- |" * (len(columns) + 3),
        ]
        for (trial, machine, _), runs in seeded.items():
            cells = []
            for key in columns:
                values = sorted(float(r[key]) for r in runs if r[key])
                cells.append(
                    f"{statistics.median(values):.4g} [{values[0]:.4g}, {values[-1]:.4g}]" if values else "–"
                )
            seeds = ", ".join(sorted({r["seed"] for r in runs}, key=int))
            lines.append(f"| {trial} | {machine} | {seeds} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


# The tutorials' variants' goals (the tuning log's round three), on the `cpu` profile's own metric, as
# medians of seeds 0, 1 and 2 within the time the variant trained before: variant -> (the trial shown,
# whether it is the variant's `cpu` setting or its best trial not adopted, FID at most, recall at least).
TUTORIAL_VARIANT_GOALS: dict[str, tuple[str, bool, float, float]] = {
    "dcgan": ("dcgan-ema0.995-lr1.6e-3-beta0", True, 15.0, 0.6),
    "conv_gan": ("conv_gan-gk3-b32-1600", True, 20.0, 0.6),
    "wgan_gp": ("wgan_gp-gk3-b32-c2-1250", True, 20.0, 0.6),
    "wgan": ("wgan-gk3-b64-500", True, 40.0, 0.5),
    "mlp_gan": ("mlp_gan-cpu", True, 40.0, 0.5),
    "autoencoder": ("autoencoder-z16-mix50", True, 30.0, 0.4),
}


def _spread(values: list[float]) -> str:
    """The median with the range in brackets, or the one value."""
    if len(values) == 1:
        return f"{values[0]:.3g}"
    return f"{statistics.median(values):.3g} [{min(values):.3g}, {max(values):.3g}]"


def tutorial_variants_table(root: Path = REPO) -> str:
    """Each tutorial variant against its goals: the median (range in brackets) of its trial's runs at
    seeds 0, 1 and 2 in benchmarks/trials.csv, whether that trial is its `cpu` setting, and whether both
    goals are met (judged on three seeds only)."""
    rows = read_trials(root)
    lines = [
        "| variant | trial | in `cpu` | seeds | FID | FID goal | recall | recall goal | met |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for variant, (trial, adopted, fid_goal, recall_goal) in TUTORIAL_VARIANT_GOALS.items():
        runs = [r for r in rows if r["trial"] == trial and r["seed"] in ("0", "1", "2")]
        seeds = ", ".join(sorted({r["seed"] for r in runs}))
        fids, recalls = [float(r["fid"]) for r in runs], [float(r["recall"]) for r in runs]
        if len(runs) == 3:
            met = statistics.median(fids) <= fid_goal and statistics.median(recalls) >= recall_goal
            verdict = "yes" if met else "no"
        elif all(f > fid_goal or r < recall_goal for f, r in zip(fids, recalls, strict=True)):
            verdict = "no: every run misses it"
        else:
            verdict = "not judged: fewer than three seeds"
        fid, recall = (_spread(values) if values else "–" for values in (fids, recalls))
        lines.append(
            f"| {variant} | {trial} | {'yes' if adopted else 'no'} | {seeds or '–'} | {fid} "
            f"| at most {fid_goal:g} | {recall} | at least {recall_goal:g} | {verdict} |"
        )
    return "\n".join(lines) + "\n"


CURVES = Path("benchmarks") / "records" / "curves"  # `benchmarks/tuning.py --curve TRIAL-sSEED --record FILE`


def curve_table(name: str, root: Path = REPO) -> str:
    """One trial's FID on 2,000 samples against its steps (and training seconds), from its record in
    benchmarks/records/curves/, as a table with the steps across; for a tutorial variant's trial, followed
    by how far its goal lies at the pace of the curve's last third (`goal_outlook`)."""
    with (root / CURVES / f"{name}.csv").open(newline="") as handle:
        points = list(csv.DictReader(handle))
    table = "\n".join(
        [
            "| step | " + " | ".join(f"{int(p['step']):,}" for p in points) + " |",
            "|" + " --- |" * (len(points) + 1),
            "| seconds | " + " | ".join(p["seconds"] for p in points) + " |",
            "| FID (2,000 samples) | " + " | ".join(p["fid"] for p in points) + " |",
        ]
    )
    goal = TUTORIAL_VARIANT_GOALS.get(name.split("-")[0])
    if goal is None:
        return table + "\n"
    curve = [(int(p["step"]), float(p["seconds"]), float(p["fid"])) for p in points]
    return table + "\n\n" + goal_outlook(curve, goal[2]) + "\n"


def goal_outlook(curve: list[tuple[int, float, float]], goal: float) -> str:
    """Where a FID goal lies on a curve of (step, training seconds, FID), said in a sentence: the straight
    line through the first point of the curve's last third (by steps) and its last point, extended to the
    goal.

    Where the curve fell more slowly over its last third than over its middle third, it is slowing, and
    the line reaches the goal sooner than the curve would: the steps it gives are then the fewest the goal
    could take. A curve that ends above an earlier low gives no pace toward the goal.

    Args:
        curve: the points in order of steps, as in a record under benchmarks/records/curves/.
        goal: the FID aimed at.

    Returns:
        The sentence, with the figures it is drawn from.
    """
    last_step, last_seconds, last_fid = curve[-1]
    if last_fid <= goal:
        return f"The goal of {goal:g} is reached by step {last_step:,} of this curve."
    low_step, _, low_fid = min(curve, key=lambda point: point[2])
    if low_fid < last_fid:
        return (
            f"The curve was lowest at step {low_step:,} ({low_fid:g}) and ended above that, at "
            f"{last_fid:g}: it gives no pace toward the goal of {goal:g}."
        )

    def first_from(share: float) -> tuple[int, float]:
        step, _, fid = next(point for point in curve if point[0] >= last_step * share)
        return step, fid

    (middle, middle_fid), (start, start_fid) = first_from(1 / 3), first_from(2 / 3)
    if start == last_step:
        return f"The curve has too few points for a pace toward the goal of {goal:g}."
    per_step = (start_fid - last_fid) / (last_step - start)
    if per_step <= 0:
        return f"Over its last third the FID did not fall: it gives no pace toward the goal of {goal:g}."
    needed = last_step + (last_fid - goal) / per_step
    minutes = needed * last_seconds / last_step / 60
    slowing = middle < start and per_step < (middle_fid - start_fid) / (start - middle)
    return (
        f"Toward the goal of {goal:g}: over its last third (steps {start:,} to {last_step:,}) the FID fell "
        f"{start_fid - last_fid:.3g}, {per_step * 1000:.3g} a thousand steps. At that pace it would reach "
        f"{goal:g} at step {needed:,.0f}, {needed / last_step:.1f} times this curve's steps (about "
        f"{minutes:.0f} minutes of training steps at its pace); "
        + (
            "it fell faster over its middle third, and as it slows, the goal needs at least that."
            if slowing
            else "it fell no faster over its middle third, so that is no bound."
        )
    )


# ---------------------------------------------------------------------------------------- benchmarks

EVALUATION_TIME = Path("benchmarks") / "records" / "evaluate_speed.json"  # benchmarks/evaluate_speed.py
# The table's columns: stages of the benchmark's record; the metrics are what is left of a model's time.
TIME_COLUMNS = (
    ("draw the samples", ("draw the samples",)),
    ("classifier reading", ("classifier reading",)),
    ("CAS", ("CAS: train and test",)),
    ("reconstruction", ("reconstruction error",)),
)


def _measured_on(record: dict[str, Any]) -> str:
    """Where and when a benchmark's record was measured, as a sentence ends it."""
    machine = record["machine"]
    instructions = ", ".join(machine["instruction_sets"]) or "no AVX2"
    return (
        f"on {machine['cpu']}, {machine['cores']} cores ({instructions}), Python {machine['python']}, "
        f"TensorFlow {machine['tensorflow']}, {record['date']}"
    )


def evaluation_time(root: Path = REPO) -> str:
    """Seconds of each model's evaluation, by stage, as `benchmarks/evaluate_speed.py --record` measured
    them: medians over the repeats, the total with its range, and the machine."""
    record = json.loads((root / EVALUATION_TIME).read_text())
    labels = [label for label, _ in TIME_COLUMNS]
    lines = [
        "| model | " + " | ".join(labels) + " | metrics and the rest | total |",
        "|" + " --- |" * (len(labels) + 3),
    ]
    for name, repeats in record["seconds"].items():
        if name == "set-up":
            continue
        parts = [
            [sum(run.get(stage, 0.0) for stage in stages) for run in repeats] for _, stages in TIME_COLUMNS
        ]
        totals = [sum(run.values()) for run in repeats]
        rest = [total - sum(part[i] for part in parts) for i, total in enumerate(totals)]
        cells = [f"{statistics.median(part):.1f}" if any(part) else "" for part in [*parts, rest]]
        shown = name if name != "floor" else "the floor (real images)"
        lines.append(
            f"| {shown} | " + " | ".join(cells) + f" | {statistics.median(totals):.1f} "
            f"({min(totals):.1f} to {max(totals):.1f}) |"
        )
    in_all = record["in_all"]
    lines += [
        "",
        f"In all {statistics.median(in_all):.0f} s ({min(in_all):.0f} to {max(in_all):.0f}), the median of "
        f"{record['repeats']} evaluations of {record['samples']:,} samples per model (profile "
        f"`{record['profile']}`), {_measured_on(record)}.",
    ]
    return "\n".join(lines) + "\n"


XLA_CPU = Path("benchmarks") / "records" / "xla_cpu.json"  # benchmarks/xla_cpu.py --record


def _seconds_spread(values: list[float]) -> str:
    """Seconds per step: the median, with the range over the repeats in brackets."""
    middle = f"{statistics.median(values):.4f}"
    return middle if len(values) == 1 else f"{middle} ({min(values):.4f} to {max(values):.4f})"


def xla_table(root: Path = REPO) -> str:
    """Each variant's train step without and with XLA on the CPU, as `benchmarks/xla_cpu.py --record`
    measured it: seconds per step (median and range over the repeats), the ratio of the medians, whether
    every XLA run ended with the same weights, and the machine."""
    record = json.loads((root / XLA_CPU).read_text())
    lines = [
        "| variant | s/step | s/step with XLA | XLA / plain | XLA runs |",
        "| --- | --- | --- | --- | --- |",
    ]
    for variant, runs in record["variants"].items():
        plain, xla = runs["plain"], runs["xla"]
        failed = [value for value in plain + xla if isinstance(value, str)]
        if failed:
            lines.append(f"| {variant} | | failed: {failed[0]} | | |")
            continue
        same = "same weights" if len(set(runs["xla_weights"])) == 1 else "weights differ"
        lines.append(
            f"| {variant} | {_seconds_spread(plain)} | {_seconds_spread(xla)} "
            f"| {statistics.median(xla) / statistics.median(plain):.2f} | {same} |"
        )
    lines += [
        "",
        f"Profile `{record['profile']}`, float32, the median of {record['steps']} timed steps per "
        f"measurement, {record['repeats']} measurements of each in processes of their own, "
        f"{_measured_on(record)}.",
    ]
    return "\n".join(lines) + "\n"


def update_readme(root: Path = REPO) -> bool:
    """Rewrite the README's leaderboard block from the record; returns whether it changed."""
    path = root / "README.md"
    text = path.read_text()
    if not README_BLOCK.search(text):
        raise SystemExit("README.md has no <!-- leaderboard:start --> ... <!-- leaderboard:end --> block")
    new = README_BLOCK.sub(lambda m: m[1] + leaderboard_block(root) + m[3], text)
    path.write_text(new)
    return new != text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readme", action="store_true", help="rewrite README.md's leaderboard block")
    args = parser.parse_args()
    if args.readme:
        print("README.md " + ("updated" if update_readme() else "already up to date"))
    else:
        parser.print_help(sys.stderr)


if __name__ == "__main__":
    main()
