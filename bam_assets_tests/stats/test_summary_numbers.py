"""The SQL statistics agree with samtools (pysam) on every real file and on a generated one.

Positions in the reads table are SAM's: 1-based, closed intervals.
"""

import shutil
from pathlib import Path

import pysam
import pytest

from bam_assets import duckdb_store, read_stats_sql, samtools_text
from bam_assets.synthetic_bam import write_synthetic_bam
from bam_assets_tests.conftest import (
    CRAM_REFERENCE,
    REAL_DATA,
    REAL_FILES,
    ingest_files,
    samtools_input,
    settings_for,
)

SYNTHETIC = "synthetic_stats.bam"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> duckdb_store.StoreConfig:
    """Every real file, ingested once into one DuckDB file."""
    database = tmp_path_factory.mktemp("stats") / "reads.duckdb"
    ingest_files(settings_for(REAL_DATA, database), REAL_FILES)
    return duckdb_store.StoreConfig(database=str(database))


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> tuple[duckdb_store.StoreConfig, Path]:
    """A generated 20k-read BAM (seed 11) with duplicates, QC failures, secondary and
    supplementary records, clipped and gapped alignments."""
    root = tmp_path_factory.mktemp("synthetic")
    path = write_synthetic_bam(root / SYNTHETIC, 20_000, seed=11)
    ingest_files(settings_for(root, root / "reads.duckdb"), [SYNTHETIC])
    return duckdb_store.StoreConfig(database=str(root / "reads.duckdb")), path


def sn_fields(text: str) -> dict[str, str]:
    """SN label -> value, without 'is sorted' (it depends on record order, not records)."""
    fields = {}
    for line in text.splitlines():
        if line.startswith("SN\t") and "is sorted" not in line:
            _, label, value, *_ = line.split("\t")
            fields[label.rstrip(":")] = value
    return fields


def section(text: str, tag: str) -> list[tuple[int, int]]:
    return [
        (int(line.split("\t")[1]), int(line.split("\t")[2]))
        for line in text.splitlines()
        if line.startswith(f"{tag}\t")
    ]


@pytest.mark.parametrize("name", REAL_FILES)
def test_flagstat_is_byte_identical_to_samtools(store, name):
    with duckdb_store.connect(store, read_only=True) as connection:
        stats = read_stats_sql.flagstat(connection, store, name)
    expected = pysam.flagstat(*samtools_input(REAL_DATA / name))
    assert samtools_text.flagstat_text(stats) == expected
    assert stats.inconsistencies() == []


@pytest.mark.parametrize("name", REAL_FILES)
def test_idxstats_is_byte_identical_to_samtools(store, name):
    lengths = read_stats_sql.reference_lengths(str(CRAM_REFERENCE))
    with duckdb_store.connect(store, read_only=True) as connection:
        rows = read_stats_sql.idxstats(connection, store, name, lengths)
    expected = pysam.idxstats(*samtools_input(REAL_DATA / name))
    assert samtools_text.idxstats_text(rows) == expected


@pytest.mark.parametrize("name", REAL_FILES)
def test_summary_numbers_match_samtools_stats_field_by_field(store, name):
    with duckdb_store.connect(store, read_only=True) as connection:
        numbers = read_stats_sql.summary_numbers(connection, store, name)
    expected = sn_fields(pysam.stats(*samtools_input(REAL_DATA / name)))
    mine = sn_fields(samtools_text.sn_lines(numbers))
    assert list(mine) == list(expected)
    for label, value in expected.items():
        assert mine[label] == value, label


def quality_per_cycle(text: str, tag: str) -> list[tuple[int, int, int]]:
    """(cycle, bases, quality sum) from samtools stats' FFQ/LFQ lines (counts per quality)."""
    rows = []
    for line in text.splitlines():
        if line.startswith(f"{tag}\t"):
            cycle, *counts = (int(value) for value in line.split("\t")[1:])
            bases = sum(counts)
            if bases:
                rows.append((cycle, bases, sum(q * n for q, n in enumerate(counts))))
    return rows


