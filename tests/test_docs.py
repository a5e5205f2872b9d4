"""The documentation: the site builds offline and strictly, its figures are the committed record's, the
README is short and its leaderboard generated, and nothing in the project narrates how its authors worked.
The site itself is opened in Chromium in test_pages.py."""

from __future__ import annotations

import html
import importlib.util
import json
import re
import statistics
import subprocess
from pathlib import Path

import pytest
from helpers.cli import build_docs
from helpers.paths import REPO

spec = importlib.util.spec_from_file_location("generate", REPO / "docs" / "generate.py")
generate = importlib.util.module_from_spec(spec)
spec.loader.exec_module(generate)

README_LINES = 250
# Where the project could narrate its authors' periods of work: every tracked text file.
NARRATION = re.compile(
    r"\b(?:(?:first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|eleventh|twelfth|"
    r"thirteenth|\d+(?:st|nd|rd|th)|this|that|next|earlier|later|previous|last|latest) session"
    r"|Continued \(|session \d+)",
    re.I,
)
WRITTEN_PAGES = sorted(p for p in (REPO / "docs").glob("*.md") if p.name not in ("experiments.md",))


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`mkdocs build --strict` (what `make docs` runs) into a temporary folder."""
    folder = tmp_path_factory.mktemp("site")
    build_docs(folder)
    return folder


def test_the_site_builds_strictly_with_every_page(site: Path) -> None:
    for page in ("index", "get-started", "results", "experiments", "changelog", "reference/cli"):
        assert (site / f"{page}.html").is_file(), page
    assert (site / generate.CHAMPION_IMAGE).read_bytes() == (REPO / "reports" / "champion.png").read_bytes()
    assert (site / "search" / "search_index.js").is_file(), "the offline plugin's search index"


def test_no_page_loads_anything_from_the_internet(site: Path) -> None:
    """Fonts, scripts and styles come with the site: no http(s) source or stylesheet link in any page."""
    remote = re.compile(r'<(?:script|link|img)[^>]+(?:src|href)="https?://', re.I)
    offenders = [p.name for p in site.rglob("*.html") if remote.search(p.read_text())]
    assert not offenders, offenders


def _numbers(cell: str) -> list[float]:
    return [float(n) for n in re.findall(r"-?\d[\d,]*(?:\.\d+)?(?:e-?\d+)?", cell.replace(",", ""))]


def _agrees(shown: float, value: float) -> bool:
    """`shown` is `value` as the pages write figures: three significant digits, or four decimals (KID)."""
    return shown in (float(f"{value:.3g}"), float(f"{value:.4f}"), float(f"{value:.2e}"))


def test_every_figure_on_the_results_page_is_the_committed_record(site: Path) -> None:
    """Each leaderboard cell on the built page (FID with its interval, recall, label accuracy, ...) equals
    the variant's figure in reports/metrics/*.json, to the digits shown."""
    page = (site / "results.html").read_text()
    from mnistgen.evaluation.leaderboard import IMAGE_COLUMNS

    columns = {label: metric for metric, label, _ in IMAGE_COLUMNS}
    table = page[page.index("<table>") : page.index("</table>")]
    head = [
        html.unescape(re.sub("<[^>]+>", "", c)).strip() for c in re.findall(r"<th[^>]*>(.*?)</th>", table)
    ]
    checked = 0
    for row in re.findall(r"<tr>(.*?)</tr>", table, re.S)[1:]:
        cells = [
            html.unescape(re.sub("<[^>]+>", "", c)).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row)
        ]
        name = cells[head.index("variant")]
        figures = json.loads(
            (REPO / "reports" / "metrics" / f"{'floor' if 'floor' in name else name}.json").read_text()
        )
        for label, cell in zip(head, cells, strict=True):
            metric = columns.get(label)
            if metric is None or cell == "–":
                continue
            shown = _numbers(cell)
            ends = [""] if metric != "kid" else ["", "_std"]
            ends = ["", "_ci_low", "_ci_high"] if f"{metric}_ci_low" in figures else ends
            for value, end in zip(shown, ends, strict=True):
                assert _agrees(value, figures[metric + end]), (name, label, cell, figures[metric + end])
                checked += 1
    assert checked > 100, f"only {checked} figures found on the results page"


