"""The UI as a person uses it: ``make dev`` (as the README says) with a fresh DAGSTER_HOME, files
dropped into the watched folder, the sensor ingesting them and their summaries appearing without
a click, a backfill through GraphQL, the pictures and numbers of the summaries in headless
Chromium, checked against the stored tables.

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
import sys
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


def backfill_status(server: DagsterDev, backfill_id: str) -> str:
    """The backfill's final status, or "" while it runs."""
    status = server.graphql(
        """query ($id: String!) {
             partitionBackfillOrError(backfillId: $id) { ... on PartitionBackfill { status } }
           }""",
        {"id": backfill_id},
    )["partitionBackfillOrError"]["status"]
    return "" if status in {"REQUESTED", "CANCELING", "FAILING"} else status


@pytest.fixture
def dagster_dev(tmp_path: Path) -> Iterator[tuple[DagsterDev, Path, Path]]:
    """``make dev`` with an empty DAGSTER_HOME: it must apply the project's dagster.yaml."""
    home = tmp_path / "dagster_home"
    watched = tmp_path / "watched"
    watched.mkdir()
    database = tmp_path / "e2e.sqlite"
    port = free_port()
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "BAM_ASSETS_WATCH_DIR": str(watched),
        "BAM_ASSETS_DB": str(database),
        "BAM_ASSETS_SENSOR_INTERVAL": "5",
    }
    venv = Path(sys.executable).parent.parent
    with (tmp_path / "dagster_dev.log").open("w") as log:
        process = subprocess.Popen(
            ["make", "--no-print-directory", "dev", f"VENV={venv}", f"DAGSTER_PORT={port}"],
            cwd=PROJECT_DIR,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        server = DagsterDev(port)
        try:
            wait_for(server.is_up, 180, "make dev to answer")
            assert (home / "dagster.yaml").read_text() == PROJECT_INSTANCE_CONFIG.read_text()
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


PER_FILE_SUMMARIES = ("flagstat", "idxstats", "read_stats", "read_distributions")
PICTURES = {
    "quality per cycle",
    "insert size",
    "GC content",
    "read length",
    "mapping quality",
    "coverage",
}
PAIRED_KEY = "lane0/00_umitools_paired.bam"


def show_markdown_dialogs(driver, target: Path, prefix: str) -> dict[str, dict]:
    """Opens every '[Show Markdown]' dialog of the page (Dagster shows long Markdown there), and
    returns, by image title, the image's natural width (0: not loaded) and the dialog's text;
    saves a screenshot of each dialog with an image."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    link_xpath = "//*[normalize-space(text())='[Show Markdown]']"
    found = {}
    for index in range(len(driver.find_elements(By.XPATH, link_xpath))):
        link = driver.find_elements(By.XPATH, link_xpath)[index]
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", link)
        link.click()

        def dialog_images() -> tuple[list] | None:
            """The dialog's images once it shows and they finished loading (a table: none)."""
            if not driver.find_elements(By.CSS_SELECTOR, ".bp5-dialog .dagster-markdown"):
                return None
            images = driver.execute_script(
                "return Array.from(document.querySelectorAll('.bp5-dialog .dagster-markdown img'))"
                ".map(i => ({alt: i.alt, complete: i.complete, width: i.naturalWidth}));"
            )
            return (images,) if all(i["complete"] for i in images) else None

        (images,) = wait_for(dialog_images, 60, f"dialog {index} on {prefix}")
        time.sleep(1)  # the dialog fades in
        text = driver.find_element(By.CSS_SELECTOR, ".bp5-dialog").text
        for image in images:
            name = image["alt"].replace(" ", "_")
            driver.save_screenshot(str(target / f"{prefix}_{name}.png"))
            found[image["alt"]] = {"width": image["width"], "text": text}
        ActionChains(driver).send_keys(Keys.ESCAPE).perform()
        wait_for(lambda: not driver.find_elements(By.CSS_SELECTOR, ".bp5-dialog"), 30, "the dialog")
    return found


@pytest.mark.slow
def test_dropped_files_get_summaries_and_pictures_unattended(dagster_dev, browser, tmp_path: Path):
    server, watched, database = dagster_dev
    names = []
    for index in range(FILE_COUNT):
        source = SMALL_REAL_FILES[index % len(SMALL_REAL_FILES)]
        name = f"lane{index % 2}/{index:02d}_{source}"
        (watched / name).parent.mkdir(exist_ok=True)
        shutil.copy(REAL_DATA / source, watched / name)
        names.append((name, source))

    # No launch, no click: the sensor's runs ingest each file and compute its summaries. Twenty
    # runs of five steps, at most four at a time, one writing step at a time: 2-4 minutes on two
    # idle CPUs; the bound allows for a loaded machine.
    everything = ("reads", *PER_FILE_SUMMARIES)
    wait_for(
        lambda: all(server.partition_stats(a)["numMaterialized"] == FILE_COUNT for a in everything),
        900,
        f"the sensor to ingest and summarize {FILE_COUNT} files",
    )
    for asset in everything:
        assert server.partition_stats(asset) == {
            "numMaterialized": FILE_COUNT,
            "numPartitions": FILE_COUNT,
            "numFailed": 0,
        }, asset

    # A backfill from the UI still works (in process, like every run).
    backfilled = [name for name, _ in names[:4]]
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
        {"names": backfilled},
    )["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    status = wait_for(
        lambda: backfill_status(server, launched["backfillId"]),
        600,
        "the backfill of 4 partitions to finish",
    )
    assert status in {"COMPLETED", "COMPLETED_SUCCESS"}, status

    overview_run = server.graphql(
        """mutation {
             launchRun(executionParams: {
               selector: {repositoryLocationName: "bam_assets", repositoryName: "__repository__",
                          jobName: "refresh_read_stats_overview"}
             }) { __typename ... on LaunchRunSuccess { run { runId } } }
           }"""
    )["launchRun"]
    assert overview_run["__typename"] == "LaunchRunSuccess", overview_run
    wait_for(
        lambda: server.graphql(
            'query { assetNodeOrError(assetKey: {path: ["read_stats_overview"]}) {'
            " ... on AssetNode { assetMaterializations(limit: 1) { runId } } } }"
        )["assetNodeOrError"]["assetMaterializations"],
        300,
        "the overview run",
    )

    pages = tmp_path / "screenshots"
    pages.mkdir()
    partitions_page = open_page(
        browser,
        f"{server.url}/assets/reads?view=partitions",
        PAIRED_KEY,
        pages / "reads_partitions.png",
    )
    assert "Materialized (20)" in partitions_page
    flagstat_page = open_page(
        browser,
        f"{server.url}/assets/flagstat?view=partitions&partition={PAIRED_KEY}",
        "with itself and mate mapped",
        pages / "flagstat_partition.png",
    )
    assert "properly paired" in flagstat_page

    with read_session(database) as session:
        connection = session.connection
        quality = connection.execute(
            "SELECT min(quality_sum / bases), max(quality_sum / bases) "
            "FROM read_stats_quality_by_cycle WHERE key = ?",
            [PAIRED_KEY],
        ).fetchone()
        pairs = connection.execute(
            "SELECT sum(pairs) FROM read_stats_insert_size WHERE key = ?", [PAIRED_KEY]
        ).fetchone()[0]
        summary = dict(
            connection.execute(
                "SELECT field, value FROM read_stats_summary WHERE key = ?", [PAIRED_KEY]
            ).fetchall()
        )

    distributions_page = open_page(
        browser,
        f"{server.url}/assets/read_distributions?view=partitions&partition={PAIRED_KEY}",
        "coverage_by_contig",
        pages / "read_distributions_partition.png",
    )
    assert "quality_per_cycle" in distributions_page
    pictures = show_markdown_dialogs(browser, pages, "read_distributions")
    assert set(pictures) >= PICTURES, pictures.keys()
    assert all(pictures[title]["width"] == 800 for title in PICTURES), pictures
    # The numbers the charts show are the stored tables'.
    assert f"from {quality[0]:.1f} to {quality[1]:.1f}" in pictures["quality per cycle"]["text"]
    assert f"{pairs:,.0f} pairs" in pictures["insert size"]["text"]

    read_stats_page = open_page(
        browser,
        f"{server.url}/assets/read_stats?view=partitions&partition={PAIRED_KEY}",
        "percent_mapped",
        pages / "read_stats_partition.png",
    )
    percent_mapped = (
        100
        * summary["reads_mapped"]
        / (summary["first_fragments"] + summary["last_fragments"] + summary["other_fragments"])
    )
    assert f"{percent_mapped:.3f}".rstrip("0") in read_stats_page

    open_page(
        browser,
        f"{server.url}/assets/read_stats_overview",
        "per_file",
        pages / "read_stats_overview.png",
    )
    overview = show_markdown_dialogs(browser, pages, "read_stats_overview")
    assert overview["files"]["width"] == 800
    assert f"{FILE_COUNT} of {FILE_COUNT} files" in overview["files"]["text"]

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
