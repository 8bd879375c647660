"""The lake end to end as a deployment runs it: ``dagster dev`` on an instance in Postgres
(deploy/dagster.yaml, pools set by deploy/pools.sh) with ``BAM_ASSETS_STORE=postgres``; files
dropped into the watched folder are ingested by the sensor's runs, each its own process, and
those runs overlap in time and compute each file's summaries; a backfill of the flagstat
summary follows.
"""

import os
import shutil
import signal
import subprocess
from pathlib import Path

import pysam
import pytest

from bam_assets.orchestration.project_paths import PROJECT_DIR
from bam_assets_tests.helpers import REAL_DATA
from bam_assets_tests.system.test_lake_concurrency import cli, environment, ingest_runs
from bam_assets_tests.system.test_webserver_e2e import (
    PER_FILE_SUMMARIES,
    DagsterDev,
    backfill_status,
    free_port,
    wait_for,
)

__all__ = ["environment"]  # the fixture, shared with the concurrency tests

SOURCES = ["umitools_paired.bam", "mosdepth_nanopore.bam"]
FILES = {f"{index:02d}_{source}": source for index in range(2) for source in SOURCES}


@pytest.mark.slow
def test_sensor_runs_overlap_on_postgres_and_the_summaries_follow(environment, tmp_path: Path):
    watched = tmp_path / "watched"
    watched.mkdir()
    port = free_port()
    env = environment | {"BAM_ASSETS_WATCH_DIR": str(watched), "BAM_ASSETS_SENSOR_INTERVAL": "5"}
    dagster = str(Path(env["PATH"].split(os.pathsep)[0]) / "dagster")
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
        wait_for(server.is_up, 180, "dagster dev to answer")
        for name, source in FILES.items():
            shutil.copy(REAL_DATA / source, watched / name)
        # The sensor's runs ingest each file and compute its four summaries, with no launch.
        everything = ("reads", *PER_FILE_SUMMARIES)
        wait_for(
            lambda: all(
                server.partition_stats(asset)["numMaterialized"] == len(FILES)
                for asset in everything
            ),
            600,
            f"the sensor's runs to ingest and summarize {len(FILES)} files",
        )
        for asset in everything:
            assert server.partition_stats(asset)["numFailed"] == 0, asset
        launched = server.graphql(
            """mutation ($names: [String!]!) {
                 launchPartitionBackfill(backfillParams: {
                   partitionNames: $names, assetSelection: [{path: ["flagstat"]}]
                 }) { __typename ... on LaunchBackfillSuccess { backfillId } }
               }""",
            {"names": list(FILES)},
        )["launchPartitionBackfill"]
        assert launched["__typename"] == "LaunchBackfillSuccess", launched
        assert wait_for(
            lambda: backfill_status(server, launched["backfillId"]), 420, "the flagstat backfill"
        ) in {"COMPLETED", "COMPLETED_SUCCESS"}
    finally:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    runs = [r for r in ingest_runs(environment) if r.dagster_run.job_name == "ingest_reads"]
    assert len(runs) == len(FILES) and {r.dagster_run.status.value for r in runs} == {"SUCCESS"}
    spans = sorted((r.start_time, r.end_time) for r in runs)
    assert any(later[0] < earlier[1] for earlier, later in zip(spans, spans[1:], strict=False))
    for name, source in FILES.items():
        assert cli(environment, "flagstat", name) == pysam.flagstat(str(REAL_DATA / source))
    rows = cli(environment, "list").splitlines()
    assert sorted(line.split("\t")[0] for line in rows) == sorted(FILES)
