"""The store under either catalog (a local SQLite file, or Postgres): a partition replaced and
deleted whole in every table; a replaced or purged partition's file dropped whole whatever its
size and then removed from disk by maintenance; two writers of one key leaving exactly one whole
copy, with the race made to happen; readers never waiting for a writer's swap.

The races are forced, not hoped for: a writer is held inside its swap transaction (after its
DELETE and its file's registration, before COMMIT) until the other has reached the point where it
would begin its own."""

import logging
import threading
import time
from datetime import timedelta
from pathlib import Path

import pysam
import pytest

from bam_assets.model.source_stream import source_of
from bam_assets.orchestration.resources import StoreResource
from bam_assets.reading.stream import open_reads_stream
from bam_assets.reading.synthetic_bam import write_synthetic_bam
from bam_assets.stats.cycle_quality import CycleQuality
from bam_assets.stats.overview import OVERVIEW_TABLE, overview_rows, overview_sql
from bam_assets.storage import lake as lake_module
from bam_assets.storage.writing import data_files
from bam_assets_tests.helpers import (
    REAL_DATA,
    data_dir_of,
    materialize_partition,
    read_session,
    settings_for,
    write_distributions,
)

PAIRED = "umitools_paired.bam"
NANOPORE = "mosdepth_nanopore.bam"
BTAG = "pysam_example_btag.sam"


def store_rows(settings) -> dict[str, tuple[int, int]]:
    """Per table: (rows of PAIRED, rows of every other key)."""
    with read_session(settings) as session:
        tables = [t for (t,) in session.connection.execute("SHOW TABLES").fetchall()]
        return {
            table: session.connection.execute(
                f"SELECT count(*) FILTER (key = ?), count(*) FILTER (key <> ?) FROM {table}",
                [PAIRED, PAIRED],
            ).fetchone()
            for table in tables
        }


def reads_files(settings) -> list[str]:
    with read_session(settings) as session:
        return sorted(data_files(session.connection, "reads"))


def test_a_partition_is_replaced_and_deleted_whole_in_every_table(any_store, tmp_path, instance):
    settings = settings_for(REAL_DATA, "", store=any_store)
    for key in (PAIRED, NANOPORE):
        materialize_partition(settings, key, instance)
    store = StoreResource(settings=settings.store)
    with store.session() as session:
        write_distributions(session, PAIRED, coverage_window=1_000)
        session.replace_table(OVERVIEW_TABLE, overview_sql(session.tables))
        session.replace_table(OVERVIEW_TABLE, overview_sql(session.tables))
        assert [row[:3] for row in overview_rows(session.connection, session.tables)] == [
            (NANOPORE, "BAM", 186),
            (PAIRED, "BAM", 8451),
        ]
    before = store_rows(settings)
    materialize_partition(settings, PAIRED, instance)
    again = store_rows(settings)
    assert {t: again[t] for t in ("reads", "files", "reads_cycle_quality")} == {
        t: before[t] for t in ("reads", "files", "reads_cycle_quality")
    }
    assert len(reads_files(settings)) == 2  # one file per partition: the old one dropped whole
    with store.session() as session:
        session.delete_partition(PAIRED)
    after = store_rows(settings)
    assert all(after[t][0] == 0 for t in after)
    assert {t: after[t][1] for t in after} == {t: before[t][1] for t in before}


def test_a_small_partition_replaced_or_purged_is_dropped_whole_and_maintenance_deletes_it(
    any_store, instance
):
    """Partitions of 10 and 84 records (DuckLake would inline the delete of fewer than 2,000 rows
    in the catalog and keep listing the file): the old file leaves the current snapshot at once,
    and the next maintenance deletes it from disk."""
    settings = settings_for(REAL_DATA, "", store=any_store)
    small = "modkit_bc_anchored_10_reads.unmapped.bam"
    materialize_partition(settings, small, instance)
    [first_small] = reads_files(settings)
    materialize_partition(settings, BTAG, instance)
    [btag_file] = set(reads_files(settings)) - {first_small}
    materialize_partition(settings, small, instance)  # the re-ingest
    current = reads_files(settings)
    assert first_small not in current and btag_file in current and len(current) == 2
    assert Path(first_small).exists()  # a reader on an old snapshot may still scan it
    maintain(settings)
    assert not Path(first_small).exists()
    assert on_disk(settings) == current

    with StoreResource(settings=settings.store).session() as session:
        session.delete_partition(BTAG)  # the purge
    assert reads_files(settings) == [f for f in current if f != btag_file]
    maintain(settings)
    assert on_disk(settings) == [f for f in current if f != btag_file]
    with read_session(settings) as session:
        rows = session.connection.execute("SELECT key, count(*) FROM reads GROUP BY key")
        assert rows.fetchall() == [(small, 10)]


def on_disk(settings) -> list[str]:
    return sorted(str(p) for p in (data_dir_of(settings) / "main" / "reads").glob("*.parquet"))


def maintain(settings) -> None:
    """Maintenance with no margins: expire every snapshot but the newest and delete the files
    only they read."""
    with StoreResource(settings=settings.store).session() as session:
        session.expire_snapshots(timedelta(0))
        session.delete_old_files(timedelta(0))


