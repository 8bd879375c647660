"""The reads asset through Dagster: lossless, replaced per partition, atomic on failure."""

import logging
import re
import shutil
from datetime import datetime
from pathlib import Path

import dagster as dg
import pysam
import pytest

from bam_assets.model.source_stream import SourceFile
from bam_assets.orchestration.definitions import ingest_resources
from bam_assets.orchestration.io_manager import ReadsIOManager, progress_line
from bam_assets.orchestration.reads_asset import build_reads_asset
from bam_assets.reading.synthetic_bam import write_synthetic_bam, write_synthetic_sam
from bam_assets.storage.catalogs import LocalCatalog, attach
from bam_assets.storage.connection import in_memory
from bam_assets.storage.extensions import load_extensions
from bam_assets_tests.helpers import (
    REAL_DATA,
    REAL_FILES,
    materialize_partition,
    read_session,
    samtools_view,
    settings_for,
    store_connection,
    write_session,
)

logger = logging.getLogger(__name__)


def regenerate(database: Path, key: str) -> str:
    with read_session(database) as session:
        text = session.header_text(key)
        for lines in session.iter_sam_lines(key):
            text += "".join(f"{line}\n" for line in lines.to_pylist())
    return text


def query(database: Path, sql: str, parameters=()) -> list[tuple]:
    with store_connection(database) as connection:
        return connection.execute(sql, list(parameters)).fetchall()


@pytest.mark.parametrize("name", REAL_FILES)
def test_every_real_file_regenerates_byte_identical(name, database, instance):
    result = materialize_partition(settings_for(REAL_DATA, database), name, instance)

    expected = samtools_view(REAL_DATA / name, "-h")
    assert regenerate(database, name) == expected
    record_count = expected.count("\n") - expected.count("\n@") - expected.startswith("@")
    metadata = result.asset_materializations_for_node("reads")[0].metadata
    assert metadata["dagster/partition_row_count"].value == record_count
    assert metadata["bytes_read"].value == (REAL_DATA / name).stat().st_size
    assert query(database, "SELECT read_count FROM files WHERE key = ?", [name]) == [
        (record_count,)
    ]


def test_files_table_and_derived_columns(database, instance):
    materialize_partition(settings_for(REAL_DATA, database), "umitools_paired.bam", instance)
    [(path, file_format, size, fingerprint, header)] = query(
        database, "SELECT path, format, size_bytes, fingerprint, header_text FROM files"
    )
    assert path == str(REAL_DATA / "umitools_paired.bam")
    assert file_format == "BAM" and size == (REAL_DATA / "umitools_paired.bam").stat().st_size
    assert len(fingerprint) == 32 and header.startswith("@HD")
    # end_pos and read_length agree with pysam's reference_end (0-based exclusive = 1-based
    # inclusive end) and query_length
    with pysam.AlignmentFile(str(REAL_DATA / "umitools_paired.bam")) as handle:
        expected = [
            (
                r.reference_end if not r.is_unmapped else None,
                r.query_length or r.infer_read_length() or 0,
            )
            for r in handle.fetch(until_eof=True)
        ]
    stored = query(
        database,
        "SELECT CASE WHEN is_unmapped THEN NULL ELSE end_pos END, read_length "
        "FROM reads ORDER BY rec_no",
    )
    assert stored == expected
    with pysam.AlignmentFile(str(REAL_DATA / "umitools_paired.bam")) as handle:
        nm_total = sum(r.get_tag("NM") for r in handle.fetch(until_eof=True) if r.has_tag("NM"))
    assert query(database, "SELECT sum(sam_tag_int(tags, 'NM')) FROM reads") == [(nm_total,)]


def test_rematerializing_replaces_rows(tmp_path, database, instance):
    root = tmp_path / "in"
    root.mkdir()
    sample = write_synthetic_bam(root / "sample.bam", 3_000, seed=1)
    settings = settings_for(root, database, reading={"chunk_size": 500})
    materialize_partition(settings, "sample.bam", instance)
    first = query(database, "SELECT count(*) FROM reads")[0][0]
    materialize_partition(settings, "sample.bam", instance)
    assert query(database, "SELECT count(*), count(DISTINCT rec_no) FROM reads") == [(first, first)]

    write_synthetic_bam(sample, 1_000, seed=2)
    materialize_partition(settings, "sample.bam", instance)
    assert query(database, "SELECT count(*) FROM reads")[0][0] == samtools_view(sample).count("\n")
    assert query(database, "SELECT count(*) FROM files") == [(1,)]


