"""MkDocs hooks: the generated pages (docs/generate.py) join the site at build time, never written into
docs/, and placeholders in the written pages become generated tables (the leaderboard's top, the tuning
log's trials, the tutorials' variants against their goals, trials' FID against steps, the evaluation's
time and XLA's on the CPU)."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

sys.path.insert(0, str(Path(__file__).parent))
import generate  # noqa: E402 - docs/ is not a package

LEADERBOARD = "<!-- leaderboard -->"  # the best variants of the record and the floor
EVALUATION_TIME = "<!-- evaluation-time -->"  # the evaluation's seconds per model and stage
XLA_CPU = "<!-- xla-cpu -->"  # each variant's train step with and without XLA on the CPU
TUTORIAL_VARIANTS = "<!-- tutorial-variants -->"  # the tutorials' variants against their goals
TRIALS = re.compile(r'<!-- trials round="(?P<round>[^"]+)" variant="(?P<variant>[^"]+)" -->')
CURVE = re.compile(r'<!-- curve name="(?P<name>[^"]+)" -->')  # a trial's FID against its steps


def on_files(files: Files, config: Any) -> Files:
    pages = {
        "reference/cli.md": generate.cli_reference(),
        "reference/settings.md": generate.settings_reference(),
        "results.md": generate.results_page(),
        "changelog.md": (generate.REPO / "CHANGELOG.md").read_text().replace("](docs/", "]("),
    }
    for uri, content in pages.items():
        files.append(File.generated(config, uri, content=content))
    files.append(
        File.generated(
            config, generate.CHAMPION_IMAGE, abs_src_path=str(generate.REPO / "reports" / "champion.png")
        )
    )
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    markdown = markdown.replace(LEADERBOARD, generate.leaderboard_block())
    if EVALUATION_TIME in markdown:
        markdown = markdown.replace(EVALUATION_TIME, generate.evaluation_time())
    if XLA_CPU in markdown:
        markdown = markdown.replace(XLA_CPU, generate.xla_table())
    if TUTORIAL_VARIANTS in markdown:
        markdown = markdown.replace(TUTORIAL_VARIANTS, generate.tutorial_variants_table())
    markdown = CURVE.sub(lambda m: generate.curve_table(m["name"]), markdown)
    return TRIALS.sub(lambda m: generate.trials_table(m["round"], m["variant"]), markdown)
