"""The leaderboard's rules (ranking, marks for runs cut short, the metrics files) and the registry's guards,
as pure functions on hand-made rows."""

from __future__ import annotations

import math
from types import SimpleNamespace

from helpers.settings import registry_settings, settings

from mnistgen import registry
from mnistgen.evaluation.leaderboard import (
    DESCRIPTIONS,
    FLOOR,
    Entry,
    describe_entries,
    html_page,
    markdown,
    metrics_by_variant,
    ranked,
    steps,
)
from mnistgen.settings import Variants

GUARDS = registry_settings(primary_metric="fid", min_mode_entropy=0.8, min_memorisation_ratio=0.5)


def entry(name: str, fid: float, stopped_by: str = "completed", **fields: object) -> Entry:
    tags = {
        "variant": name,
        "stopped_by": stopped_by,
        "steps": "1500/1500" if stopped_by == "completed" else "854/1500",
    }
    return Entry(
        name, f"run-{name}", "adversarial", {"fid": fid, "kid": 1.0, "kid_std": 0.1}, tags=tags, **fields
    )


def test_ranking_puts_missing_and_nan_figures_last_then_the_floor_then_the_toy() -> None:
    rows = [
        entry("b", 20.0),
        entry("nan", math.nan),
        Entry("toy", "t", "toy", {"wasserstein1": 0.3}),
        Entry("real data (floor)", None, "real", {"fid": 0.8}),
        entry("a", 5.0),
    ]
    names = [e.name for e in ranked(rows, "fid")]
    assert names[:2] == ["a", "b"] and names[-2:] == ["real data (floor)", "toy"]


def test_a_run_cut_short_is_marked_and_its_metrics_file_says_so() -> None:
    cut, done = entry("cgan", 11.3, stopped_by="time cap"), entry("dcgan", 40.0)
    assert steps(done) == "1,500" and steps(cut) == "854/1,500 † time cap"
    board = markdown([cut, done], "fid", "abc")
    assert "| cgan |  | 854/1,500 † time cap |" in board and "never registered" in board
    files = metrics_by_variant([cut, done])
    assert files["cgan"]["complete"] is False and files["cgan"]["steps"] == 854
    assert files["dcgan"]["complete"] is True


def test_a_rescored_champion_is_shown_but_is_not_a_variant_of_this_run() -> None:
    champion = entry("cgan (champion v3)", 6.0, rescored=True)
    assert set(metrics_by_variant([entry("cgan", 5.0), champion])) == {"cgan"}


def test_each_row_says_what_its_variant_is_with_the_loss_its_settings_choose() -> None:
    assert set(DESCRIPTIONS) == set(Variants.names())
    rows = [entry("cgan", 5.0), entry("wgan_gp", 40.0), Entry(FLOOR, None, "real", {"fid": 0.8})]
    rows.append(entry("cgan (champion v3)", 6.0, rescored=True))
    describe_entries(rows, settings("smoke", "variants.cgan.loss=hinge").variants)
    board = markdown(rows, "fid", "abc")
    assert "| cgan | hinge GAN; transposed convolutions, projection discriminator; digit labels |" in board
    assert "| wgan_gp | Wasserstein, gradient penalty; transposed convolutions |" in board
    assert f"| {FLOOR} | MNIST's training images |" in board
    assert "| cgan (champion v3) |  |" in board, "a re-scored champion's settings are not today's"
    assert '<p class="what">Wasserstein, gradient penalty; transposed convolutions</p>' in html_page(
        rows, "fid", "abc"
    )
    describe_entries(rows, settings("smoke", "variants.cgan.loss=bce").variants)
    assert rows[0].description.startswith("non-saturating GAN;")


def run(stopped_by: str = "completed", **metrics: float) -> SimpleNamespace:
    values = {"eval/fid": 5.0, "eval/mode_entropy": 0.95, "eval/memorisation_ratio": 1.1, **metrics}
    tags = {
        "eval/extractor_version": "x",
        "kind": "adversarial",
        "stopped_by": stopped_by,
        "steps": "854/1500",
    }
    return SimpleNamespace(data=SimpleNamespace(metrics=values, tags=tags))


