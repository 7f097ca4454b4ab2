"""The report in headless Chromium (Debian's chromium and chromium-driver, installed by `make`)."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import pyarrow as pa
import pytest

from disentune.reports.build import build_report, pareto_table
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
    # "performance" records the DevTools network events: every request the page makes
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(driver_path))
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def report_trials() -> pa.Table:
    """60 synthetic trials; trial 0 has the hostile id and the lowest fid (so it is on the front)."""
    rows = synthetic_trials(60, hostile=HOSTILE).to_pylist()
    rows[0]["fid"] = 1.0
    return pa.Table.from_pylist(rows, schema=synthetic_trials(1).schema)


def _anomaly_tables(run: Path) -> None:
    """The anomaly tables of the panels' unit tests, so every panel is drawn."""
    from disentune.anomaly.groups import GROUPS_TABLE
    from disentune.anomaly.runner import METRICS_TABLE, SCORES_TABLE
    from disentune.reports import schema
    from disentune.reports.anomaly_schema import ANOMALY_GROUPS
    from disentune.reports.storage import append_table

    from ..unit.reports.test_anomaly_panels import GROUPS, METRICS, _scores

    append_table(pa.Table.from_pylist(METRICS, schema=schema.ANOMALY_METRICS), str(run / METRICS_TABLE))
    append_table(pa.Table.from_pylist(_scores(), schema=schema.ANOMALY_SCORES), str(run / SCORES_TABLE))
    append_table(pa.Table.from_pylist(GROUPS, schema=ANOMALY_GROUPS), str(run / GROUPS_TABLE))


@pytest.fixture(scope="module")
def served_report(tmp_path_factory, report_trials):
    run = tmp_path_factory.mktemp("report") / "synthetic"
    write_table(report_trials, str(run / "trials.parquet"))
    write_table(synthetic_curves(report_trials), str(run / "curves.parquet"))
    _anomaly_tables(run)
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
    from disentune.reports.anomaly_panels import CAPTIONS

    images = browser.find_elements(By.TAG_NAME, "img")
    assert len(images) == 4 + len(CAPTIONS)  # the sweep's figures and the anomaly panels
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


def _wait(browser, condition, what):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, 5).until(lambda _: condition(), message=what)


def _in_view(browser, element_id) -> bool:
    """The element's top sits at the top of the viewport (where a fragment scrolls it)."""
    top = browser.execute_script("return document.getElementById(arguments[0]).getBoundingClientRect().top",
                                 element_id)
    return abs(top) < 5


