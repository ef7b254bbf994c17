"""Headless Chromium for the browser tests: Debian's `chromium` and `chromium-driver` driven by
Selenium (the `browser` extra). Never downloads a browser or a driver (Selenium Manager is kept
offline by passing both paths). Without them the tests skip and say why; CI installs them
(.ci/run). Screenshots go to tests/browser/artifacts/ (git-ignored)."""

import os
import shutil
from pathlib import Path

import pytest

ARTIFACTS = Path(__file__).parent / "artifacts"


def _find(env: str, names: tuple[str, ...]) -> str | None:
    """The executable named by ``env`` (if set, and only it), else the first of ``names`` on PATH."""
    if os.environ.get(env):
        return shutil.which(os.environ[env])
    return next((p for p in map(shutil.which, names) if p), None)


@pytest.fixture(scope="session")
def browser():
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium not installed: pip install -e '.[browser]'")
    chromium = _find("SILICONSIM_CHROMIUM", ("chromium", "chromium-browser", "google-chrome"))
    driver_path = _find("SILICONSIM_CHROMEDRIVER", ("chromedriver",))
    if not chromium or not driver_path:
        pytest.skip("no headless browser: install Debian's chromium and chromium-driver "
                    "(apt-get install chromium chromium-driver), as .ci/run does")
    os.environ["SE_OFFLINE"] = "true"
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,1400"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    from selenium.webdriver.chrome.service import Service

    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=opts)
    driver.set_page_load_timeout(30)
    ARTIFACTS.mkdir(exist_ok=True)
    yield driver
    driver.quit()


def console_errors(driver) -> list[str]:
    """Console messages at error level since the last call (uncaught exceptions included)."""
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
