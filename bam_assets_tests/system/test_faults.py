"""Faults around a real ingest, under either catalog: kill -9 while staging and inside the swap
transaction, a full disk, two writers at once, a reader during a write.

Each ingest runs the real CLI (``python -m bam_assets ingest``) in its own process, with its own
DAGSTER_HOME. A writer is killed inside its swap deterministically: a wrapper script holds it
there (right after its file's registration, before COMMIT) and says so in a file.
"""

import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pysam
import pytest

from bam_assets.orchestration.resources import StoreResource
from bam_assets.orchestration.settings import IngestSettings, StoreSettings
from bam_assets.reading.synthetic_bam import write_synthetic_bam
from bam_assets_tests.helpers import data_dir_of, store_connection

BIG_READS = 250_000

# Runs the CLI with the store's swap held right after the staged file is registered: writes
# HELD_FILE, then waits (until killed) for HELD_FILE.release.
HOLD_SWAP = """
import sys, time
from pathlib import Path
import bam_assets.storage.lake as lake
original = lake.add_data_file
def held(connection, table, path):
    original(connection, table, path)
    Path(sys.argv[1]).write_text(str(path))
    release = Path(sys.argv[1] + ".release")
    deadline = time.monotonic() + 600
    while not release.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
lake.add_data_file = held
from bam_assets.cli.main import main
sys.exit(main(sys.argv[2:]))
"""


