"""The report in headless Chromium (Debian's chromium and chromium-driver, installed by `make`)."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest

from disentune.reports.build import build_report
from disentune.reports.serve import make_server
from disentune.reports.storage import write_table

from ..unit.reports.synthetic import synthetic_curves, synthetic_trials

pytestmark = pytest.mark.integration
HOSTILE = "<img src=x onerror=window.pwned=1><script>window.pwned=2</script>"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    assert chromium and driver_path, "Chromium is missing: `make test` installs chromium and chromium-driver"
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", "--disable-quic", "--window-size=1300,1000"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(driver_path))
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def served_report(tmp_path_factory):
    run = tmp_path_factory.mktemp("report") / "synthetic"
    trials = synthetic_trials(60, hostile=HOSTILE)
    write_table(trials, str(run / "trials.parquet"))
    write_table(synthetic_curves(trials), str(run / "curves.parquet"))
    build_report(str(run))
    server = make_server(str(run), 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/index.html"
    server.shutdown()
    server.server_close()


def _column(browser, name):
    from selenium.webdriver.common.by import By

    headers = [th.text.split(" ")[0] for th in browser.find_elements(By.CSS_SELECTOR, "#trials th")]
    col = headers.index(name)
    return [row.find_elements(By.TAG_NAME, "td")[col].text
            for row in browser.find_elements(By.CSS_SELECTOR, "#trials tbody tr")]


def test_report_loads_sorts_filters_and_keeps_hostile_names_as_text(browser, served_report):
    from selenium.webdriver.common.by import By

    browser.get(served_report)
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []
    assert browser.title == "disentune: synthetic"
    images = browser.find_elements(By.TAG_NAME, "img")
    assert len(images) == 4
    assert all(browser.execute_script("return arguments[0].naturalWidth", img) > 100 for img in images)

    # hostile strings from the data stay text: nothing ran, and the cell shows the literal string
    assert browser.execute_script("return window.pwned === undefined")
    assert HOSTILE in _column(browser, "trial_id")

    header = next(th for th in browser.find_elements(By.CSS_SELECTOR, "#trials th") if th.text.startswith("fid"))
    header.click()
    values = [float(v) for v in _column(browser, "fid") if v]
    assert values == sorted(values) and len(values) > 50
    header.click()
    values = [float(v) for v in _column(browser, "fid") if v]
    assert values == sorted(values, reverse=True)

    box = browser.find_element(By.ID, "filter")
    box.send_keys("failed")
    visible = [r for r in browser.find_elements(By.CSS_SELECTOR, "#trials tbody tr") if r.is_displayed()]
    assert 0 < len(visible) < 60 and all("failed" in r.text for r in visible)
    box.clear()

    ARTIFACTS.mkdir(exist_ok=True)
    assert browser.save_screenshot(str(ARTIFACTS / "report.png"))
    assert (ARTIFACTS / "report.png").stat().st_size > 10_000