def test_the_evaluation_time_in_the_tuning_log_is_the_benchmark_record(site: Path) -> None:
    """Each model's total in the tuning log's table of the evaluation's time is the median (and range) of
    its repeats in the benchmark's record, and so is the evaluation's own."""
    record = json.loads((REPO / generate.EVALUATION_TIME).read_text())
    page = html.unescape(re.sub("<[^>]+>", " ", (site / "experiments.html").read_text()))
    page = re.sub(r"\s+", " ", page)
    models = {name: runs for name, runs in record["seconds"].items() if name != "set-up"}
    assert {"dcgan", "cgan", "floor"} <= set(models), sorted(models)
    for name, runs in models.items():
        totals = [sum(run.values()) for run in runs]
        shown = f"{statistics.median(totals):.1f} ({min(totals):.1f} to {max(totals):.1f})"
        assert shown in page, (name, shown)
    in_all = record["in_all"]
    assert f"In all {statistics.median(in_all):.0f} s ({min(in_all):.0f} to {max(in_all):.0f})" in page


def test_the_xla_table_in_the_tuning_log_is_the_benchmark_record(site: Path) -> None:
    """Each variant's row of the tuning log's XLA table is its measurements in the benchmark's record:
    the medians of the plain and the XLA step, their ratio, and whether the XLA runs agreed."""
    record = json.loads((REPO / generate.XLA_CPU).read_text())
    page = html.unescape(re.sub("<[^>]+>", " ", (site / "experiments.html").read_text()))
    page = re.sub(r"\s+", " ", page)
    from mnistgen.settings import Variants

    assert set(record["variants"]) == set(Variants.names()), sorted(record["variants"])
    for variant, runs in record["variants"].items():
        plain, xla = statistics.median(runs["plain"]), statistics.median(runs["xla"])
        agreed = "same weights" if len(set(runs["xla_weights"])) == 1 else "weights differ"
        shown = rf"{variant} {plain:.4f} \([^)]*\) {xla:.4f} \([^)]*\) {xla / plain:.2f} {agreed}"
        assert re.search(shown, page), (variant, shown)


def test_the_tutorial_variants_goals_table_is_the_trials_record(site: Path) -> None:
    """Each tutorial variant's row in the tuning log holds the median and range of its trial's FIDs and
    recalls at seeds 0, 1 and 2 as benchmarks/trials.csv records them, and "yes" only if both goals are
    met."""
    page = html.unescape(re.sub("<[^>]+>", " ", (site / "experiments.html").read_text()))
    page = re.sub(r"\s+", " ", page)
    trials = generate.read_trials()
    for variant, (trial, adopted, fid_goal, recall_goal) in generate.TUTORIAL_VARIANT_GOALS.items():
        runs = [row for row in trials if row["trial"] == trial and row["seed"] in ("0", "1", "2")]
        assert runs, f"benchmarks/trials.csv has no run of {trial}"
        fids, recalls = sorted(float(r["fid"]) for r in runs), sorted(float(r["recall"]) for r in runs)

        def shown(values: list[float]) -> str:
            middle = f"{statistics.median(values):.3g}"
            return middle if len(values) == 1 else f"{middle} [{values[0]:.3g}, {values[-1]:.3g}]"

        row = f"{variant} {trial} {'yes' if adopted else 'no'} " + ", ".join(sorted(r["seed"] for r in runs))
        row += f" {shown(fids)} at most {fid_goal:g} {shown(recalls)}"
        met = statistics.median(fids) <= fid_goal and statistics.median(recalls) >= recall_goal
        misses = all(float(r["fid"]) > fid_goal or float(r["recall"]) < recall_goal for r in runs)
        verdict = ("yes" if met else "no") if len(runs) == 3 else "no: every" if misses else "not judged"
        assert f"{row} at least {recall_goal:g} {verdict}" in page, row


def test_each_curve_in_the_tuning_log_is_its_record(site: Path) -> None:
    """Every curve the tuning log shows (a trial's FID against its steps) is its file under
    benchmarks/records/curves/, point by point, and every such file is shown; a tutorial variant's curve
    is followed by where its goal lies (`goal_outlook`)."""
    page = html.unescape(re.sub("<[^>]+>", " ", (site / "experiments.html").read_text()))
    page = re.sub(r"\s+", " ", page)
    written = (REPO / "docs" / "experiments.md").read_text()
    records = sorted((REPO / generate.CURVES).glob("*.csv"))
    unshown = [path.name for path in records if f'<!-- curve name="{path.stem}" -->' not in written]
    assert records and not unshown, unshown
    for path in records:
        lines = path.read_text().splitlines()[1:]
        steps, seconds, fids = zip(*(line.split(",") for line in lines), strict=True)
        shown = " ".join(f"{int(step):,}" for step in steps)
        assert f"step {shown}" in page and "FID (2,000 samples) " + " ".join(fids) in page, path.name
        assert "seconds " + " ".join(seconds) in page, path.name
        goal = generate.TUTORIAL_VARIANT_GOALS.get(path.stem.split("-")[0])
        if goal:  # a tutorial variant's curve says where its goal lies
            curve = [(int(a), float(b), float(c)) for a, b, c in zip(steps, seconds, fids, strict=True)]
            assert generate.goal_outlook(curve, goal[2]) in page, path.name


