"""Headless Chromium for the browser tests (Debian's `chromium` and `chromium-driver`, driven by Selenium;
nothing is downloaded). Screenshots go under `reports/screenshots/` (git-ignored) and are named in any
failure message, so a red test shows what the page looked like."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from helpers.paths import REPO

SCREENSHOTS = REPO / "reports" / "screenshots"
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
WAIT_SECONDS = 60


@contextmanager
def chromium() -> Iterator:
    """A headless Chromium with a profile of its own, quit (and the profile removed) at the end."""
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


def texts(driver, selector: str) -> list[str]:
    """The visible text of every element matching `selector`, read in one script: the apps render with
    React, Vue or bootstrap-table and may render again at any time, so kept element handles go stale."""
    return driver.execute_script(
        "return [...document.querySelectorAll(arguments[0])].map(e => e.innerText)", selector
    )
