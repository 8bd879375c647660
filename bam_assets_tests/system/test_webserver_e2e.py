"""The UI as a person uses it: ``dagster dev`` with a fresh DAGSTER_HOME, files dropped into the
watched folder, the sensor ingesting them, a backfill through GraphQL, pages in headless Chromium.

Chromium and chromedriver come from Debian (``chromium``, ``chromium-driver``), driven by Selenium
with explicit paths so nothing is downloaded; ``.ci/run`` installs them and sets
``BAM_ASSETS_REQUIRE_BROWSER=1`` so that their absence fails CI instead of skipping the test.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bam_assets.orchestration.project_paths import PROJECT_DIR, PROJECT_INSTANCE_CONFIG
from bam_assets_tests.helpers import REAL_DATA, read_session, samtools_view

SMALL_REAL_FILES = [
    "umitools_paired.bam",
    "pysam_example_btag.sam",
    "modkit_supplementary_secondary.bam",
    "mosdepth_nanopore.bam",
]
FILE_COUNT = 20


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(condition: Callable[[], object], timeout: float, what: str) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(2)
    raise AssertionError(f"Timed out after {timeout:.0f} s waiting for {what}")


class DagsterDev:
    def __init__(self, port: int):
        self.url = f"http://127.0.0.1:{port}"

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        request = urllib.request.Request(
            f"{self.url}/graphql",
            data=json.dumps({"query": query, "variables": variables or {}}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            payload = json.loads(response.read())
        assert "errors" not in payload, payload
        return payload["data"]

    def is_up(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/server_info", timeout=5) as response:
                return response.status == 200
        except OSError:
            return False

    def partition_stats(self, asset: str) -> dict:
        data = self.graphql(
            """query ($path: [String!]!) {
                 assetNodeOrError(assetKey: {path: $path}) {
                   ... on AssetNode { partitionStats { numMaterialized numPartitions numFailed } }
                 }
               }""",
            {"path": [asset]},
        )
        return data["assetNodeOrError"]["partitionStats"]


@pytest.fixture
def dagster_dev(tmp_path: Path) -> Iterator[tuple[DagsterDev, Path, Path]]:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(PROJECT_INSTANCE_CONFIG, home / "dagster.yaml")
    watched = tmp_path / "watched"
    watched.mkdir()
    database = tmp_path / "e2e.duckdb"
    port = free_port()
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "BAM_ASSETS_WATCH_DIR": str(watched),
        "BAM_ASSETS_DB": str(database),
        "BAM_ASSETS_SENSOR_INTERVAL": "5",
    }
    dagster = shutil.which("dagster") or str(Path(os.sys.executable).parent / "dagster")
    with (tmp_path / "dagster_dev.log").open("w") as log:
        process = subprocess.Popen(
            [dagster, "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
            cwd=PROJECT_DIR,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        server = DagsterDev(port)
        try:
            wait_for(server.is_up, 120, "dagster dev to answer")
            yield server, watched, database
        finally:
            os.killpg(process.pid, signal.SIGINT)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@pytest.fixture
def browser() -> Iterator[object]:
    """Headless Debian Chromium driven by chromedriver (no driver or browser is downloaded)."""
    chromium, chromedriver = shutil.which("chromium"), shutil.which("chromedriver")
    if chromium is None or chromedriver is None:
        if os.environ.get("BAM_ASSETS_REQUIRE_BROWSER"):
            raise AssertionError("apt-get install chromium chromium-driver")
        pytest.skip("chromium/chromedriver are not installed; .ci/run installs them")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1400,900",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def open_page(driver, url: str, expected_text: str, target: Path) -> str:
    """Loads ``url``, dismisses Dagster's first-visit dialog like a person would, waits until
    ``expected_text`` shows, saves a screenshot and returns the page text."""
    from selenium.webdriver.common.by import By

    driver.get(url)

    def page_text() -> str:
        for button in driver.find_elements(By.XPATH, "//button[normalize-space()='Skip']"):
            button.click()
        text = driver.find_element(By.TAG_NAME, "body").text
        return text if expected_text in text else ""

    text = wait_for(page_text, 60, f"{expected_text!r} on {url}")
    time.sleep(1)
    driver.save_screenshot(str(target))
    return text


@pytest.mark.slow
def test_sensor_backfill_and_pages(dagster_dev, browser, tmp_path: Path):
    server, watched, database = dagster_dev
    names = []
    for index in range(FILE_COUNT):
        source = SMALL_REAL_FILES[index % len(SMALL_REAL_FILES)]
        name = f"lane{index % 2}/{index:02d}_{source}"
        (watched / name).parent.mkdir(exist_ok=True)
        shutil.copy(REAL_DATA / source, watched / name)
        names.append((name, source))

    wait_for(
        lambda: server.partition_stats("reads")["numMaterialized"] == FILE_COUNT,
        420,
        f"the sensor to ingest {FILE_COUNT} files",
    )
    assert server.partition_stats("reads") == {
        "numMaterialized": FILE_COUNT,
        "numPartitions": FILE_COUNT,
        "numFailed": 0,
    }

    launched = server.graphql(
        """mutation ($names: [String!]!) {
             launchPartitionBackfill(backfillParams: {
               partitionNames: $names, assetSelection: [{path: ["reads"]}, {path: ["flagstat"]}]
             }) {
               __typename
               ... on LaunchBackfillSuccess { backfillId }
               ... on PythonError { message }
             }
           }""",
        {"names": [name for name, _ in names]},
    )["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    status_query = """query ($id: String!) {
        partitionBackfillOrError(backfillId: $id) { ... on PartitionBackfill { status } }
    }"""

    def finished_status() -> str:
        status = server.graphql(status_query, {"id": launched["backfillId"]})
        status = status["partitionBackfillOrError"]["status"]
        return "" if status in {"REQUESTED", "CANCELING", "FAILING"} else status

    status = wait_for(finished_status, 600, "the backfill of 20 partitions to finish")
    assert status in {"COMPLETED", "COMPLETED_SUCCESS"}, status
    assert server.partition_stats("flagstat")["numMaterialized"] == FILE_COUNT

    pages = tmp_path / "screenshots"
    pages.mkdir()
    partitions_page = open_page(
        browser,
        f"{server.url}/assets/reads?view=partitions",
        "lane0/00_umitools_paired.bam",
        pages / "reads_partitions.png",
    )
    assert "Materialized (20)" in partitions_page
    flagstat_page = open_page(
        browser,
        f"{server.url}/assets/flagstat?view=events&partition=lane0/00_umitools_paired.bam",
        "with itself and mate mapped",
        pages / "flagstat_metadata.png",
    )
    assert "properly paired" in flagstat_page
    kept = Path(os.environ.get("BAM_ASSETS_SCREENSHOT_DIR", tmp_path))
    if kept != tmp_path:
        kept.mkdir(parents=True, exist_ok=True)
        for png in pages.glob("*.png"):
            shutil.copy(png, kept / png.name)

    with read_session(database) as session:
        counts = dict(
            session.connection.execute(
                "SELECT key, count(*) FROM reads GROUP BY key HAVING count(*) = "
                "count(DISTINCT rec_no)"
            ).fetchall()
        )
        stored_files = session.connection.execute("SELECT count(*) FROM files").fetchall()[0][0]
    expected = {}
    for name, source in names:
        text = samtools_view(REAL_DATA / source)
        expected[name] = text.count("\n")
    assert {key: counts.get(key, 0) for key in expected} == expected
    assert stored_files == FILE_COUNT