def test_pareto_points_show_their_trial_link_to_their_sections_and_nothing_is_fetched(
        browser, served_report, report_trials):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    pareto = pareto_table(report_trials).to_pylist()
    by_number = {r["trial_number"]: r for r in report_trials.to_pylist()}
    knee = next(r["trial_number"] for r in pareto if r["knee"])
    dominated = next(r["trial_number"] for r in pareto if not r["on_front"])
    assert knee != 0 and by_number[0]["trial_id"] == HOSTILE

    browser.get_log("performance")  # drop what earlier tests loaded
    browser.get(served_report)
    points = browser.find_elements(By.CSS_SELECTOR, "#pareto-svg a.point")
    assert len(points) == len(pareto)
    tooltip = browser.find_element(By.ID, "pareto-tooltip")
    assert not tooltip.is_displayed()
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})",
                           browser.find_element(By.ID, "pareto-svg"))

    # hovering the knee shows its trial's number, objectives and parameters
    point = browser.find_element(By.CSS_SELECTOR, f'#pareto-svg a.point[data-trial="{knee}"]')
    ActionChains(browser).move_to_element(point).perform()
    _wait(browser, tooltip.is_displayed, "the tooltip did not appear")
    row = by_number[knee]
    text = tooltip.text
    assert text.startswith(f"#{knee} beta_tcvae") and "Pareto front, knee" in text
    for name in ("lambda_mi", "lambda_tc", "fid", "mig"):
        assert f"{name} {row[name]:.4g}" in text, (name, text)
    ARTIFACTS.mkdir(exist_ok=True)
    assert browser.save_screenshot(str(ARTIFACTS / "report-pareto.png"))

    # a hostile trial id is shown as text in the tooltip, and runs nothing
    hostile = browser.find_element(By.CSS_SELECTOR, '#pareto-svg a.point[data-trial="0"]')
    ActionChains(browser).move_to_element(hostile).perform()
    _wait(browser, lambda: HOSTILE in tooltip.text, "the hostile trial's tooltip")
    assert browser.execute_script("return window.pwned === undefined")
    ActionChains(browser).move_to_element(browser.find_element(By.TAG_NAME, "h1")).perform()
    _wait(browser, lambda: not tooltip.is_displayed(), "the tooltip did not hide")

    # clicking a point jumps to its model's section
    ActionChains(browser).move_to_element(point).click().perform()
    _wait(browser, lambda: browser.execute_script("return location.hash") == f"#trial-{knee}",
          "clicking the point did not jump")
    _wait(browser, lambda: _in_view(browser, f"trial-{knee}"), "the knee's section is not in view")
    section = browser.find_element(By.ID, f"trial-{knee}")
    assert browser.execute_script("return document.querySelector(':target').id") == f"trial-{knee}"
    assert "knee" in section.text and "loss_total" in section.text

    # a trials-table row links to its (compact) section
    link = browser.find_element(By.CSS_SELECTOR, f'#trials a[href="#trial-{dominated}"]')
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", link)
    assert link.text == by_number[dominated]["trial_id"]
    link.click()
    _wait(browser, lambda: browser.execute_script("return location.hash") == f"#trial-{dominated}",
          "the table link did not jump")
    _wait(browser, lambda: _in_view(browser, f"trial-{dominated}"), "the trial's section is not in view")
    section = browser.find_element(By.ID, f"trial-{dominated}")
    assert "dominated" in section.text and f"lambda_mi: {by_number[dominated]['lambda_mi']:.4g}" in section.text
    failed = next(n for n, r in by_number.items() if r["status"] != "ok")
    assert browser.find_elements(By.CSS_SELECTOR, f'#trials a[href="#trial-{failed}"]') == []

    # offline: the page fetched nothing but itself, and refers to nothing outside itself
    resources = browser.execute_script(
        "return performance.getEntriesByType('resource').map(function (e) { return e.name; })")
    assert all(name.startswith("data:") for name in resources), resources
    refs = browser.execute_script(
        "return Array.prototype.map.call(document.querySelectorAll('[src], [href]'),"
        " function (e) { return e.getAttribute('src') || e.getAttribute('href'); })")
    assert len(refs) > 100 and all(r.startswith(("data:", "#")) for r in refs), \
        [r for r in refs if not r.startswith(("data:", "#"))]
    requests = [m["params"]["request"]["url"] for m in
                (json.loads(e["message"])["message"] for e in browser.get_log("performance"))
                if m["method"] == "Network.requestWillBeSent"]
    assert served_report in requests  # the log does see requests
    assert all(u == served_report or u.startswith("data:") for u in requests), requests
    assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []


def test_the_subset_scanning_panels_are_shown(browser, served_report):
    """The creativity study's findings: every panel's figure is drawn in the page."""
    from disentune.reports.anomaly_panels import CAPTIONS

    browser.get(served_report)
    shown = {}
    for figure in browser.find_elements("css selector", "figure"):
        captions, images = (figure.find_elements("css selector", tag) for tag in ("figcaption", "img"))
        if captions and images:  # the interactive Pareto plot is an inline SVG
            shown[captions[0].text] = browser.execute_script(
                "return arguments[0].complete && arguments[0].naturalWidth", images[0])
    for key, caption in CAPTIONS.items():
        text = caption.format(x="fid", y="mig")
        assert shown.get(text, 0) > 100, (key, sorted(shown))