@pytest.fixture(scope="module")
def big_bam(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A BAM that takes a few seconds to ingest (fixed seed), shared by the fault tests."""
    return write_synthetic_bam(tmp_path_factory.mktemp("big") / "big.bam", BIG_READS, seed=21)


class Store:
    """The store of a test: its settings, the CLI's options and environment for it."""

    def __init__(self, settings: dict, tmp_path: Path) -> None:
        self.settings = IngestSettings(store=StoreSettings(**settings))
        self.tmp_path = tmp_path
        self.env = dict(os.environ)
        if self.settings.store.catalog == "postgres":
            self.arguments = ["--lake"]
            self.env["BAM_ASSETS_LAKE_CATALOG"] = self.settings.store.lake.catalog
            self.env["BAM_ASSETS_LAKE_DATA_PATH"] = self.settings.store.lake.data_path
        else:
            self.arguments = ["--db", self.settings.store.database]

    def cli(
        self, *arguments: str, home: str = "dagster_home", script: list[str] | None = None, **popen
    ) -> subprocess.Popen:
        (self.tmp_path / home).mkdir(exist_ok=True)
        return subprocess.Popen(
            [sys.executable, *(script or ["-m", "bam_assets"]), *arguments, *self.arguments],
            env={**self.env, "DAGSTER_HOME": str(self.tmp_path / home)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            **popen,
        )

    def run(self, *arguments: str, timeout: float = 300, **popen) -> subprocess.CompletedProcess:
        process = self.cli(*arguments, **popen)
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        finally:
            process.kill()
        return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)

    def state(self) -> dict[str, tuple]:
        """Per partition: row count and a hash over every stored column, plus its files row."""
        with store_connection(self.settings) as connection:
            reads = connection.execute(
                "SELECT key, count(*), sum(hash(rec_no, qname, flag, rname, pos, mapq, cigar, "
                "rnext, pnext, tlen, seq, qual, tags)) FROM reads GROUP BY key"
            ).fetchall()
            files = dict(
                connection.execute("SELECT key, (read_count, fingerprint) FROM files").fetchall()
            )
        return {key: (count, digest, files.get(key)) for key, count, digest in reads}

    @property
    def data(self) -> Path:
        return data_dir_of(self.settings)


@pytest.fixture
def store(any_store, tmp_path) -> Store:
    return Store(any_store, tmp_path)


def pysam_count(path: Path) -> int:
    return int(pysam.view("-c", str(path)).strip())


def sample_with_previous_rows(store: Store, big_bam: Path) -> tuple[Path, dict]:
    """Ingests a small sample.bam and a neighbour, then puts the big BAM in sample.bam's place."""
    root = store.tmp_path / "in"
    root.mkdir()
    write_synthetic_bam(root / "sample.bam", 2_000, seed=22)
    write_synthetic_bam(root / "other.bam", 1_000, seed=23)
    done = store.run("ingest", str(root))
    assert done.returncode == 0, done.stderr
    before = store.state()
    assert before["sample.bam"][0] == pysam_count(root / "sample.bam")
    shutil.copy(big_bam, root / "sample.bam")
    return root, before


def wait_for(condition, process: subprocess.Popen, what: str, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert process.poll() is None, f"the ingest ended before {what}: {process.stderr.read()}"
        assert time.monotonic() < deadline, f"never {what}"
        time.sleep(0.02)


def staging(store: Store) -> list[Path]:
    """The partial files being staged (bigger than a few row groups)."""
    return [p for p in store.data.rglob("*.parquet.tmp") if p.stat().st_size > 2_000_000]


def kill(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL


@pytest.mark.slow
def test_kill_9_while_staging_leaves_previous_state_and_the_next_run_succeeds(store, big_bam):
    root, before = sample_with_previous_rows(store, big_bam)
    process = store.cli("ingest", str(root / "sample.bam"))
    wait_for(lambda: staging(store), process, "staged a file")
    kill(process)

    assert store.state() == before  # the store opens; nothing half-written
    # the same instance: the killed run's pool slot is given back
    again = store.run("ingest", str(root / "sample.bam"), timeout=120)
    assert again.returncode == 0, again.stderr
    after = store.state()
    assert after["sample.bam"][0] == pysam_count(big_bam)
    assert after["other.bam"] == before["other.bam"]


@pytest.mark.slow
def test_kill_9_inside_the_swap_leaves_previous_state_and_maintenance_takes_the_file(
    store, big_bam
):
    root, before = sample_with_previous_rows(store, big_bam)
    process, held = held_in_swap(store, root / "sample.bam")
    kill(process)
    registered = Path(held.read_text())

    assert store.state() == before
    assert registered.exists()  # registered in a transaction that never committed: an orphan
    again = store.run("ingest", str(root / "sample.bam"), home="fresh_home")
    assert again.returncode == 0, again.stderr
    assert store.state()["sample.bam"][0] == pysam_count(big_bam)
    margin = timedelta(hours=24)
    with StoreResource(settings=store.settings.store).session() as session:
        assert session.delete_orphans(margin).count == 0  # too young: could be a live writer's
        aged = time.time() - 2 * margin.total_seconds()
        os.utime(registered, (aged, aged))
        assert session.delete_orphans(margin).count == 1
    assert not registered.exists()
    assert store.state()["sample.bam"][0] == pysam_count(big_bam)


def held_in_swap(store: Store, path: Path) -> tuple[subprocess.Popen, Path]:
    """An ingest of ``path`` held inside its swap transaction; the file it wrote says so (and
    ``<it>.release`` lets it go on)."""
    held = store.tmp_path / "held"
    script = store.tmp_path / "hold_swap.py"
    script.write_text(HOLD_SWAP)
    process = store.cli("ingest", str(path), script=[str(script), str(held)])
    wait_for(held.exists, process, "reached its swap", seconds=300)
    return process, held


@pytest.mark.slow
def test_two_writers_stage_at_once_and_both_land(store, big_bam):
    first = store.tmp_path / "first"
    first.mkdir()
    shutil.copy(big_bam, first / "a.bam")
    second = write_synthetic_bam(store.tmp_path / "b.bam", BIG_READS, seed=24)

    writers = [store.cli("ingest", str(first / "a.bam")), store.cli("ingest", str(second))]
    both_staging = False
    while any(writer.poll() is None for writer in writers) and not both_staging:
        both_staging = len(staging(store)) >= 2
        time.sleep(0.02)
    outputs = [writer.communicate(timeout=300) for writer in writers]

    for writer, (_, stderr) in zip(writers, outputs, strict=True):
        assert writer.returncode == 0, stderr
    assert both_staging, "the two ingests never staged at the same time"
    state = store.state()
    assert state["a.bam"][0] == pysam_count(big_bam)
    assert state["b.bam"][0] == pysam_count(second)


@pytest.mark.slow
def test_a_reader_during_a_write_reads_at_once_the_previous_state(store, big_bam):
    """The writer is held inside its swap transaction (the catalog in use), the reader runs."""
    root, before = sample_with_previous_rows(store, big_bam)
    writer, held = held_in_swap(store, root / "sample.bam")

    started = time.monotonic()
    listing = store.run("list")
    seconds = time.monotonic() - started
    assert writer.poll() is None, "the ingest was let go before the reader read"
    Path(f"{held}.release").touch()
    writer.communicate(timeout=300)

    assert writer.returncode == 0
    assert listing.returncode == 0, listing.stderr
    rows = dict(line.split("\t")[0:3:2] for line in listing.stdout.splitlines())
    assert rows == {key: f"{value[0]} reads" for key, value in before.items()}
    assert seconds < 60
    assert store.state()["sample.bam"][0] == pysam_count(big_bam)


def _limit_file_size(limit: int):
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # write() fails with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


@pytest.mark.slow
def test_disk_full_gives_a_clear_error_and_the_store_stays_usable(store, big_bam):
    root, before = sample_with_previous_rows(store, big_bam)
    full = store.run("ingest", str(root / "sample.bam"), preexec_fn=_limit_file_size(4_000_000))

    assert full.returncode != 0
    assert str(root / "sample.bam") in full.stderr
    assert "disk is full or a file size limit was reached" in full.stderr
    assert store.state() == before
    assert not list(store.data.rglob("*.tmp"))  # the partial file was removed
    again = store.run("ingest", str(root / "sample.bam"))
    assert again.returncode == 0, again.stderr
    assert store.state()["sample.bam"][0] == pysam_count(big_bam)
