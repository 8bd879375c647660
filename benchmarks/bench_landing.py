"""From a file landing in the watched folder to its summaries materialized, under ``dagster dev``.

Starts ``dagster dev`` from a checkout of bam-assets (``--project``, default this one) with a
fresh DAGSTER_HOME holding the project's ``dagster.yaml`` (run queue of 4, the ``duckdb_writer``
pool), a 5-second sensor interval and an empty watched folder; copies ``--copies`` of each small
real file into it at once; and reports, per file, the seconds from the copy to the last of its
four per-file summaries (flagstat, idxstats, read_stats, read_distributions) being materialized.

``--start-sensor NAME`` turns a stopped sensor on first: before the summaries ran by themselves,
that was ``default_automation_condition_sensor``. Run::

    python benchmarks/bench_landing.py                                  # this checkout
    python benchmarks/bench_landing.py --project ../main --python ../main/.venv/bin/python \\
        --start-sensor default_automation_condition_sensor              # before
"""

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REAL_DATA = Path(__file__).resolve().parents[2] / "shared" / "test-data" / "real"
FILES = [
    "umitools_paired.bam",
    "pysam_example_btag.sam",
    "modkit_supplementary_secondary.bam",
    "mosdepth_nanopore.bam",
]
SUMMARIES = ["flagstat", "idxstats", "read_stats", "read_distributions"]


def graphql(url: str, query: str, variables: dict | None = None) -> dict:
    request = urllib.request.Request(
        f"{url}/graphql",
        data=json.dumps({"query": query, "variables": variables or {}}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        payload = json.loads(response.read())
    if "errors" in payload:
        raise RuntimeError(payload["errors"])
    return payload["data"]


def materialized(url: str, asset: str) -> dict[str, float]:
    """Partition -> time (s since the epoch) of its latest materialization."""
    data = graphql(
        url,
        """query ($path: [String!]!) { assetNodeOrError(assetKey: {path: $path}) {
             ... on AssetNode { assetMaterializations(limit: 10000) { partition timestamp } }
           } }""",
        {"path": [asset]},
    )["assetNodeOrError"]
    times: dict[str, float] = {}
    for event in data.get("assetMaterializations") or []:
        partition, stamp = event["partition"], float(event["timestamp"]) / 1000
        times[partition] = max(times.get(partition, 0.0), stamp)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    project_dir = Path(__file__).resolve().parents[1]
    parser.add_argument("--project", type=Path, default=project_dir)
    parser.add_argument("--python", default=sys.executable, help="the project's interpreter")
    parser.add_argument("--copies", type=int, default=2, help="copies of each real file")
    parser.add_argument("--start-sensor", help="a sensor to turn on before the files land")
    parser.add_argument("--timeout", type=float, default=1200)
    arguments = parser.parse_args()
    project = arguments.project.resolve()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        home, watched = root / "home", root / "watched"
        home.mkdir()
        watched.mkdir()
        shutil.copy(project / "dagster.yaml", home / "dagster.yaml")
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        url = f"http://127.0.0.1:{port}"
        env = os.environ | {
            "DAGSTER_HOME": str(home),
            "BAM_ASSETS_WATCH_DIR": str(watched),
            "BAM_ASSETS_DB": str(root / "bench.duckdb"),
            "BAM_ASSETS_SENSOR_INTERVAL": "5",
        }
        dagster = str(Path(arguments.python).parent / "dagster")
        log = (root / "dev.log").open("w")
        process = subprocess.Popen(
            [dagster, "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
            cwd=project,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            deadline = time.time() + 300
            while True:
                try:
                    urllib.request.urlopen(f"{url}/server_info", timeout=5)
                    break
                except OSError:
                    if time.time() > deadline:
                        raise
                    time.sleep(2)
            if arguments.start_sensor:
                started = graphql(
                    url,
                    """mutation ($name: String!) { startSensor(sensorSelector: {
                         repositoryLocationName: "bam_assets", repositoryName: "__repository__",
                         sensorName: $name}) { __typename } }""",
                    {"name": arguments.start_sensor},
                )
                assert started["startSensor"]["__typename"] == "Sensor", started
            time.sleep(15)  # the daemon's first ticks, before anything lands
            keys = []
            landed = time.time()
            for copy in range(arguments.copies):
                for name in FILES:
                    key = f"{copy}_{name}"
                    shutil.copy(REAL_DATA / name, watched / key)
                    keys.append(key)
            while True:
                done = [materialized(url, asset) for asset in SUMMARIES]
                if all(all(key in times for times in done) for key in keys):
                    break
                if time.time() - landed > arguments.timeout:
                    raise TimeoutError("the summaries did not all appear")
                time.sleep(2)
        finally:
            os.killpg(process.pid, signal.SIGINT)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
    seconds = sorted(max(times[key] for times in done) - landed for key in keys)
    out = sys.stdout
    out.write(f"# {project}, {len(keys)} files landed at once, sensor interval 5 s\n")
    out.write(
        f"landing to summaries: median {statistics.median(seconds):.0f} s, "
        f"first {seconds[0]:.0f} s, last {seconds[-1]:.0f} s\n"
    )
    out.write("per file: " + " ".join(f"{s:.0f}" for s in seconds) + "\n")


if __name__ == "__main__":
    main()