@pytest.mark.parametrize("name", REAL_FILES)
def test_mapq_read_length_and_quality_per_cycle_match_samtools(store, tmp_path, name):
    # Write into a copy: the module's store stays as ingested.
    scratch = duckdb_store.StoreConfig(database=str(tmp_path / "copy.duckdb"))
    shutil.copyfile(store.database, scratch.database)
    with duckdb_store.connect(scratch) as connection:
        read_stats_sql.write_distributions(connection, scratch, name, coverage_window=1000)
        mapq = read_stats_sql.distribution(connection, scratch, name, "mapq")
        lengths = read_stats_sql.distribution(connection, scratch, name, "read_length")
        numbers = read_stats_sql.summary_numbers(connection, scratch, name)
        quality = read_stats_sql.distribution(connection, scratch, name, "quality_by_cycle")
    stats_text = pysam.stats(*samtools_input(REAL_DATA / name))
    assert [(m, n) for m, n in mapq] == section(stats_text, "MAPQ")
    assert [(length, n) for length, n, _, _ in lengths if length > 0] == section(stats_text, "RL")
    assert sum(row[3] for row in quality) == numbers.quality_sum
    for fragment, tag in (("first", "FFQ"), ("last", "LFQ")):
        mine = [(cycle, bases, total) for f, cycle, bases, total, _ in quality if f == fragment]
        assert mine == quality_per_cycle(stats_text, tag), tag


def test_generated_file_matches_samtools(synthetic):
    config, path = synthetic
    with duckdb_store.connect(config, read_only=True) as connection:
        flagstat = read_stats_sql.flagstat(connection, config, SYNTHETIC)
        numbers = read_stats_sql.summary_numbers(connection, config, SYNTHETIC)
    assert samtools_text.flagstat_text(flagstat) == pysam.flagstat(str(path))
    # (samtools idxstats refuses unsorted files without an index, so it is not compared here.)
    assert sn_fields(samtools_text.sn_lines(numbers)) == sn_fields(pysam.stats(str(path)))
    # The generator's extras really are exercised.
    assert flagstat.duplicates[0] and flagstat.secondary[0] and flagstat.supplementary[0]
    assert flagstat.total[1] > 0


def test_insert_size_cut_off_follows_samtools_option(synthetic):
    config, path = synthetic
    with duckdb_store.connect(config, read_only=True) as connection:
        numbers = read_stats_sql.summary_numbers(connection, config, SYNTHETIC, max_insert_size=300)
    expected = sn_fields(pysam.stats("-i", "300", str(path)))
    mine = sn_fields(samtools_text.sn_lines(numbers))
    for label in ("insert size average", "insert size standard deviation", "inward oriented pairs"):
        assert mine[label] == expected[label]


def test_summary_tables_replace_a_partition(synthetic, tmp_path):
    config, _ = synthetic
    with duckdb_store.connect(config) as connection:
        first = read_stats_sql.write_distributions(connection, config, SYNTHETIC, 50_000)
        second = read_stats_sql.write_distributions(connection, config, SYNTHETIC, 50_000)
        stats = read_stats_sql.flagstat(connection, config, SYNTHETIC)
        assert read_stats_sql.write_flagstat(connection, config, SYNTHETIC, stats) == 16
        assert read_stats_sql.write_flagstat(connection, config, SYNTHETIC, stats) == 16
        contigs = read_stats_sql.distribution(connection, config, SYNTHETIC, "coverage_contig")
        windows = read_stats_sql.distribution(connection, config, SYNTHETIC, "coverage_window")
    assert first == second
    assert [row[1] for row in contigs] == ["chr1", "chr2", "chrM"]
    # Window bases add up to the contig's aligned bases.
    for _, contig, _, _, bases, covered, _depth, breadth in contigs:
        assert sum(w[4] for w in windows if w[0] == contig) == bases
        assert covered <= bases and 0 <= breadth <= 1
