"""prefect.yaml on a real Prefect server with process workers for the `cpu` and `gpu` pools (127.0.0.1).

The `retrain` deployment runs on the `cpu` worker and submits each variant's training to the `gpu` pool as a
`train-variant` flow run; the trainings land in the project's MLflow store and a champion is registered.
Then the Prefect UI is opened in headless Chromium on that run (tests/chromium.py).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from chromium import chromium, shot, texts, wait_for
from helpers.cli import cli_env
from helpers.projects import pipeline_project
from helpers.servers import free_port, local_server
from helpers.workers import retrain_on_workers

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent

# The pipeline's wait for the workers, with no worker left on the pool: it must end at its timeout.
WAIT_WITHOUT_WORKERS = """
from flows.train_flow import TRAIN_DEPLOYMENT, train_on_workers
train_on_workers.fn(["mlp_gan"], "smoke", None, False, TRAIN_DEPLOYMENT, timeout_minutes=0.05, poll_seconds=1)
"""


@pytest.fixture
def prefect_server(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A Prefect server of its own; yields the environment its clients and workers need."""
    port = free_port()
    env = cli_env()
    env.update(
        PREFECT_HOME=str(tmp_path / "prefect-home"),
        PREFECT_API_URL=f"http://127.0.0.1:{port}/api",
        PREFECT_UI_API_URL=f"http://127.0.0.1:{port}/api",  # the UI asks the API here (else :4200)
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_WORKER_QUERY_SECONDS="2",
        PATH=f"{BIN}{os.pathsep}{env['PATH']}",
    )
    command = [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    health = f"http://127.0.0.1:{port}/api/health"
    with local_server(command, health, tmp_path / "prefect-server.log", env, seconds=90):
        yield env


def test_scheduled_pipeline_trains_on_the_gpu_pool(prefect_server: dict[str, str], tmp_path: Path) -> None:
    project, mirror = pipeline_project(tmp_path)
    env = prefect_server
    parameters = {"profile": "smoke", "variants": ["mlp_gan", "toy_gan_1d"], "mirrors": [str(mirror.folder)]}
    report = retrain_on_workers(project, env, tmp_path, parameters, schedule="0 3 * * 1")
    assert sorted(report["trainings"]) == [
        ["mlp_gan", "COMPLETED", "gpu"],
        ["toy_gan_1d", "COMPLETED", "gpu"],
    ]

    import mlflow

    store = f"sqlite:///{project / 'mlflow' / 'mlflow.db'}"
    client = mlflow.MlflowClient(tracking_uri=store, registry_uri=store)
    runs = client.search_runs(
        [client.get_experiment_by_name("mnistgen").experiment_id], "attributes.status = 'FINISHED'"
    )
    trained = {run.data.tags["variant"]: run for run in runs if "variant" in run.data.tags}
    assert set(trained) == {"mlp_gan", "toy_gan_1d"}
    assert all(run.data.tags["device"] == "CPU" for run in trained.values())  # no GPU here; it says so
    champion = client.get_model_version_by_alias("mnist-generator", "champion")
    assert champion.run_id == trained["mlp_gan"].info.run_id

    late = subprocess.run(
        [sys.executable, "-c", WAIT_WITHOUT_WORKERS],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert late.returncode == 1, late.stderr[-2000:]
    assert (
        "not finished after 0.05 min: mlp_gan" in late.stderr and "prefect worker start --pool" in late.stderr
    )

    _the_prefect_ui_shows_the_run(env["PREFECT_API_URL"].removesuffix("/api"), report)


def _the_prefect_ui_shows_the_run(ui: str, report: dict) -> None:
    """What a person checks in the Prefect UI: the `retrain` run completed with its subflows and task runs,
    and its leaderboard and champion artifacts rendered (the champion's image loads)."""
    with chromium() as browser:
        browser.get(f"{ui}/runs/flow-run/{report['id']}")

        def tab_text(tab: str) -> str:
            return "\n".join(texts(browser, f"#{tab}-content"))

        subflows = lambda: texts(browser, "#subflow-runs-content .state-list-item")  # noqa: E731
        shown = {}
        for tab, ready in (
            ("subflow-runs", lambda: {"mnist-data", "register"} <= {item.split()[0] for item in subflows()}),
            ("task-runs", lambda: re.search(r"(\d+) Task runs\s*\(\1 Completed\)", tab_text("task-runs"))),
        ):
            button = f"li.p-tab#{tab}"
            wait_for(
                browser, lambda b=button: browser.find_elements("css selector", b), "prefect-run", "the tabs"
            )
            browser.find_element("css selector", button).click()
            wait_for(browser, ready, f"prefect-{tab}", f"the {tab}, all completed")
            shown[tab] = shot(browser, f"prefect-{tab}")
        assert all("Completed" in item for item in subflows()), f"{subflows()}; see {shown['subflow-runs']}"

        browser.get(f"{ui}/artifacts/artifact/{report['artifacts']['champion']}")
        widths = "return [...document.images].filter(i => i.alt == 'champion').map(i => i.naturalWidth)"
        wait_for(browser, lambda: browser.execute_script(widths), "prefect-champion", "the champion's image")
        path = shot(browser, "prefect-champion")
        assert browser.execute_script(widths)[0] > 0, f"the champion's image did not load; see {path}"

        browser.get(f"{ui}/artifacts/artifact/{report['artifacts']['leaderboard']}")
        rows = lambda: texts(browser, "table tr")  # noqa: E731
        floor = lambda: any("real data (floor)" in row for row in rows())  # noqa: E731
        wait_for(browser, floor, "prefect-leaderboard", "the leaderboard's table")
        path = shot(browser, "prefect-leaderboard")
        assert any("mlp_gan" in row for row in rows()), f"no mlp_gan row: {rows()}; see {path}"
