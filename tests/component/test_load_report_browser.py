"""The load report opened as an on-call engineer would: Debian's chromium (headless), offline, from a file:// URL.

The browser can resolve no host (``--host-resolver-rules``) and has a proxy to nowhere, so anything the report
tried to fetch would fail and show as a SEVERE console entry. A screenshot is kept in reports/load-report.png.
"""

from __future__ import annotations

import base64
import shutil
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.load.report import render
from tests.load_results import synthetic_result

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = ROOT / "reports" / "load-report.png"
CHARTS = ("throughput", "latency", "error_ratio", "users")
WHY_MISSING = "chromium and chromium-driver are installed by scripts/test-tools.sh (make test)"

# Points each chart carries and the points the browser parsed in its polylines, with the drawn width of each.
DRAWN = """
return [...document.querySelectorAll('svg[data-chart]')].map(svg => {
  const lines = [...svg.querySelectorAll('polyline.series')];
  return {chart: svg.dataset.chart, declared: Number(svg.dataset.points),
          parsed: lines.reduce((n, p) => n + p.points.numberOfItems, 0),
          width: Math.max(0, ...lines.map(p => p.getBBox().width)),
          limits: svg.querySelectorAll('line.limit').length};
});
"""


@pytest.fixture(scope="module")
def browser() -> Iterator:
    chromium, chromedriver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and chromedriver):
        pytest.skip(f"no {'chromium' if not chromium else 'chromedriver'} on PATH: {WHY_MISSING}")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,900", "--host-resolver-rules=MAP * ~NOTFOUND",
                "--proxy-server=http://127.0.0.1:9", "--proxy-bypass-list=<-loopback>",
                "--no-first-run", "--disable-extensions", "--disable-background-networking"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # An explicit driver path: Selenium Manager never looks for (or downloads) one.
    driver = webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def severe(driver) -> list[str]:
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_a_network_fetch_would_show_as_a_console_error(browser, tmp_path):
    """The check below is only as good as the offline browser: a page that fetches something must fail it."""
    page = tmp_path / "fetches.html"
    page.write_text('<!DOCTYPE html><html><body><img src="https://example.com/pixel.png"></body></html>')
    browser.get(page.as_uri())
    deadline = time.monotonic() + 5
    errors = severe(browser)
    while not errors and time.monotonic() < deadline:
        time.sleep(0.1)
        errors = severe(browser)
    assert any("example.com" in message for message in errors), errors


def test_the_report_loads_offline_with_every_chart_drawn_and_a_screenshot_kept(browser, tmp_path):
    started = time.monotonic()
    report = tmp_path / "report.html"
    report.write_text(render(synthetic_result(60)), encoding="utf-8")
    severe(browser)  # empties the log of any earlier page
    browser.set_window_size(1280, 900)
    browser.get(report.as_uri())

    assert browser.execute_script("return document.readyState") == "complete"
    assert severe(browser) == []
    charts = {c["chart"]: c for c in browser.execute_script(DRAWN)}
    assert sorted(charts) == sorted(CHARTS)
    for name, chart in charts.items():
        assert chart["declared"] > 0 and chart["parsed"] == chart["declared"], chart
        assert chart["width"] > 100, f"{name}: its lines are {chart['width']} px wide"
    assert charts["error_ratio"]["limits"] == 1  # the error-ratio gate's limit is drawn
    gates = browser.execute_script(
        "return [...document.querySelectorAll('table.gates tbody tr')].map(r => r.cells[0].textContent + ':' + "
        "r.cells[3].textContent)")
    assert gates == ["error_ratio:pass", "p95_ms:fail", "min_rps:pass"]
    assert browser.execute_script("return document.querySelector('.verdict').dataset.verdict") == "fail"

    width, height = browser.execute_script(
        "return [document.documentElement.scrollWidth, document.documentElement.scrollHeight]")
    shot = browser.execute_cdp_cmd("Page.captureScreenshot", {  # the whole page, not only the window's part
        "format": "png", "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1}})
    png = base64.b64decode(shot["data"])
    SCREENSHOT.parent.mkdir(exist_ok=True)
    for path in (SCREENSHOT, tmp_path / "load-report.png"):
        path.write_bytes(png)
    assert png_size(SCREENSHOT.read_bytes()) == (width, height) and len(png) > 50_000, len(png)
    print(f"load report opened and checked in {time.monotonic() - started:.1f} s; screenshot {SCREENSHOT.name}")


def test_a_report_with_nothing_recorded_loads_with_its_placeholders(browser, tmp_path):
    report = tmp_path / "empty.html"
    report.write_text(render({"scenario": {"name": "nothing recorded"}}), encoding="utf-8")
    severe(browser)
    browser.get(report.as_uri())
    assert severe(browser) == []
    placeholders = browser.execute_script(
        "return [...document.querySelectorAll('[data-chart]')].map(e => e.dataset.chart + ':' + e.textContent)")
    assert placeholders == [f"{chart}:no data over time" for chart in CHARTS]
    assert browser.execute_script("return document.querySelector('.verdict').dataset.verdict") == "none"
