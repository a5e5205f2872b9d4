"""The model card: what a registered version of the generator is, how to call it, how good it is against
real data and where that holds, written on the version in the MLflow registry from the scores its run
carries, never typed. The registered model's own description says what the family is and how `champion`
is decided."""

from __future__ import annotations

import json
from typing import Any

MAX_CHARACTERS = 5000  # MLflow keeps a model version's description up to this length
MODEL_DESCRIPTION = (
    "Generators of 28x28 handwritten digits (MNIST) trained by mnistgen: GANs, VAEs and their "
    "class-conditional kin, one version per registration. Each version's description is its model card.\n\n"
    "**How `champion` is decided**: among the evaluated runs that reached their step budget and pass the "
    "guards (mode entropy and memorisation ratio at least `registry.min_mode_entropy` and "
    "`registry.min_memorisation_ratio`), the best by `registry.primary_metric` (FID, lower is better) is "
    "registered. It takes the alias `champion` only if it beats the champion measured with the same "
    "classifier by more than its sampling noise (the champion's score lies outside its bootstrap interval); "
    "otherwise it becomes `challenger`.\n\n"
    "**Using it**: `mnistgen sample --model models:/NAME@champion`, `mlflow.pyfunc.load_model(...)` with a "
    "DataFrame of `seed` (and `label`) columns, or `mlflow models serve`; one row per image, the same seed "
    "gives the same image."
)


def _score(metrics: dict[str, float], name: str) -> str:
    value = metrics.get(name)
    if value is None:
        return "–"
    low, high = metrics.get(f"{name}_ci_low"), metrics.get(f"{name}_ci_high")
    return f"{value:.3g} [{low:.3g}, {high:.3g}]" if low is not None and high is not None else f"{value:.3g}"


def card(
    name: str,
    version: str,
    alias: str,
    reason: str,
    run: Any,
    floor: dict[str, float],
    base: dict[str, str] | None = None,
) -> str:
    """The card of version `version` of `name`, made from its training run (its `eval/*` scores and
    tags), the real-data floor measured the same way, and the decision; `base`: the settings the variant
    has in params.yaml before any profile (flattened as the run logs them), to show what the run changed."""
    metrics = {k.removeprefix("eval/"): v for k, v in run.data.metrics.items() if k.startswith("eval/")}
    tags, params = run.data.tags, run.data.params
    variant = tags.get("variant", "?")
    conditional = "label_accuracy" in metrics
    uri = f"models:/{name}/{version}"
    digit = " --digit 7" if conditional else ""
    labels = ', "label": [7, 7]' if conditional else ""
    lines = [
        f"# {name} v{version}: {variant}",
        "",
        f"**{alias}**: {reason}.",
        "",
        f"A {'class-conditional' if conditional else 'unconditional'} generator ({variant}, "
        f"{tags.get('kind', '?')} model) of 28x28 digits in [0, 1]: one row per image, a `seed` each"
        + (" and the `label` (0-9) of the digit to draw." if conditional else "."),
        "",
        "## Sampling it",
        "",
        f"- Command line: `mnistgen sample --model {uri} --n 64 --out grid.png{digit}`",
        f'- Python: `mlflow.pyfunc.load_model("{uri}").predict(pd.DataFrame({{"seed": [0, 1]{labels}}}))`',
        f"- REST: `mlflow models serve -m {uri} --env-manager local -h 127.0.0.1 -p 5001`, then POST "
        '`{"dataframe_records": [{"seed": 0}]}` to `/invocations`',
        "",
        "## How good",
        "",
        f"{tags.get('eval/samples', '?')} samples against the MNIST test set, in the features of classifier "
        f"`{tags.get('eval/extractor_version', '?')}`; the floor is real training images measured the same "
        "way (brackets: 95% bootstrap intervals).",
        "",
        "| score | this model | real data (floor) |",
        "| --- | --- | --- |",
    ]
    shown = [("FID", "fid"), ("recall", "recall"), ("precision", "precision"), ("IS", "inception_score")]
    if conditional:
        shown += [("label accuracy", "label_accuracy"), ("worst digit", "label_accuracy_worst")]
        shown += [("per-class FID", "class_fid_mean"), ("CAS", "cas")]
    lines += [f"| {label} | {_score(metrics, key)} | {_score(floor, key)} |" for label, key in shown]
    per_digit = [metrics.get(f"label_accuracy_{d}") for d in range(10)]
    if all(value is not None for value in per_digit):
        lines += [
            "",
            "Label accuracy per digit: "
            + ", ".join(f"{d}: {value:.3f}" for d, value in enumerate(per_digit))
            + ".",
        ]
    lines += [
        "",
        "## What it was trained on",
        "",
        f"- Data: MNIST at DVC version `{tags.get('data_version', '?')}` (`data.dvc`).",
        f"- Code: commit `{tags.get('git_commit', '?')}`; profile `{tags.get('profile', '?')}`, seed "
        f"{tags.get('seed', '?')}.",
        f"- Training: {tags.get('steps', '?')} steps, {run.data.metrics.get('time/step_seconds', 0):.0f} s "
        f"in training steps on {tags.get('device', '?')} ({tags.get('precision', '?')}); MLflow run "
        f"`{run.info.run_id}`.",
    ]
    if base is not None:
        changed = {k: v for k, v in params.items() if k in base and str(base[k]) != v}
        if changed:
            lines.append(
                "- Settings other than the source tutorials' (params.yaml's base): "
                + ", ".join(f"`{k.removeprefix('variant.')}` {v}" for k, v in sorted(changed.items()))
                + "."
            )
    limits = []
    if per_digit and all(value is not None for value in per_digit):
        worst = min(range(10), key=lambda d: per_digit[d])
        limits.append(f"it draws the digit {worst} worst (label accuracy {per_digit[worst]:.3f})")
    class_fids = [metrics.get(f"class_fid_{d}") for d in range(10)]
    if all(value is not None for value in class_fids):
        worst = max(range(10), key=lambda d: class_fids[d])
        limits.append(f"its {worst}s are furthest from real ones (per-class FID {class_fids[worst]:.3g})")
    limits.append("its scores compare only with scores measured by the same classifier")
    lines += ["", "## Known limits", "", *(f"- {limit[0].upper()}{limit[1:]}." for limit in limits)]
    text = "\n".join(lines) + "\n"
    return text if len(text) <= MAX_CHARACTERS else text[: MAX_CHARACTERS - 20] + "\n\n(cut short)\n"


def floor_scores(experiment_tags: dict[str, str], tag: str) -> dict[str, float]:
    """The real-data floor's scores as the evaluation stored them on the experiment (none if not yet)."""
    stored = json.loads(experiment_tags.get(tag, "{}"))
    return stored.get("scores") or stored.get("figures", {})  # "figures": a store evaluated by 0.1.0
