"""The pages a person looks at, opened in headless Chromium (tests/chromium.py): the leaderboard page and
the MLflow UI after a smoke pipeline, the Data Docs after `mnistgen data` (the Prefect UI: test_deployments).
Each test saves a screenshot under `reports/screenshots/` (git-ignored), named in any failure message."""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from chromium import chromium, shot, texts, wait_for
from helpers.cli import build_docs, cli_env, run_cli
from helpers.mirror import serving
from helpers.paths import REPO
from helpers.projects import init_dvc_repo, pipeline_project, project_params, write_project
from helpers.servers import free_port, local_server

pytestmark = pytest.mark.slow

VARIANTS = ("mlp_gan", "cgan", "toy_gan_1d")
MIRROR_PASSWORD = "pw-of-the-mirror-7731"


@pytest.fixture(scope="module")
def browser() -> Iterator:
    with chromium() as driver:
        yield driver


@pytest.fixture(scope="module")
def pipeline_cli(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A smoke project after `mnistgen pipeline` on three variants (a GAN, a conditional GAN, the toy GAN;
    with the time-to-quality clock on), as a user runs it: data, classifier, trainings, evaluation,
    registration, under Prefect's temporary server; and what the command printed."""
    root = tmp_path_factory.mktemp("pages")
    overrides = {"profiles": {"smoke": {"train": {"quality_every_seconds": 1}}}}
    project, mirror = pipeline_project(root, overrides)
    # The data from a mirror that wants a password, given in its URL: the password must reach the
    # mirror and nothing else (see test_a_password_in_a_mirror_url_is_kept_nowhere).
    with serving(mirror.folder, ("alice", MIRROR_PASSWORD)) as server:
        done = run_cli(
            project,
            *("pipeline", "--profile", "smoke", "--variants", ",".join(VARIANTS), "--mirror", server.url),
            timeout=900,
            env={"PREFECT_HOME": str(root / "prefect-home")},
        )
    assert done.returncode == 0, done.stderr[-3000:]
    assert server.authorized == 4, "the four files came from the mirror that wants the password"
    return project, done.stdout + done.stderr


@pytest.fixture(scope="module")
def pipeline_run(pipeline_cli: tuple[Path, str]) -> Path:
    return pipeline_cli[0]


def test_the_pipeline_prints_its_steps_and_no_routine_noise(pipeline_cli: tuple[Path, str]) -> None:
    _, printed = pipeline_cli
    assert "[1/7]" in printed and "[7/7]" in printed and "Prefect UI:" in printed, printed[-3000:]
    for ui in ("MLflow UI:", "Prefect UI:"):  # each command runs as printed, in any shell and folder
        (line,) = [line for line in printed.splitlines() if line.startswith(ui)]
        program = Path(line.removeprefix(ui).split()[0])
        assert program.is_absolute() and os.access(program, os.X_OK), line
    routine = ("Finished in state Completed()", "View at ", "Beginning subflow run", "absl::InitializeLog")
    for noise in routine:
        assert noise not in printed, f"{noise!r} in the pipeline's output:\n{printed[-3000:]}"


def test_a_password_in_a_mirror_url_is_kept_nowhere(pipeline_cli: tuple[Path, str]) -> None:
    """Neither Prefect's database (flow runs' parameters, logs, artifacts), nor the MLflow store, nor any
    file of the project, nor what the pipeline printed holds the mirror's password."""
    project, printed = pipeline_cli
    assert MIRROR_PASSWORD not in printed
    stores = [project, project.parent / "prefect-home"]
    holding = [
        path
        for folder in stores
        for path in folder.rglob("*")
        if path.is_file() and MIRROR_PASSWORD.encode() in path.read_bytes()
    ]
    assert (project.parent / "prefect-home" / "prefect.db").is_file(), "Prefect's database was searched"
    assert not holding, f"the password is stored in {holding}"


def test_the_leaderboard_page_shows_every_variant_and_every_image_loads(browser, pipeline_run: Path) -> None:
    from selenium.webdriver.common.by import By

    browser.get((pipeline_run / "reports" / "leaderboard.html").as_uri())
    loaded = lambda: browser.execute_script("return document.readyState") == "complete"  # noqa: E731
    wait_for(browser, loaded, "leaderboard", "the leaderboard page")
    path = shot(browser, "leaderboard")
    cards = [heading.text for heading in browser.find_elements(By.CSS_SELECTOR, ".card h2")]
    assert set(cards) >= {*VARIANTS, "real data (floor)"}, f"cards {cards}; see {path}"
    said = {
        card.find_element(By.TAG_NAME, "h2").text: card.find_element(By.CSS_SELECTOR, ".what").text
        for card in browser.find_elements(By.CSS_SELECTOR, ".card")
    }
    assert said.get("mlp_gan") == "non-saturating GAN; MLPs, one hidden layer", f"{said}; see {path}"
    assert said.get("real data (floor)") == "MNIST's training images", f"{said}; see {path}"
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

    browser.set_window_size(2400, 1000)  # the table draws only the columns in view: show them all
    try:
        browser.get(experiment_page(mlflow_ui, _experiment_id(pipeline_run)))
        names = [f"{variant} · smoke · seed 42" for variant in VARIANTS]
        wait_for(
            browser,
            lambda: all(name in browser.page_source for name in names),
            "mlflow-experiment",
            f"the runs {names}",
        )
        path = shot(browser, "mlflow-experiment")
        headers = set(texts(browser, "[role=columnheader]"))
        assert set(VIEW_METRICS) <= headers, f"columns {sorted(headers)}; see {path}"
        text = browser.find_element("tag name", "body").text
        assert "Token usage" not in text and "Sort: eval/fid" in text, f"not the runs view; see {path}"
        fid = {
            v: json.loads((pipeline_run / "reports" / "metrics" / f"{v}.json").read_text())["fid"]
            for v in ("mlp_gan", "cgan")
        }
        shown = sorted(fid, key=lambda v: text.index(f"{v} · smoke · seed 42"))
        assert shown == sorted(fid, key=fid.get), f"rows {shown}, FID {fid}; see {path}"
        from mnistgen.tracking import data_version

        shown = f"mnist-train ({data_version(pipeline_run)[:12]}"  # a run's data, by its DVC version
        assert shown in text, f"no {shown}...) in the runs table's Dataset column; see {path}"
    finally:
        browser.set_window_size(1600, 1000)


def test_a_pipeline_run_is_one_row_that_expands_to_its_trainings(
    browser, pipeline_run: Path, mlflow_ui: str
) -> None:
    """In the runs table (newest first), the pipeline's run is one row; expanded, it lists the trainings
    it ran and its evaluation."""
    # As a new user opens it: the UI keeps the last sort (the leaderboard view's, which lists runs flat)
    # in the browser's storage, and a new `#` route alone does not restart the app.
    browser.get(mlflow_ui)
    browser.execute_script("window.localStorage.clear()")
    browser.get("about:blank")
    browser.get(
        f"{mlflow_ui}/#/experiments/{_experiment_id(pipeline_run)}/runs?workflowType=machine_learning"
    )
    parent = "pipeline · smoke · seed 42"
    children = [f"{variant} · smoke · seed 42" for variant in VARIANTS] + ["evaluation · smoke · classifier"]
    shown = lambda: "\n".join(texts(browser, "[role=row]"))  # noqa: E731
    wait_for(browser, lambda: parent in shown(), "mlflow-pipeline-run", "the pipeline's run")
    path = shot(browser, "mlflow-pipeline-run")
    assert not any(child in shown() for child in children), f"runs outside their pipeline run; see {path}"
    browser.execute_script(
        "[...document.querySelectorAll('[role=row]')].find(r => r.innerText.includes(arguments[0]))"
        ".querySelector('button[data-component-id*=runnamecellrenderer]').click()",
        parent,
    )
    expanded = lambda: all(child in shown() for child in children)  # noqa: E731
    wait_for(browser, expanded, "mlflow-pipeline-run-expanded", f"the runs {children} under it")
    shot(browser, "mlflow-pipeline-run-expanded")


def test_the_registered_model_shows_the_champion_on_its_version(
    browser, pipeline_run: Path, mlflow_ui: str
) -> None:
    registration = json.loads((pipeline_run / "reports" / "registration.json").read_text())
    version, variant = registration["version"], registration["variant"]
    browser.get(f"{mlflow_ui}/#/models/{registration['model']}")
    wait_for(browser, lambda: f"Version {version}" in browser.page_source, "mlflow-model", "the versions")
    path = shot(browser, "mlflow-model")
    rows = [text for text in texts(browser, "[role=row]") if re.search(rf"\bVersion {version}\b", text)]
    assert len(rows) == 1, f"rows naming version {version}: {rows}; see {path}"
    row = rows[0]
    assert "champion" in row, f"no champion alias on version {version}: {row!r}; see {path}"
    assert re.search(rf"variant\s*:\s*{variant}", row), f"{row!r}; see {path}"
    assert re.search(r"decision\s*:\s*first registration", row), f"{row!r}; see {path}"

    # The version's page shows its model card: how to sample it, how good it is, its limits.
    browser.get(f"{mlflow_ui}/#/models/{registration['model']}/versions/{version}")
    card = ("Sampling it", "How good", "Known limits", f"models:/{registration['model']}/{version}")
    shown = lambda: all(part in browser.page_source for part in card)  # noqa: E731
    wait_for(browser, shown, "mlflow-model-card", "the model card on the version's page")
    shot(browser, "mlflow-model-card")

    # Its logged model carries the training's last sample grid, which the artifact browser previews.
    import mlflow

    store = f"sqlite:///{pipeline_run / 'mlflow' / 'mlflow.db'}"
    source = (
        mlflow.MlflowClient(tracking_uri=store, registry_uri=store)
        .get_model_version(registration["model"], version)
        .source
    )
    model_id = source.rsplit("/", 1)[-1]
    browser.get(f"{mlflow_ui}/#/experiments/{_experiment_id(pipeline_run)}/models/{model_id}/artifacts")
    for entry in ("artifacts", "samples_final.png"):  # the folder, then the file in it
        wait_for(browser, lambda e=entry: _click_text(browser, e), "mlflow-model-grid", f"the entry {entry}")
    grid = (
        "return [...document.images].filter(i => i.alt == 'artifacts/samples_final.png')"
        ".map(i => i.naturalWidth)"
    )
    wait_for(
        browser, lambda: any(browser.execute_script(grid)), "mlflow-model-grid", "the sample grid's preview"
    )
    shot(browser, "mlflow-model-grid")


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
    # The parallel-coordinates plot first draws the first metric the runs share (a system metric, whose two
    # values may be equal); a user adds the FID to it by typing its name into the plot's metric picker. The
    # plot labels each axis with its name and the extremes of what it draws: here the two runs' FIDs.
    import mlflow
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{pipeline_run}/mlflow/mlflow.db")
    fids = [client.get_run(run).data.metrics["eval/fid"] for run in runs]
    picker = browser.find_element(
        By.XPATH, "//div[text()='Metrics:']/following-sibling::div[1]//input[@role='combobox']"
    )
    picker.find_element(By.XPATH, "./ancestor::div[contains(@class, 'select-selector')]").click()
    picker.send_keys("eval/fid")
    wait_for(browser, lambda: "eval/fid_ci_low" in browser.page_source, "mlflow-compare", "the metric picker")
    picker.send_keys(Keys.ENTER)
    labels_js = "return [...document.querySelectorAll('.js-plotly-plot text')].map(e => e.textContent)"
    labels = lambda: set(browser.execute_script(labels_js))  # noqa: E731 (SVG text: no innerText)
    drawn = {"eval/fid", *(f"{fid:.5f}" for fid in fids)}
    axis = f"the FID's axis from {fids[0]} to {fids[1]}"
    wait_for(browser, lambda: drawn <= labels(), "mlflow-compare", axis)
    shot(browser, "mlflow-compare")


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
    version = DataSettings.load(project).data_version

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


def _click_text(browser, text: str) -> bool:
    """Click the innermost element whose whole text is `text` (an entry of MLflow's artifact tree)."""
    return browser.execute_script(
        "const found = [...document.querySelectorAll('div')]"
        ".filter(e => e.children.length <= 1 && e.innerText && e.innerText.trim() == arguments[0]).pop();"
        "if (found) found.click(); return Boolean(found);",
        text,
    )


def _index_rows(browser) -> list[tuple[str, str]]:
    """The index's validation runs as (text, absolute link), read in one script (see `chromium.texts`)."""
    return [
        tuple(row)
        for row in browser.execute_script(
            "return [...document.querySelectorAll('#Validation-Results tr.clickable-row')]"
            ".map(r => [r.innerText, new URL(r.dataset.href, document.baseURI).href])"
        )
    ]


def test_the_docs_site_works_offline(browser, tmp_path: Path) -> None:
    """The site `make docs` builds, served on 127.0.0.1 with every other http(s) request blocked: the home
    page's champion image loads, the navigation leads to the results page and its leaderboard, and the
    search box answers from the site's own index."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    site = tmp_path / "site"
    build_docs(site)
    with serving(site) as server:
        browser.execute_cdp_cmd("Network.enable", {})
        browser.execute_cdp_cmd("Network.setBlockedURLs", {"urls": ["https://*"]})  # fonts, CDNs
        try:
            browser.get(f"{server.url}index.html")
            champion = lambda: browser.execute_script(  # noqa: E731
                "const i = document.querySelector('img[alt*=champion]'); return !!i && i.naturalWidth > 0"
            )
            wait_for(browser, champion, "docs-home", "the champion's image on the home page")
            shot(browser, "docs-home")
            browser.find_element(By.LINK_TEXT, "Results").click()
            wait_for(browser, lambda: "results.html" in browser.current_url, "docs-nav", "the results page")
            rows = texts(browser, "article table tr")
            assert any(row.startswith("1\t") for row in rows), f"see {shot(browser, 'docs-results')}"
            box = browser.find_element(By.CSS_SELECTOR, "input.md-search__input")
            box.click()
            box.send_keys("champion")
            found = lambda: bool(texts(browser, ".md-search-result__item"))  # noqa: E731
            wait_for(browser, found, "docs-search", "search results for 'champion'")
            box.send_keys(Keys.ESCAPE)
        finally:
            browser.execute_cdp_cmd("Network.setBlockedURLs", {"urls": []})