def test_registry_guards() -> None:
    assert registry.eligible(run(), GUARDS, "x") == (True, "")
    assert "cut short (time cap at step 854/1500)" in registry.eligible(run("time cap"), GUARDS, "x")[1]
    assert "not evaluated with classifier y" in registry.eligible(run(), GUARDS, "y")[1]
    assert "not finite" in registry.eligible(run(**{"eval/fid": math.nan}), GUARDS, "x")[1]
    assert "collapsed" in registry.eligible(run(**{"eval/mode_entropy": 0.1}), GUARDS, "x")[1]


def test_the_champion_moves_only_for_a_better_score_from_the_same_classifier() -> None:
    cfg = registry_settings(primary_metric="fid", direction="lower")
    best = registry.Candidate("run-b", "cgan", 5.0, "x")

    def champion(score: float, extractor: str = "x") -> SimpleNamespace:
        return SimpleNamespace(version="3", tags={"score": str(score), "extractor_version": extractor})

    assert registry.decide(best, None, cfg) == ("champion", "first registration: cgan with fid 5")
    assert registry.decide(best, champion(6.0), cfg) == (
        "champion",
        "cgan fid 5 beats champion v3 (6); no confidence interval was measured",
    )
    assert registry.decide(best, champion(4.0), cfg)[0] == "challenger"
    assert registry.decide(best, champion(5.0), cfg)[0] == "challenger", "a tie keeps the champion"
    alias, reason = registry.decide(best, champion(9.0, extractor="y"), cfg)
    assert alias == "challenger" and "not comparable" in reason
    higher = registry_settings(primary_metric="recall", direction="higher")
    assert registry.decide(best, champion(4.0), higher)[0] == "champion"


def test_a_challenger_takes_the_champion_only_beyond_its_bootstrap_interval() -> None:
    """FID 5.0 with interval [4.6, 5.5]: a champion at 5.2 lies inside it (sampling noise alone could
    give that gap), one at 5.8 outside; for a higher-is-better metric, the interval's lower end decides."""
    cfg = registry_settings(primary_metric="fid", direction="lower")
    best = registry.Candidate("run-b", "cgan", 5.0, "x", (4.6, 5.5))

    def champion(score: float) -> SimpleNamespace:
        return SimpleNamespace(version="3", tags={"score": str(score), "extractor_version": "x"})

    alias, reason = registry.decide(best, champion(5.2), cfg)
    assert alias == "challenger"
    assert reason == (
        "cgan fid 5 (bootstrap interval 4.6 to 5.5) is better than champion v3 (5.2) only within its "
        "interval, which sampling noise alone could give: champion kept"
    )
    assert registry.decide(best, champion(5.8), cfg) == (
        "champion",
        "cgan fid 5 (bootstrap interval 4.6 to 5.5) beats champion v3 (5.8) beyond its interval",
    )
    assert registry.decide(best, champion(4.9), cfg)[0] == "challenger", "worse: no interval needed"
    recall = registry.Candidate("run-b", "cgan", 0.8, "x", (0.78, 0.82))
    higher = registry_settings(primary_metric="recall", direction="higher")
    assert registry.decide(recall, champion(0.79), higher)[0] == "challenger"
    assert registry.decide(recall, champion(0.77), higher)[0] == "champion"


def test_the_interval_is_read_from_the_run_and_shown_on_the_leaderboard() -> None:
    evaluated = run(**{"eval/fid_ci_low": 4.5, "eval/fid_ci_high": 5.75})
    evaluated.info = SimpleNamespace(run_id="r1")
    evaluated.data.tags["variant"] = "cgan"
    best = registry.best_candidate([evaluated], GUARDS, "x")
    assert best.interval == (4.5, 5.75)
    entry = Entry("cgan", "r1", "adversarial", {"fid": 5.0, "fid_ci_low": 4.5, "fid_ci_high": 5.75})
    assert "| 5 [4.5, 5.75] |" in markdown([entry], "fid", "x")
