"""Many writers on one lake, each a separate ``bam-assets ingest --lake`` process with the runs
of one Dagster instance on Postgres (deploy/dagster.yaml, pools set by deploy/pools.sh): they
commit at the same time, a reader in another process only ever sees whole partitions, two writers
of one partition leave one of them whole, and a writer killed with -9 leaves nothing that the
others, a re-run and maintenance cannot deal with.
"""

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

import dagster as dg
import pysam
import pytest

from bam_assets.orchestration.project_paths import PROJECT_DIR
from bam_assets.orchestration.resources import StoreResource
from bam_assets.orchestration.settings import StoreSettings
from bam_assets.reading.synthetic_bam import write_synthetic_bam
from bam_assets.storage.extensions import OFFLINE, load_extensions
from bam_assets_tests.helpers import REAL_DATA, cli_bytes, samtools_view
from bam_assets_tests.postgres import SUPERUSER, PostgresCluster

DEPLOY = PROJECT_DIR / "deploy"
EIGHT_FILES = [
    "umitools_paired.bam",
    "umitools_unmapped.bam",
    "mosdepth_empty-tids.bam",
    "mosdepth_nanopore.bam",
    "samtools_mpileup.1.bam",
    "modkit_supplementary_secondary.bam",
    "modkit_bc_anchored_10_reads.unmapped.bam",
    "pysam_example_btag.sam",
]


@pytest.fixture
def environment(postgres: PostgresCluster, lake: dict, tmp_path: Path) -> dict[str, str]:
    """What every process of a test gets: the lake, and a Dagster home whose instance lives in
    its own Postgres database, with the pools set as a deployment sets them."""
    database = f"dagster_{uuid.uuid4().hex[:12]}"
    postgres.create_database(database)
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(DEPLOY / "dagster.yaml", home / "dagster.yaml")
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "DAGSTER_HOME": str(home),
        "DAGSTER_PG_HOST": postgres.host,
        "DAGSTER_PG_PORT": str(postgres.port),
        "DAGSTER_PG_USERNAME": SUPERUSER,
        "DAGSTER_PG_PASSWORD": postgres.password,
        "DAGSTER_PG_DB": database,
        "BAM_ASSETS_LAKE_CATALOG": lake["lake"]["catalog"],
        "BAM_ASSETS_LAKE_DATA_PATH": lake["lake"]["data_path"],
        "BAM_ASSETS_STORE": "postgres",
    }
    subprocess.run(["sh", str(DEPLOY / "pools.sh")], env=env, check=True, capture_output=True)
    return env


def start(env: dict[str, str], *arguments: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "bam_assets", *arguments],
        env=env,
        cwd=PROJECT_DIR,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen, timeout: float = 600) -> str:
    stdout, stderr = process.communicate(timeout=timeout)
    assert process.returncode == 0, stderr
    return stdout


def run(env: dict[str, str], *arguments: str) -> str:
    return finish(start(env, *arguments))


def cli(env: dict[str, str], *arguments: str) -> str:
    """What ``bam-assets ARGUMENTS --lake`` prints, run in this process (quicker than a new
    one for commands that only read)."""
    with pytest.MonkeyPatch.context() as patch:
        for name in ("BAM_ASSETS_LAKE_CATALOG", "BAM_ASSETS_LAKE_DATA_PATH"):
            patch.setenv(name, env[name])
        return cli_bytes(*arguments, "--lake").decode()


def lake_store(env: dict[str, str]) -> StoreResource:
    return StoreResource(
        settings=StoreSettings(
            backend="postgres",
            lake={
                "catalog": env["BAM_ASSETS_LAKE_CATALOG"],
                "data_path": env["BAM_ASSETS_LAKE_DATA_PATH"],
            },
        )
    )


def ingest_runs(env: dict[str, str]) -> list[dg.RunRecord]:
    saved = dict(os.environ)
    os.environ.update({k: v for k, v in env.items() if k.startswith("DAGSTER_PG_")})
    try:
        with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
            return list(instance.get_run_records())
    finally:
        os.environ.clear()
        os.environ.update(saved)


@pytest.mark.slow
def test_four_processes_ingest_eight_files_at_once(environment, tmp_path):
    folders = []
    for index in range(4):
        folder = tmp_path / f"in{index}"
        folder.mkdir()
        for name in EIGHT_FILES[2 * index : 2 * index + 2]:
            shutil.copy(REAL_DATA / name, folder / name)
        folders.append(folder)

    writers = [start(environment, "ingest", str(folder)) for folder in folders]
    printed = "".join(finish(writer) for writer in writers)

    assert sorted(line.split("\t")[0] for line in printed.splitlines()) == sorted(EIGHT_FILES)
    for name in EIGHT_FILES:
        assert cli(environment, "view", "-h", name) == samtools_view(REAL_DATA / name, "-h")
        assert cli(environment, "flagstat", name) == pysam.flagstat(str(REAL_DATA / name))
    records = [r for r in ingest_runs(environment) if r.dagster_run.status.value == "SUCCESS"]
    assert len(records) == 8
    # The runs of different processes overlapped in time: the lake's writer pool let them.
    spans = sorted((r.start_time, r.end_time) for r in records)
    assert any(later[0] < earlier[1] for earlier, later in zip(spans, spans[1:], strict=False))


def partition_state(connection, key: str) -> tuple:
    """(reads, a hash over them, the files row's count and fingerprint, cycle bases) of ``key``,
    in separate statements of one read transaction."""
    reads = connection.execute(
        "SELECT count(*), sum(hash(rec_no, qname, seq)) FROM reads WHERE key = ?", [key]
    ).fetchone()
    files = connection.execute(
        "SELECT read_count, fingerprint FROM files WHERE key = ?", [key]
    ).fetchone()
    cycles = connection.execute(
        "SELECT sum(bases) FROM reads_cycle_quality WHERE key = ?", [key]
    ).fetchone()
    return (*reads, *(files or (None, None)), *cycles)


