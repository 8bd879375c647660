"""Faults around a real ingest: kill -9, two writers, a reader during a write, a full disk.

Each ingest runs the real CLI (``python -m bam_assets ingest``) in its own process, with its own
DAGSTER_HOME, against a DuckDB file in tmp_path, because DuckDB's lock is per process.
"""

import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pysam
import pytest

from bam_assets.orchestration.resources import StoreResource
from bam_assets.orchestration.settings import StoreSettings
from bam_assets.reading.synthetic_bam import write_synthetic_bam
from bam_assets.storage.connection import _is_lock_conflict
from bam_assets.storage.store import StoreBusyError
from bam_assets_tests.helpers import REAL_DATA, materialize_partition, settings_for

BIG_READS = 250_000


@pytest.fixture(scope="module")
def big_bam(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A BAM that takes a few seconds to ingest (fixed seed), shared by the fault tests."""
    return write_synthetic_bam(tmp_path_factory.mktemp("big") / "big.bam", BIG_READS, seed=21)


def cli(tmp_path: Path, *arguments: str, home: str = "dagster_home", **popen) -> subprocess.Popen:
    environment = os.environ | {"DAGSTER_HOME": str(tmp_path / home)}
    (tmp_path / home).mkdir(exist_ok=True)
    return subprocess.Popen(
        [sys.executable, "-m", "bam_assets", *arguments],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


def run_cli(
    tmp_path: Path, *arguments: str, timeout: float = 300, **popen
) -> subprocess.CompletedProcess:
    process = cli(tmp_path, *arguments, **popen)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    finally:
        process.kill()
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def partition_state(database: Path) -> dict[str, tuple]:
    """Per partition: row count and a hash over every stored column, plus its files row."""
    with duckdb.connect(str(database), read_only=True) as connection:
        reads = connection.execute(
            "SELECT key, count(*), sum(hash(rec_no, qname, flag, rname, pos, mapq, cigar, rnext,"
            " pnext, tlen, seq, qual, tags)) FROM reads GROUP BY key"
        ).fetchall()
        files = dict(
            connection.execute("SELECT key, (read_count, fingerprint) FROM files").fetchall()
        )
    return {key: (count, digest, files.get(key)) for key, count, digest in reads}


def wait_until_writing(process: subprocess.Popen, database: Path, seconds: float = 60) -> None:
    """Waits until the ingest is inside its transaction: DuckDB writes the row groups of a big
    INSERT into the file as it goes (the WAL only appears at COMMIT), so the file grows."""
    start_size = database.stat().st_size
    deadline = time.monotonic() + seconds
    while (
        database.stat().st_size < start_size + 4_000_000
        and process.poll() is None
        and time.monotonic() < deadline
    ):
        time.sleep(0.01)
    assert process.poll() is None, "the ingest finished before the fault could be injected"
    assert not Path(f"{database}.wal").exists(), "the ingest was already committing"


def sample_with_previous_rows(tmp_path: Path, big_bam: Path) -> tuple[Path, Path, dict]:
    """Ingests a small sample.bam and a neighbour, then puts the big BAM in sample.bam's place."""
    root = tmp_path / "in"
    root.mkdir()
    database = tmp_path / "reads.duckdb"
    write_synthetic_bam(root / "sample.bam", 2_000, seed=22)
    write_synthetic_bam(root / "other.bam", 1_000, seed=23)
    done = run_cli(tmp_path, "ingest", str(root), "--db", str(database))
    assert done.returncode == 0, done.stderr
    before = partition_state(database)
    assert before["sample.bam"][0] == int(pysam_count(root / "sample.bam"))
    shutil.copy(big_bam, root / "sample.bam")
    return root, database, before


def kill_mid_ingest(tmp_path: Path, big_bam: Path) -> tuple[Path, Path, dict]:
    root, database, before = sample_with_previous_rows(tmp_path, big_bam)
    process = cli(tmp_path, "ingest", str(root / "sample.bam"), "--db", str(database))
    wait_until_writing(process, database)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    return root, database, before


@pytest.mark.slow
def test_kill_9_mid_ingest_leaves_previous_state_and_next_run_succeeds(tmp_path, big_bam):
    root, database, before = kill_mid_ingest(tmp_path, big_bam)

    assert partition_state(database) == before  # the database opens; nothing half-written
    again = run_cli(
        tmp_path, "ingest", str(root / "sample.bam"), "--db", str(database), home="fresh_home"
    )
    assert again.returncode == 0, again.stderr
    after = partition_state(database)
    assert after["sample.bam"][0] == int(pysam_count(big_bam))
    assert after["other.bam"] == before["other.bam"]


@pytest.mark.slow
def test_kill_9_does_not_block_the_next_run_on_the_same_instance(tmp_path, big_bam):
    root, database, _ = kill_mid_ingest(tmp_path, big_bam)
    again = run_cli(tmp_path, "ingest", str(root / "sample.bam"), "--db", str(database), timeout=45)
    assert again.returncode == 0, again.stderr


def pysam_count(path: Path) -> str:
    return pysam.view("-c", str(path)).strip()


@pytest.mark.slow
def test_two_writers_at_once_both_land(tmp_path, big_bam):
    first = tmp_path / "first"
    first.mkdir()
    shutil.copy(big_bam, first / "a.bam")
    second = write_synthetic_bam(tmp_path / "b.bam", 50_000, seed=24)
    database = tmp_path / "reads.duckdb"

    writers = [
        cli(tmp_path, "ingest", str(first / "a.bam"), "--db", str(database)),
        cli(tmp_path, "ingest", str(second), "--db", str(database)),
    ]
    outputs = [writer.communicate(timeout=300) for writer in writers]

    for writer, (_, stderr) in zip(writers, outputs, strict=True):
        assert writer.returncode == 0, stderr
        assert "lock" not in stderr.lower()
    state = partition_state(database)
    assert state["a.bam"][0] == int(pysam_count(big_bam))
    assert state["b.bam"][0] == int(pysam_count(second))


@pytest.mark.slow
def test_reader_during_a_write_waits_then_reads(tmp_path, big_bam):
    root, database, before = sample_with_previous_rows(tmp_path, big_bam)
    writer = cli(tmp_path, "ingest", str(root / "sample.bam"), "--db", str(database))
    wait_until_writing(writer, database)

    listing = run_cli(tmp_path, "list", "--db", str(database))
    writer.communicate(timeout=300)

    assert writer.returncode == 0
    assert listing.returncode == 0, listing.stderr
    rows = dict(line.split("\t")[0:3:2] for line in listing.stdout.splitlines())
    # the reader waited for the writer's lock, so it sees the committed new state, never a mix
    assert rows == {
        "other.bam": f"{pysam_count(root / 'other.bam')} reads",
        "sample.bam": f"{pysam_count(big_bam)} reads",
    }


def test_lock_conflict_is_recognised_and_bounded(tmp_path):
    """DuckDB 2.0.1's real lock message is retried, then reported as busy in plain words."""
    database = tmp_path / "reads.duckdb"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time\n"
            f"c = duckdb.connect({str(database)!r}); c.execute('CREATE TABLE t (a INT)')\n"
            "print('locked', flush=True); time.sleep(30)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(duckdb.IOException) as raw:
            duckdb.connect(str(database), read_only=True)
        assert _is_lock_conflict(raw.value)
        store = StoreResource(
            settings=StoreSettings(database=str(database), lock_timeout_seconds=0.5)
        )
        started = time.monotonic()
        with pytest.raises(StoreBusyError, match=rf"stayed locked by process {holder.pid} \("):
            with store.session(read_only=True):
                pass
        assert 0.5 <= time.monotonic() - started < 5
    finally:
        holder.kill()
        holder.wait()
    assert not _is_lock_conflict(
        duckdb.IOException('IO Error: Could not read block 12 of "x.duckdb"')
    )


def hold_lock(database: Path, seconds: float) -> subprocess.Popen:
    """Another process holding the database for writing (as a DuckDB shell would)."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, time; c = duckdb.connect({str(database)!r}); "
            f"print('locked', flush=True); time.sleep({seconds}); c.close()",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "locked"
    return holder


def test_a_wait_for_the_lock_is_logged_at_once_then_every_10_s(tmp_path, caplog):
    database = tmp_path / "reads.duckdb"
    holder = hold_lock(database, 13)
    store = StoreResource(settings=StoreSettings(database=str(database)))
    try:
        with caplog.at_level("INFO"), store.session(read_only=True):
            pass
    finally:
        holder.kill()
        holder.wait()
    waits = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Waiting")]
    assert len(waits) == 2, waits
    assert f"process {holder.pid} ({sys.executable} -c import duckdb" in waits[0]
    assert "(0 s so far, giving up after 300 s)" in waits[0]
    assert re.search(r"\(1[012] s so far", waits[1]), waits[1]  # 10 s, and a backoff step


def test_a_run_waiting_for_the_lock_says_who_holds_it(tmp_path, instance):
    """The wait shows in the run's log in the UI, naming the process."""
    database = tmp_path / "reads.duckdb"
    holder = hold_lock(database, 3)
    try:
        settings = settings_for(REAL_DATA, database)
        result = materialize_partition(settings, "pysam_example_btag.sam", instance)
    finally:
        holder.kill()
        holder.wait()
    assert result.success
    messages = [entry.user_message for entry in instance.all_logs(result.run_id)]
    assert any(
        m.startswith("Waiting for DuckDB database") and f"process {holder.pid} (" in m
        for m in messages
    ), messages


def _limit_file_size(limit: int):
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # write() fails with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


@pytest.mark.slow
def test_disk_full_gives_a_clear_error_and_the_database_stays_usable(tmp_path, big_bam):
    root, database, before = sample_with_previous_rows(tmp_path, big_bam)
    limit = database.stat().st_size + 8_000_000

    full = run_cli(
        tmp_path,
        "ingest",
        str(root / "sample.bam"),
        "--db",
        str(database),
        preexec_fn=_limit_file_size(limit),
    )

    assert full.returncode != 0
    assert str(root / "sample.bam") in full.stderr
    assert "disk is full or a file size limit was reached" in full.stderr
    assert partition_state(database) == before
    again = run_cli(tmp_path, "ingest", str(root / "sample.bam"), "--db", str(database))
    assert again.returncode == 0, again.stderr
    assert partition_state(database)["sample.bam"][0] == int(pysam_count(big_bam))