def test_a_goal_outlook_extends_the_pace_of_the_curves_last_third() -> None:
    """From (600, 60) to (900, 120) the FID falls 15 in 300 steps, 0.05 a step: the goal of 15, 30 below
    the end, is 600 steps further, at step 1,500, 1.7 times the curve's 900 steps and 1500 x 120 / 900 s
    of steps (3 min); the middle third fell faster (0.1 a step), so that is the least."""
    curve = [(300, 30.0, 90.0), (600, 60.0, 60.0), (900, 120.0, 45.0)]
    said = generate.goal_outlook(curve, 15.0)
    assert "fell 15, 50 a thousand steps" in said and "reach 15 at step 1,500, 1.7 times" in said, said
    assert "about 3 minutes" in said and "needs at least that" in said, said
    steady = [(300, 30.0, 75.0), (600, 60.0, 60.0), (900, 120.0, 45.0)]  # no slower at the end
    assert "so that is no bound" in generate.goal_outlook(steady, 15.0)
    risen = [(300, 30.0, 90.0), (600, 60.0, 40.0), (900, 120.0, 45.0)]
    assert generate.goal_outlook(risen, 15.0) == (
        "The curve was lowest at step 600 (40) and ended above that, at 45: it gives no pace toward the "
        "goal of 15."
    )
    flat = [(300, 30.0, 90.0), (600, 60.0, 45.0), (900, 120.0, 45.0)]
    assert "did not fall" in generate.goal_outlook(flat, 15.0)
    assert generate.goal_outlook(curve, 50.0) == "The goal of 50 is reached by step 900 of this curve."


def test_the_readme_is_short_and_its_leaderboard_is_the_record() -> None:
    text = (REPO / "README.md").read_text()
    assert len(text.splitlines()) <= README_LINES
    block = generate.README_BLOCK.search(text)
    assert block and block[2] == generate.leaderboard_block(), (
        "run: .venv/bin/python docs/generate.py --readme"
    )
    for command in ("make pipeline", "make test", "MNISTGEN_MIRRORS=", "make mlflow-ui", "mnistgen sample"):
        assert command in text, command


def test_written_pages_type_no_figure_of_the_record() -> None:
    """A FID or recall typed into the README or a written page must be one of the record's (rounded as
    shown): figures of the published run come from generated pages only."""
    record = [
        value
        for path in (REPO / "reports" / "metrics").glob("*.json")
        for key, value in json.loads(path.read_text()).items()
        if isinstance(value, int | float) and key.startswith(("fid", "recall", "class_fid"))
    ]
    typed = re.compile(r"\b(FID|recall)\s+(?:of\s+)?(\d+\.\d+)")
    for path in [REPO / "README.md", *WRITTEN_PAGES]:
        text = generate.README_BLOCK.sub("", path.read_text())
        for found in typed.finditer(text):
            shown = float(found[2])
            assert any(_agrees(shown, value) for value in record), f"{path.name}: {found[0]!r}"


def test_nothing_in_the_project_narrates_its_authors_periods_of_work() -> None:
    tracked = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    texts = [
        name for name in tracked if name.endswith((".md", ".py", ".yaml", ".toml", ".yml", ".txt", ".csv"))
    ]
    found = [
        f"{name}:{number}: {line.strip()}"
        for name in texts
        if name != "tests/test_docs.py" and (REPO / name).is_file()
        for number, line in enumerate((REPO / name).read_text().splitlines(), 1)
        if NARRATION.search(line)
    ]
    assert not found, "\n".join(found[:20])


def test_every_setting_and_command_is_in_the_references() -> None:
    from mnistgen.config import flatten, load_params

    settings = generate.settings_reference()
    params = load_params(REPO)
    for path in flatten({k: v for k, v in params.items() if k not in ("profile", "profiles")}):
        depth = 2 if path.startswith("variants.") else 1
        group, key = ".".join(path.split(".")[:depth]), path.split(".", depth)[depth]
        assert f"## `{group}`" in settings and f"| `{key}` |" in settings, path
    cli = generate.cli_reference()
    for verb in ("data", "train", "params", "classifier", "evaluate", "register", "pipeline", "sample"):
        assert f"## `mnistgen {verb}`" in cli, verb