def poll(catalog: str, key: str, out: str) -> None:
    """A reader process: like any DuckDB client, attaches the lake read-only and records the
    partition's state in a fresh transaction, again and again, until ``out``.stop exists."""
    import duckdb

    connection = duckdb.connect(config=OFFLINE)
    load_extensions(connection, ("postgres_scanner", "ducklake"))
    connection.execute(f"ATTACH 'ducklake:postgres:{catalog}' AS lake (READ_ONLY)")
    connection.execute("USE lake")
    states = []
    stop = Path(f"{out}.stop")
    deadline = time.monotonic() + 300
    while not stop.exists() and time.monotonic() < deadline:
        connection.execute("BEGIN TRANSACTION")
        states.append(repr(partition_state(connection, key)))
        connection.execute("COMMIT")
    Path(out).write_text("\n".join(states))


def state_now(env: dict[str, str], key: str) -> tuple:
    with lake_store(env).session(read_only=True) as session:
        return partition_state(session.connection, key)


@pytest.mark.slow
def test_a_reader_never_sees_half_a_partition_while_it_is_replaced(environment, tmp_path):
    root = tmp_path / "in"
    root.mkdir()
    hot = root / "hot.bam"
    write_synthetic_bam(hot, 20_000, seed=31)
    run(environment, "ingest", str(hot))
    old = state_now(environment, "hot.bam")
    write_synthetic_bam(hot, 25_000, seed=32)
    others = [write_synthetic_bam(tmp_path / f"other{i}.bam", 20_000, seed=40 + i) for i in (1, 2)]

    observed = tmp_path / "observed.txt"
    reader = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from bam_assets_tests.system.test_lake_concurrency import poll; "
            f"poll({environment['BAM_ASSETS_LAKE_CATALOG']!r}, 'hot.bam', {str(observed)!r})",
        ],
        env=environment,
        cwd=PROJECT_DIR,
    )
    writers = [start(environment, "ingest", str(path)) for path in (hot, *others)]
    for writer in writers:
        finish(writer)
    Path(f"{observed}.stop").touch()
    assert reader.wait(timeout=120) == 0
    new = state_now(environment, "hot.bam")

    assert old != new and old[0] == old[2] and new[0] == new[2] == int(pysam_count(hot))
    states = observed.read_text().splitlines()
    assert len(states) > 10
    assert set(states) <= {repr(old), repr(new)}
    assert repr(old) in states


def pysam_count(path: Path) -> str:
    return pysam.view("-c", str(path)).strip()


@pytest.mark.slow
def test_two_writers_of_one_partition_leave_one_of_them_whole(environment, tmp_path):
    versions = []
    for index, reads in enumerate((20_000, 26_000)):
        folder = tmp_path / f"v{index}"
        folder.mkdir()
        versions.append(write_synthetic_bam(folder / "same.bam", reads, seed=50 + index))
    writers = [start(environment, "ingest", str(path)) for path in versions]
    for writer in writers:
        finish(writer)
    count, _, read_count, _, bases = state_now(environment, "same.bam")
    assert count == read_count and count in {int(pysam_count(path)) for path in versions}
    winner = next(path for path in versions if int(pysam_count(path)) == count)
    assert cli(environment, "view", "same.bam") == samtools_view(winner)


def lake_data(env: dict[str, str]) -> Path:
    return Path(env["BAM_ASSETS_LAKE_DATA_PATH"])


@pytest.mark.slow
def test_a_killed_writer_leaves_the_lake_whole_and_maintenance_takes_its_leftovers(
    environment, tmp_path
):
    big = write_synthetic_bam(tmp_path / "big.bam", 150_000, seed=60)
    small = [write_synthetic_bam(tmp_path / f"small{i}.bam", 10_000, seed=61 + i) for i in (1, 2)]
    killed = start(environment, "ingest", str(big))
    others = [start(environment, "ingest", str(path)) for path in small]
    deadline = time.monotonic() + 120
    partial = []
    while not partial and time.monotonic() < deadline and killed.poll() is None:
        partial = [p for p in lake_data(environment).rglob("*.tmp") if p.stat().st_size > 2e6]
        time.sleep(0.05)
    assert partial, "the big ingest never got to staging"
    killed.send_signal(signal.SIGKILL)
    killed.wait(timeout=30)
    for writer in others:
        finish(writer)

    with lake_store(environment).session(read_only=True) as session:
        assert [f.key for f in session.list_files()] == ["small1.bam", "small2.bam"]
        assert session.connection.execute(
            "SELECT count(*) FROM reads WHERE key = 'big.bam'"
        ).fetchone() == (0,)
    run(environment, "ingest", str(big))
    assert state_now(environment, "big.bam")[0] == int(pysam_count(big))

    leftovers = [p for p in lake_data(environment).rglob("*.tmp")]
    assert leftovers == partial[:1]
    store = lake_store(environment).store()
    margin = timedelta(hours=24)
    with store.session() as session:
        assert session.delete_orphans(margin).count == 0  # too young: could be a live writer's
        for path in leftovers:
            aged = time.time() - 2 * margin.total_seconds()
            os.utime(path, (aged, aged))
        assert session.delete_orphans(margin).count == 1
    assert not any(lake_data(environment).rglob("*.tmp"))
    assert cli(environment, "view", "big.bam") == samtools_view(big)
