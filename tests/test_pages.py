"""The pages a person looks at, opened in headless Chromium (Debian's `chromium` and `chromium-driver`,
driven by Selenium; nothing is downloaded): the leaderboard page and the MLflow UI after a smoke pipeline,
the Data Docs after `mnistgen data`.
Each test saves a screenshot under `reports/screenshots/` (git-ignored), named in any failure message."""

from __future__ import annotations

import json
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import (
    REPO,
    cli_env,
    free_port,
    init_dvc_repo,
    local_server,
    make_training_project,
    project_params,
    run_cli,
    write_project,
)

pytestmark = pytest.mark.slow

SCREENSHOTS = REPO / "reports" / "screenshots"
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
VARIANTS = ("mlp_gan", "cgan", "toy_gan_1d")
WAIT_SECONDS = 60


@pytest.fixture(scope="module")
def browser() -> Iterator:
    if not (Path(CHROMIUM).is_file() and Path(CHROMEDRIVER).is_file()):
        pytest.fail("no Chromium: `apt-get install chromium chromium-driver` (.ci/run does it)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    for flag in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",  # else it calls Google's hosts at every start
        "--no-first-run",
        "--window-size=1600,1000",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def pipeline_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A smoke project after classifier, three trainings (a GAN, a conditional GAN, the toy GAN; with the
    time-to-quality clock on), evaluation and registration."""
    overrides = {"profiles": {"smoke": {"train": {"quality_every_seconds": 1}}}}
    project = make_training_project(tmp_path_factory.mktemp("pages") / "project", overrides)
    for command in (("classifier",), *(("train", v) for v in VARIANTS), ("evaluate",), ("register",)):
        done = run_cli(project, *command, "--profile", "smoke")
        assert done.returncode == 0, f"{command}: {done.stderr[-3000:]}"
    return project


def shot(driver, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    driver.save_screenshot(str(path))
    return path


def wait_for(driver, condition: Callable[[], bool], name: str, what: str) -> None:
    """Wait until `condition()` holds (the app has rendered); else fail naming the screenshot."""
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not appear within {WAIT_SECONDS} s; see {shot(driver, name)}")
        time.sleep(0.5)


def test_the_leaderboard_page_shows_every_variant_and_every_image_loads(browser, pipeline_run: Path) -> None:
    from selenium.webdriver.common.by import By

    browser.get((pipeline_run / "reports" / "leaderboard.html").as_uri())
    loaded = lambda: browser.execute_script("return document.readyState") == "complete"  # noqa: E731
    wait_for(browser, loaded, "leaderboard", "the leaderboard page")
    path = shot(browser, "leaderboard")
    cards = [heading.text for heading in browser.find_elements(By.CSS_SELECTOR, ".card h2")]
    assert set(cards) >= {*VARIANTS, "real data (floor)"}, f"cards {cards}; see {path}"
    images = browser.find_elements(By.TAG_NAME, "img")
    broken = [image.get_attribute("alt") for image in images if not image.get_property("naturalWidth")]
    assert images and not broken, f"images that did not load: {broken}; see {path}"
    alts = [image.get_attribute("alt") for image in images]
    assert "FID against minutes of training" in alts, f"no time-to-quality figure; see {path}"
    assert {f"samples of {variant}" for variant in ("mlp_gan", "cgan")} <= set(alts), path


@pytest.fixture(scope="module")
def mlflow_ui(pipeline_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`mlflow ui` on the project's store, on a free 127.0.0.1 port."""
    url = f"http://127.0.0.1:{free_port()}"
    command = [
        str(Path(sys.executable).parent / "mlflow"),
        "ui",
        "--backend-store-uri",
        f"sqlite:///{pipeline_run / 'mlflow' / 'mlflow.db'}",
        "--host",
        "127.0.0.1",
        "--port",
        url.rsplit(":", 1)[1],
        "--workers",
        "1",
    ]
    log = tmp_path_factory.mktemp("mlflow-ui") / "ui.log"
    with local_server(command, f"{url}/health", log, cli_env(), cwd=pipeline_run):
        yield url


def _experiment_id(project: Path) -> str:
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{project}/mlflow/mlflow.db")
    experiment = client.get_experiment_by_name("mnistgen")
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    return experiment.experiment_id


def test_the_mlflow_experiment_opens_on_its_runs_ranked_by_fid(
    browser, pipeline_run: Path, mlflow_ui: str
) -> None:
    """The link the pipeline prints opens the runs table (not MLflow 3's GenAI overview), runs named by
    variant, profile and seed, the deciding metrics as columns, best FID first."""
    from mnistgen.tracking import VIEW_METRICS, experiment_page

    browser.get(experiment_page(mlflow_ui, _experiment_id(pipeline_run)))
    names = [f"{variant} · smoke · seed 42" for variant in VARIANTS]
    wait_for(
        browser,
        lambda: all(name in browser.page_source for name in names),
        "mlflow-experiment",
        f"the runs {names}",
    )
    path = shot(browser, "mlflow-experiment")
    headers = set(_texts(browser, "[role=columnheader]"))
    assert set(VIEW_METRICS) <= headers, f"columns {sorted(headers)}; see {path}"
    text = browser.find_element("tag name", "body").text
    assert "Token usage" not in text and "Sort: eval/fid" in text, f"not the runs view; see {path}"
    fid = {
        v: json.loads((pipeline_run / "reports" / "metrics" / f"{v}.json").read_text())["fid"]
        for v in ("mlp_gan", "cgan")
    }
    shown = sorted(fid, key=lambda v: text.index(f"{v} · smoke · seed 42"))
    assert shown == sorted(fid, key=fid.get), f"rows {shown}, FID {fid}; see {path}"


def test_the_registered_model_shows_the_champion_on_its_version(
    browser, pipeline_run: Path, mlflow_ui: str
) -> None:
    registration = json.loads((pipeline_run / "reports" / "registration.json").read_text())
    version, variant = registration["version"], registration["variant"]
    browser.get(f"{mlflow_ui}/#/models/{registration['model']}")
    wait_for(browser, lambda: f"Version {version}" in browser.page_source, "mlflow-model", "the versions")
    path = shot(browser, "mlflow-model")
    rows = [text for text in _texts(browser, "[role=row]") if re.search(rf"\bVersion {version}\b", text)]
    assert len(rows) == 1, f"rows naming version {version}: {rows}; see {path}"
    row = rows[0]
    assert "champion" in row, f"no champion alias on version {version}: {row!r}; see {path}"
    assert re.search(rf"variant\s*:\s*{variant}", row), f"{row!r}; see {path}"
    assert re.search(r"decision\s*:\s*first registration", row), f"{row!r}; see {path}"


def test_two_variants_open_side_by_side_in_the_compare_view(
    browser, pipeline_run: Path, mlflow_ui: str
) -> None:
    runs = [
        json.loads((pipeline_run / "runs" / variant / "run.json").read_text())["run_id"]
        for variant in ("mlp_gan", "cgan")
    ]
    experiment = _experiment_id(pipeline_run)
    browser.get(f"{mlflow_ui}/#/compare-runs?runs={json.dumps(runs)}&experiments={json.dumps([experiment])}")
    wait_for(browser, lambda: "Comparing 2 Runs" in browser.page_source, "mlflow-compare", "the compare view")
    wait_for(
        browser,
        lambda: browser.find_elements("css selector", ".js-plotly-plot"),
        "mlflow-compare",
        "the metric charts",
    )
    path = shot(browser, "mlflow-compare")
    text = browser.find_element("tag name", "body").text
    for variant in ("mlp_gan", "cgan"):
        assert f"{variant} · smoke · seed 42" in text, f"{variant}'s run is not shown; see {path}"


def test_the_data_docs_show_the_passed_validation_with_the_internet_cut_off(
    browser, tmp_path, mirror
) -> None:
    """Every script and style the Data Docs need is in the site (from the pinned npm packages), so with
    every http(s) request blocked the index still lists the validation runs, named by data version, and a
    run's page lists its expectations as passed."""
    from selenium.webdriver.common.by import By

    from mnistgen.data.prepare import DataSettings

    params = project_params(mirror.files)
    params["data"]["docs_assets"] = str(REPO / "datadocs" / "node_modules")
    project = write_project(tmp_path / "project", params)
    init_dvc_repo(project, tmp_path / "dvc-remote")
    done = run_cli(project, "data", "--mirror", str(mirror.folder))
    assert done.returncode == 0, done.stderr[-3000:]
    assert "load their scripts and styles from CDNs" not in done.stderr, done.stderr[-3000:]
    version = DataSettings.from_params(project, params).data_version

    browser.execute_cdp_cmd("Network.enable", {})
    browser.execute_cdp_cmd("Network.setBlockedURLs", {"urls": ["http://*", "https://*"]})
    try:
        browser.get((project / "reports" / "data_docs" / "index.html").as_uri())
        rows = lambda: _index_rows(browser)  # noqa: E731
        wait_for(browser, lambda: len(rows()) == 2, "data-docs-index", "the two validation runs")
        path = shot(browser, "data-docs-index")
        unloaded = browser.execute_script(
            "return [...document.querySelectorAll('link[rel=stylesheet]')].filter(l => !l.sheet)"
            ".map(l => l.href)"
        )
        assert not unloaded, f"stylesheets that did not load: {unloaded}; see {path}"
        scripts = browser.execute_script("return [typeof vegaEmbed, typeof jQuery.fn.bootstrapTable]")
        assert scripts == ["function", "function"], f"scripts that did not load: {scripts}; see {path}"
        icons = browser.execute_async_script(  # the status column's icons: Font Awesome's solid face
            "const done = arguments[0];"
            "document.fonts.load('900 16px \"Font Awesome 6 Free\"').then(f => done(f.length), () => done(0))"
        )
        assert icons, f"the status icons' font did not load; see {path}"
        runs = rows()
        assert all(version in text for text, _ in runs), f"runs not named {version}: {runs}; see {path}"
        assert "__none__" not in browser.page_source, path

        browser.get(runs[0][1])
        wait_for(browser, lambda: "Status:" in browser.page_source, "data-docs-run", "the validation run")
        path = shot(browser, "data-docs-run")
        text = " ".join(browser.find_element(By.TAG_NAME, "body").text.split())
        assert "Status: Succeeded" in text and "Unsuccessful Expectations 0" in text, f"see {path}"
        assert f"Validations / mnist_images / {version} /" in text, (
            f"the run is not named {version}; see {path}"
        )
        assert re.search(r"Must have exactly (100|50) rows", text), f"no row-count expectation; see {path}"
        for column in ("label_share", "pixel_max", "mean_intensity"):
            assert f"{column} Status Expectation" in text, f"no expectations on {column}; see {path}"
    finally:
        browser.execute_cdp_cmd("Network.setBlockedURLs", {"urls": []})


def _texts(browser, selector: str) -> list[str]:
    """The visible text of every element matching `selector`, read in one script: the apps render with
    React or bootstrap-table and may render again at any time, so kept element handles go stale."""
    return browser.execute_script(
        "return [...document.querySelectorAll(arguments[0])].map(e => e.innerText)", selector
    )


def _index_rows(browser) -> list[tuple[str, str]]:
    """The index's validation runs as (text, absolute link), read in one script (see `_texts`)."""
    return [
        tuple(row)
        for row in browser.execute_script(
            "return [...document.querySelectorAll('#Validation-Results tr.clickable-row')]"
            ".map(r => [r.innerText, new URL(r.dataset.href, document.baseURI).href])"
        )
    ]