def test_failure_mid_stream_keeps_previous_rows_and_other_partitions(tmp_path, database, instance):
    root = tmp_path / "in"
    root.mkdir()
    good = write_synthetic_bam(root / "sample.bam", 10_000, seed=3)
    shutil.copy(REAL_DATA / "umitools_paired.bam", root / "other.bam")
    settings = settings_for(root, database, reading={"chunk_size": 1_000})
    materialize_partition(settings, "sample.bam", instance)
    materialize_partition(settings, "other.bam", instance)
    before = query(database, "SELECT key, count(*), sum(hash(qname, seq)) FROM reads GROUP BY key")

    data = bytearray(good.read_bytes())
    middle = int(len(data) * 0.7)
    data[middle : middle + 64] = bytes(64)  # a corrupt BGZF block: decoding fails after chunks
    good.write_bytes(bytes(data))
    result = materialize_partition(settings, "sample.bam", instance, raise_on_error=False)

    assert not result.success
    failure = next(event for event in result.all_events if event.is_step_failure)
    message = str(failure.step_failure_data.user_failure_data.description)
    assert str(good) in message and "previous rows were kept" in message
    after = query(database, "SELECT key, count(*), sum(hash(qname, seq)) FROM reads GROUP BY key")
    assert sorted(after) == sorted(before)


def test_missing_file_fails_with_its_key(tmp_path, database, instance):
    result = materialize_partition(
        settings_for(tmp_path, database), "gone.bam", instance, raise_on_error=False
    )
    assert not result.success
    failure = next(event for event in result.all_events if event.is_step_failure)
    assert "'gone.bam'" in failure.step_failure_data.user_failure_data.description


def test_downstream_receives_a_handle_not_rows(tmp_path, database, instance):
    settings = settings_for(REAL_DATA, database)
    materialize_partition(settings, "umitools_paired.bam", instance)

    @dg.asset(partitions_def=settings.partitions_def(), ins={"reads": dg.AssetIn(key="reads")})
    def mapped_reads(reads) -> int:
        with reads.store.session(read_only=True) as session:
            return session.connection.execute(
                f"SELECT count(*) FROM {session.tables.reads} WHERE key = ? AND NOT is_unmapped",
                [reads.key],
            ).fetchall()[0][0]

    result = dg.materialize(
        [build_reads_asset(settings).to_source_asset(), mapped_reads],
        partition_key="umitools_paired.bam",
        instance=instance,
        resources={
            settings.io_manager_key: ingest_resources(settings)[settings.io_manager_key],
            "io_manager": dg.mem_io_manager,
        },
    )
    assert result.output_for_node("mapped_reads") == int(
        pysam_count(REAL_DATA / "umitools_paired.bam", "-F", "4")
    )


def pysam_count(path: Path, *arguments: str) -> str:
    return pysam.view("-c", *arguments, str(path)).strip()


def test_a_store_from_an_earlier_schema_fails_in_words_and_is_left_alone(database, instance):
    """A lake whose reads table an earlier bam-assets made with fewer columns."""
    connection = in_memory(1, None)
    catalog = LocalCatalog(database)
    load_extensions(connection, catalog.extensions)
    attach(connection, catalog, catalog.default_data_path(), read_only=False, log=logger)
    connection.execute("CREATE TABLE reads (key VARCHAR, rec_no BIGINT, qname VARCHAR)")
    connection.execute("INSERT INTO reads VALUES ('old.bam', 0, 'r1')")
    connection.close()
    result = materialize_partition(
        settings_for(REAL_DATA, database), "umitools_paired.bam", instance, raise_on_error=False
    )
    assert not result.success
    failure = next(event for event in result.all_events if event.is_step_failure)
    message = failure.step_failure_data.user_failure_data.description
    assert str(database) in message
    assert "lacks the columns qual_sum, gc_count" in message and "re-ingest" in message
    assert query(database, "SELECT * FROM reads") == [("old.bam", 0, "r1")]


