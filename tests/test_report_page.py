"""index.html: one static page that opens from disk, in a real headless Chromium.

The browser test needs Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them)
and selenium (in the ``test`` extra); without them it skips, naming what is missing. The static
checks (sections, no address outside the folder) run everywhere.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from recourse_bench.reports.data import ReportData
from recourse_bench.reports.report import write_report
from recourse_bench.store import to_frame

from .results_frames import make_results, row

CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
SECTIONS = (
    "overview",
    "results",
    "figures",
    "rankings",
    "tests",
    "compatibility",
    "not-ok",
    "provenance",
)


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    """A report of three methods on two datasets with a severity sweep and a skipped cell."""
    frame = make_results({}, severities=(0.0, 0.1, 0.2), seeds=2, draws=2)
    skipped = row("german", "mlp", "probe", 0, None, float("nan"), shift="retrain-seed",
                  severity=0.1, status="skipped", reason="needs gradients")  # fmt: skip
    results = to_frame([*frame.to_dict("records"), skipped])
    provenance = {"config_name": "demo", "git_revision": "abc123", "config": {"seeds": 2},
                  "versions": {"torch": "2.13.0"}, "machine": {"cpu_count": 2}}  # fmt: skip
    data = ReportData.build(results, title="demo <page>", provenance=[provenance])
    folder = tmp_path_factory.mktemp("report")
    write_report(data, folder)
    return folder


def test_the_page_has_every_section_and_nothing_from_outside_the_folder(report):
    text = (report / "index.html").read_text(encoding="utf-8")
    for section in SECTIONS:
        assert f'<section id="{section}">' in text
    assert "demo &lt;page&gt;" in text and "<page>" not in text  # escaped
    addresses = re.findall(r'(?:src|href)="([^"]+)"', text)
    assert addresses and all(not re.match(r"[a-z]+:", a) for a in addresses), addresses
    for address in addresses:
        if not address.startswith("#"):
            assert (report / address).is_file(), address
    assert "figures/cd-" in text and "abc123" in text and "needs gradients" in text
    assert "http://" not in text and "https://" not in text and "//cdn" not in text


@pytest.fixture(scope="module")
def browser():
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    if not Path(CHROMEDRIVER).is_file() or shutil.which("chromium") is None:
        pytest.skip("Debian's chromium and chromium-driver are not installed")
    options = webdriver.ChromeOptions()
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1000"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    from selenium.webdriver.chrome.service import Service

    try:
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    except Exception as exc:  # a driver that does not start (no display, a version mismatch)
        pytest.skip(f"headless chromium did not start: {str(exc).splitlines()[0]}")
    yield driver
    driver.quit()


def _column(driver, table: str, name: str) -> list[str]:
    script = (
        "const t = document.getElementById(arguments[0]);"
        "const i = Array.from(t.tHead.rows[0].cells)"
        ".findIndex(c => c.textContent === arguments[1]);"
        "return Array.from(t.tBodies[0].rows).filter(r => !r.hidden)"
        ".map(r => r.cells[i].textContent);"
    )
    return driver.execute_script(script, table, name)


def test_the_page_sorts_and_filters_in_chromium_with_no_error_and_no_request(
    report, browser, tmp_path
):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    browser.get((report / "index.html").as_uri())
    headers = browser.find_elements(By.CSS_SELECTOR, "#table-results thead th")
    mean = next(h for h in headers if h.text == "mean")
    mean.click()
    values = [float(v) for v in _column(browser, "table-results", "mean")]
    assert values == sorted(values) and len(values) > 10
    mean.click()
    assert [float(v) for v in _column(browser, "table-results", "mean")] == sorted(values)[::-1]
    assert mean.get_attribute("aria-sort") == "descending"

    menu = Select(browser.find_element(By.CSS_SELECTOR, "select[data-column='method']"))
    menu.select_by_visible_text("roar")
    assert set(_column(browser, "table-results", "method")) == {"roar"}
    metric = Select(browser.find_element(By.CSS_SELECTOR, "select[data-column='metric']"))
    metric.select_by_visible_text("cost-l1")
    shown = _column(browser, "table-results", "metric")
    assert set(shown) == {"cost-l1"} and len(shown) == 2  # roar's cost on the two datasets
    count = browser.find_element(By.CSS_SELECTOR, "#results .count").text
    assert count.startswith("2 of ")
    search = browser.find_element(By.CSS_SELECTOR, "#results input[type=search]")
    search.send_keys("adult")
    assert _column(browser, "table-results", "dataset") == ["adult"]

    shot = tmp_path / "index.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    errors = [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]
    assert errors == []
    requests = [
        json.loads(e["message"])["message"]["params"]["request"]["url"]
        for e in browser.get_log("performance")
        if '"Network.requestWillBeSent"' in e["message"]
    ]
    assert requests and all(url.startswith("file://") for url in requests), requests
    images = browser.execute_script(
        "return Array.from(document.images).map(i => [i.getAttribute('src'), i.naturalWidth]);"
    )
    assert images and all(width > 0 for _, width in images), images  # every figure loaded


def test_labels_are_escaped_and_infinite_values_sort_as_numbers():
    from recourse_bench.reports.html import _cell, _sort_key

    assert _sort_key(float("inf")) == "Infinity" and _sort_key(-float("inf")) == "-Infinity"
    assert _sort_key(0.25) == "0.25"
    assert _cell(float("nan")) == "<td></td>" and _cell(None) == "<td></td>"
    assert _cell('<b>"x"</b>') == "<td>&lt;b&gt;&quot;x&quot;&lt;/b&gt;</td>"


def test_a_hostile_method_label_is_text_on_the_page(tmp_path):
    label = '<img src=x onerror="alert(1)">'
    frame = make_results({}, methods=("wachter", label), seeds=2, draws=1)
    write_report(frame, tmp_path, formats=["png"])
    text = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert label not in text and "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in text
