"""The distribution tables agree with samtools stats (MAPQ, RL, FFQ/LFQ) and replace one
partition's rows when written again.

Positions in the reads table are SAM's: 1-based, closed intervals.
"""

import pysam
import pytest

from bam_assets.stats.distributions import distribution
from bam_assets.stats.flagstat import FLAGSTAT_TABLE, flagstat, flagstat_rows
from bam_assets.stats.summary_numbers import summary_numbers
from bam_assets_tests.helpers import (
    REAL_DATA,
    REAL_FILES,
    copy_store,
    samtools_input,
    write_distributions,
    write_session,
)


def section(text: str, tag: str) -> list[tuple[int, int]]:
    return [
        (int(line.split("\t")[1]), int(line.split("\t")[2]))
        for line in text.splitlines()
        if line.startswith(f"{tag}\t")
    ]


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
def test_mapq_read_length_and_quality_per_cycle_match_samtools(real_database, tmp_path, name):
    # Write into a copy: the shared database stays as ingested.
    scratch = tmp_path / "copy.sqlite"
    copy_store(real_database, scratch)
    with write_session(scratch) as session:
        write_distributions(session, name, coverage_window=1000)
        connection, tables = session.connection, session.tables
        mapq = distribution(connection, tables, name, "mapq")
        lengths = distribution(connection, tables, name, "read_length")
        numbers = summary_numbers(connection, tables, name)
        quality = distribution(connection, tables, name, "quality_by_cycle")
    stats_text = pysam.stats(*samtools_input(REAL_DATA / name))
    assert [(m, n) for m, n in mapq] == section(stats_text, "MAPQ")
    assert [(length, n) for length, n, _, _ in lengths if length > 0] == section(stats_text, "RL")
    assert sum(row[3] for row in quality) == numbers.quality_sum
    for fragment, tag in (("first", "FFQ"), ("last", "LFQ")):
        mine = [(cycle, bases, total) for f, cycle, bases, total, _ in quality if f == fragment]
        assert mine == quality_per_cycle(stats_text, tag), tag


def test_summary_tables_replace_a_partition(synthetic, tmp_path):
    database, path = synthetic
    key = path.name
    with write_session(database) as session:
        first = write_distributions(session, key, 50_000)
        second = write_distributions(session, key, 50_000)
        stats = flagstat(session.connection, session.tables, key)
        assert session.replace_partition_rows(FLAGSTAT_TABLE, key, *flagstat_rows(stats)) == 16
        assert session.replace_partition_rows(FLAGSTAT_TABLE, key, *flagstat_rows(stats)) == 16
        contigs = distribution(session.connection, session.tables, key, "coverage_contig")
        windows = distribution(session.connection, session.tables, key, "coverage_window")
    assert first == second
    assert [row[1] for row in contigs] == ["chr1", "chr2", "chrM"]
    # Window bases add up to the contig's aligned bases.
    for _, contig, _, _, bases, covered, _depth, breadth in contigs:
        assert sum(w[4] for w in windows if w[0] == contig) == bases
        assert covered <= bases and 0 <= breadth <= 1