def test_reads_ingested_before_the_cycle_table_fail_in_words_and_are_left_alone(database, instance):
    settings = settings_for(REAL_DATA, database)
    materialize_partition(settings, "umitools_paired.bam", instance)
    with store_connection(database, write=True) as connection:
        connection.execute("DROP TABLE reads_cycle_quality")
    before = query(database, "SELECT count(*), sum(hash(qname, seq)) FROM reads")
    result = materialize_partition(
        settings, "umitools_unmapped.bam", instance, raise_on_error=False
    )
    assert not result.success
    failure = next(event for event in result.all_events if event.is_step_failure)
    message = failure.step_failure_data.user_failure_data.description
    assert "without the table reads_cycle_quality" in message and "re-ingest" in message
    assert query(database, "SELECT count(*), sum(hash(qname, seq)) FROM reads") == before


def test_cycle_sums_follow_their_partition(tmp_path, database, instance):
    """Re-ingesting replaces a partition's cycle rows, a failed ingest keeps them, deleting the
    partition removes them, and other partitions keep theirs."""
    settings = settings_for(REAL_DATA, database)
    materialize_partition(settings, "umitools_paired.bam", instance)
    materialize_partition(settings, "mosdepth_nanopore.bam", instance)
    cycles = "SELECT key, count(*), sum(bases) FROM reads_cycle_quality GROUP BY key ORDER BY key"
    first = query(database, cycles)
    assert [row[0] for row in first] == ["mosdepth_nanopore.bam", "umitools_paired.bam"]
    materialize_partition(settings, "umitools_paired.bam", instance)
    assert query(database, cycles) == first
    with write_session(database) as session:
        session.delete_partition("umitools_paired.bam")
    assert query(database, cycles) == first[:1]


def test_the_column_schema_lists_every_column_of_the_reads_table(database, instance):
    """The UI's column schema is the reads table as stored: every column, its SQL type and the
    description that is also the column's comment in DuckDB."""
    result = materialize_partition(
        settings_for(REAL_DATA, database), "umitools_paired.bam", instance
    )
    metadata = result.asset_materializations_for_node("reads")[0].metadata
    schema = metadata["dagster/column_schema"].value
    stored = query(
        database,
        "SELECT column_name, data_type, comment FROM duckdb_columns() "
        "WHERE table_name = 'reads' AND database_name = current_database() ORDER BY column_index",
    )
    assert [(c.name, c.type, c.description) for c in schema.columns] == stored
    assert all(description for _, _, description in stored)


@pytest.mark.parametrize("name", ["big.bam", "big.sam"])
def test_progress_lines_say_how_much_of_the_file_is_read_and_the_time_left(
    tmp_path: Path, instance, name
):
    root = tmp_path / "in"
    root.mkdir()
    if name.endswith(".bam"):
        write_synthetic_bam(root / name, 60_000, seed=5)
    else:
        write_synthetic_sam(root / name, 60_000, seed=5)
    settings = settings_for(root, tmp_path / "reads.sqlite", reading={"chunk_size": 5_000})
    store = ingest_resources(settings)[settings.store_key]
    result = materialize_partition(
        settings,
        name,
        instance,
        resources={
            settings.io_manager_key: ReadsIOManager(store=store, progress_every_seconds=1e-6)
        },
    )
    lines = [
        entry.user_message
        for entry in instance.all_logs(result.run_id)
        if entry.user_message.startswith(f"{name}: ")
    ]
    # A BAM batch carries the position of its first block (the first is 0: percent unknown).
    with_position = [line for line in lines if "% of" in line]
    assert len(with_position) >= 10, lines
    shares = [int(re.search(r"reads, (\d+)% of ", line).group(1)) for line in with_position]
    assert shares == sorted(shares) and shares[-1] >= 85, lines
    assert all(
        re.search(r"MB read, about [\d,]+ s left \([\d,]+ reads/s\)$", line)
        for line in with_position
    )


def test_progress_line_without_a_position():
    source = SourceFile("k.cram", "/x/k.cram", "CRAM", 0, datetime.now(), "f", "", (), ())
    assert progress_line(source, 1_200_000, 0, 10.0) == (
        "k.cram: 1,200,000 reads so far (120,000 reads/s)"
    )