class HeldSwap:
    """Holds the writer running in the thread named ``held`` inside its swap transaction, right
    after it registered its file, until ``release`` is set; ``inside`` says it got there."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, held: str = "first") -> None:
        self.inside = threading.Event()
        self.release = threading.Event()
        original = lake_module.add_data_file

        def add_data_file(connection, table: str, path: Path) -> None:
            original(connection, table, path)
            if threading.current_thread().name == held:
                self.inside.set()
                assert self.release.wait(120), "the held writer was never released"

        monkeypatch.setattr(lake_module, "add_data_file", add_data_file)


class Waits(logging.Handler):
    """Sets ``event`` when a writer logs that another writer holds the lock of ``key``."""

    def __init__(self, key: str, event: threading.Event) -> None:
        super().__init__()
        self.prefix = f"Locking partition {key}: busy"
        self.event = event

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith(self.prefix):
            self.event.set()


def write(settings, path: Path, key: str) -> int:
    """Stores ``path`` as partition ``key``, as the IO manager does (with its cycle rows)."""
    stream = open_reads_stream(path, key, settings.reading.reader_options())
    with StoreResource(settings=settings.store).session() as session:
        return session.replace_partition(source_of(stream), stream, [CycleQuality()]).read_count


def in_thread(name: str, work) -> tuple[threading.Thread, list]:
    outcome: list = []

    def run() -> None:
        try:
            outcome.append(work())
        except BaseException as error:  # re-raised by the test
            outcome.append(error)

    thread = threading.Thread(target=run, name=name)
    thread.start()
    return thread, outcome


def partition(settings, key: str) -> tuple:
    """(reads, distinct rec_no, files rows, their read_count, cycle bases, reads files)."""
    with read_session(settings) as session:
        connection = session.connection
        return (*partition_on(connection, key), len(data_files(connection, "reads")))


def test_two_first_ingests_of_one_key_leave_exactly_one_whole_copy(
    any_store, tmp_path, monkeypatch
):
    """The first writer is held inside its swap until the second has staged its file and found
    the key's lock taken (without the lock it would now begin a transaction of its own, whose
    DELETE of a key with no committed rows conflicts with nothing: both would commit, and the
    partition would be stored twice). Released, the first commits; the second then replaces it."""
    versions = []
    for index, reads in enumerate((3_000, 4_000)):
        folder = tmp_path / f"v{index}"
        folder.mkdir()
        versions.append(write_synthetic_bam(folder / "same.bam", reads, seed=70 + index))
    settings = settings_for(tmp_path, "", store=any_store)
    held = HeldSwap(monkeypatch)
    waits = Waits("same.bam", held.release)
    store_log = logging.getLogger("dagster.builtin")  # the store's log outside a run
    store_log.addHandler(waits)
    try:
        first, first_outcome = in_thread("first", lambda: write(settings, versions[0], "same.bam"))
        assert held.inside.wait(120), "the first writer never reached its swap"
        second, second_outcome = in_thread(
            "second", lambda: write(settings, versions[1], "same.bam")
        )
        first.join(240)
        second.join(240)
    finally:
        store_log.removeHandler(waits)
        held.release.set()
    assert waits.event.is_set(), "the second writer never waited for the key's lock"
    assert first_outcome == [count(versions[0])] and second_outcome == [count(versions[1])]
    expected = count(versions[1])
    reads, distinct, files_rows, read_count, bases, reads_files_ = partition(settings, "same.bam")
    assert (reads, distinct, files_rows, read_count, reads_files_) == (
        expected,
        expected,
        1,
        expected,
        1,
    )
    assert bases == CycleQualityBases.of(versions[1])


def count(path: Path) -> int:
    return int(pysam.view("-c", str(path)).strip())


class CycleQualityBases:
    @staticmethod
    def of(path: Path) -> int:
        """The bases samtools stats counts in its FFQ and LFQ lines (primary reads with SEQ)."""
        with pysam.AlignmentFile(str(path), check_sq=False) as handle:
            return sum(
                r.query_length
                for r in handle.fetch(until_eof=True)
                if not (r.is_secondary or r.is_supplementary) and r.query_sequence
            )


def test_readers_never_wait_for_a_swap_and_see_one_snapshot(any_store, tmp_path, monkeypatch):
    """While a writer is held inside its swap transaction, a new reader opens and reads at once
    and sees the partition's previous state; a reader that opened before the commit keeps its
    snapshot after it; a writer commits while a reader's transaction is open."""
    for folder in ("old", "new"):
        (tmp_path / folder).mkdir()
    old_bam = write_synthetic_bam(tmp_path / "old" / "hot.bam", 2_000, seed=81)
    new_bam = write_synthetic_bam(tmp_path / "new" / "hot.bam", 2_500, seed=82)
    settings = settings_for(tmp_path, "", store=any_store)
    write(settings, old_bam, "hot.bam")
    old = partition(settings, "hot.bam")
    held = HeldSwap(monkeypatch)
    writer, outcome = in_thread("first", lambda: write(settings, new_bam, "hot.bam"))
    try:
        assert held.inside.wait(120)
        started = time.monotonic()
        with read_session(settings) as early:
            assert partition_on(early.connection, "hot.bam") == old[:5]
            assert time.monotonic() - started < 10
            held.release.set()
            writer.join(120)
            assert outcome == [count(new_bam)]
            assert partition_on(early.connection, "hot.bam") == old[:5]  # its snapshot
            # a writer commits while this reader's transaction is open
            assert write(settings, old_bam, "other.bam") == count(old_bam)
        assert partition(settings, "hot.bam")[0] == count(new_bam)
    finally:
        held.release.set()
        writer.join(120)


def partition_on(connection, key: str) -> tuple:
    """(reads, distinct rec_no, files rows, their read_count, cycle bases) of ``key``."""
    reads = connection.execute(
        "SELECT count(*), count(DISTINCT rec_no) FROM reads WHERE key = ?", [key]
    ).fetchone()
    files = connection.execute(
        "SELECT count(*), sum(read_count) FROM files WHERE key = ?", [key]
    ).fetchone()
    bases = connection.execute(
        "SELECT sum(bases) FROM reads_cycle_quality WHERE key = ?", [key]
    ).fetchone()
    return (*reads, *files, *bases)
