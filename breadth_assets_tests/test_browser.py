"""What users see in the Dagster UI, in a real headless Chromium.

A demo universe is materialized with `breadth-assets run` on a temporary Dagster home, then
`dagster-webserver` serves it and Playwright (PyPI's package, driving Debian's
/usr/bin/chromium; never `playwright install`) opens the lineage, the `breadth` asset page with
its latest materialization's metadata and chart, and the Checks tab.

Screenshots land in `test-artifacts/`; with BREADTH_UPDATE_DOCS_SCREENSHOT=1 the chart one is
also copied to `docs/images/breadth-asset.png` for the README.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from breadth_assets.calendars import trading_days
from breadth_assets_tests.support import write_universe

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
PROJECT_ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = PROJECT_ROOT / "test-artifacts"
DOCS_SCREENSHOT = PROJECT_ROOT / "docs" / "images" / "breadth-asset.png"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
TICKERS = ["ALPHA", "BRAVO", "CHARLIE", "DELTA", "ECHO", "FOXTROT", "GOLF", "HOTEL"]
# Long enough for the chart to have an EMA 200 line and 52-week highs and lows.
HISTORY_DAYS = 300
STARTUP_TIMEOUT = 60
UI_TIMEOUT_MS = 30_000


def _require_browser() -> None:
    """On CI a missing browser is a failure; locally the test is skipped with the reason."""
    missing = []
    if not CHROMIUM.exists():
        missing.append(f"{CHROMIUM} is missing (apt-get install -y chromium chromium-driver)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("the playwright package is missing (pip install -e '.[dev]')")
    if missing:
        reason = "; ".join(missing)
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"browser test cannot run on CI: {reason}")
        pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM to the webserver's process group, SIGKILL what is left."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=10)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


def _wait_for_webserver(process: subprocess.Popen, url: str, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"dagster-webserver exited with {process.returncode}:\n{_tail(log)}")
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(f"{url}/server_info", timeout=2) as response,
        ):
            if response.status == 200:
                return
        time.sleep(0.5)
    pytest.fail(f"dagster-webserver did not answer within {STARTUP_TIMEOUT} s:\n{_tail(log)}")


def _tail(path: Path, chars: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:] or "(empty)"
    except FileNotFoundError:
        return "(no log file)"


def _breadth_check_names() -> list[str]:
    from breadth_assets.definitions import defs

    graph = defs().resolve_asset_graph()
    return sorted(key.name for key in graph.asset_check_keys if key.asset_key.path == ["breadth"])


@pytest.fixture
def deployment(tmp_path) -> dict[str, str]:
    """A fresh Dagster home with the demo universe materialized by the main job."""
    _require_browser()
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    shutil.copy(PROJECT_ROOT / "dagster_home" / "dagster.yaml", dagster_home / "dagster.yaml")
    today = dt.datetime.now(dt.UTC).date()
    days = trading_days("DEMO", today - dt.timedelta(days=HISTORY_DAYS * 2), today)
    start = days[-HISTORY_DAYS].date()
    universe = write_universe(tmp_path, TICKERS, start=start.isoformat())
    env = {
        **os.environ,
        "DAGSTER_HOME": str(dagster_home),
        "BREADTH_UNIVERSE": str(universe),
        "BREADTH_DUCKDB_PATH": str(tmp_path / "breadth.duckdb"),
    }
    result = subprocess.run(
        [str(BIN / "breadth-assets"), "run", "--tail", "1"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return env


def test_the_ui_shows_lineage_breadth_metadata_chart_and_checks(deployment, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    started = time.monotonic()
    ARTIFACTS.mkdir(exist_ok=True)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "webserver.log"
    with open(log, "w") as out:
        webserver = subprocess.Popen(
            [
                str(BIN / "dagster-webserver"),
                "-m",
                "breadth_assets.definitions",
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
            ],
            env=deployment,
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_for_webserver(webserver, url, log)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
            )
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 1000})
                page.set_default_timeout(UI_TIMEOUT_MS)

                # The market group's lineage: the three assets.
                page.goto(f"{url}/asset-groups/market", wait_until="domcontentloaded")
                expect(page.get_by_text("Global asset lineage").first).to_be_visible()
                for asset in ("raw_prices", "indicators", "breadth"):
                    expect(page.get_by_text(asset, exact=True).first).to_be_visible()
                _dismiss_community_dialog(page)
                page.screenshot(path=ARTIFACTS / "ui-lineage.png")

                # The breadth asset: the latest materialization's metadata.
                page.goto(f"{url}/assets/breadth", wait_until="domcontentloaded")
                expect(page.get_by_text("last_days", exact=True).first).to_be_visible()
                _dismiss_community_dialog(page)
                table = page.locator("tr", has_text="last_days").last
                expect(table).to_contain_text("McCl. osc")
                expect(table.locator("table tbody tr")).to_have_count(10)
                table.scroll_into_view_if_needed()
                page.screenshot(path=ARTIFACTS / "ui-breadth-metadata.png")

                # The chart: markdown with a data-URI PNG, opened from its metadata row.
                chart_row = page.locator("tr", has_text="chart").last
                chart_row.get_by_text("[Show Markdown]").click()
                image = page.locator('img[src^="data:image/png"]').first
                expect(image).to_be_visible()
                page.wait_for_function(
                    "() => [...document.images].some("
                    "i => i.src.startsWith('data:image/png') && i.complete && i.naturalWidth > 0)"
                )
                natural = image.evaluate("i => [i.naturalWidth, i.naturalHeight]")
                box = image.bounding_box()
                assert natural == [900, 700], natural
                assert box is not None and box["width"] > 300 and box["height"] > 200, box
                page.wait_for_timeout(1000)  # the dialog fades in
                page.screenshot(path=ARTIFACTS / "ui-breadth-chart.png")
                if os.environ.get("BREADTH_UPDATE_DOCS_SCREENSHOT") == "1":
                    DOCS_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy(ARTIFACTS / "ui-breadth-chart.png", DOCS_SCREENSHOT)
                page.keyboard.press("Escape")

                # The Checks tab.
                page.goto(f"{url}/assets/breadth?view=checks", wait_until="domcontentloaded")
                expect(page.get_by_role("tab", name="Checks").first).to_be_visible()
                checks = _breadth_check_names()
                for name in checks:
                    # A long name shows middle-truncated; its full text is the row's title.
                    expect(page.locator(f'[title="{name}"]').first).to_be_visible()
                page.screenshot(path=ARTIFACTS / "ui-breadth-checks.png")
            finally:
                browser.close()
    finally:
        _stop(webserver)
    print(f"browser test took {time.monotonic() - started:.1f} s after materializing")
    if not checks:
        pytest.skip("the breadth asset defines no asset checks yet; the Checks tab is there")


def _dismiss_community_dialog(page) -> None:
    """The first visit shows a 'Join the Dagster community' dialog over the page."""
    skip = page.get_by_role("button", name="Skip")
    with contextlib.suppress(Exception):
        skip.wait_for(state="visible", timeout=3000)
        skip.click()
