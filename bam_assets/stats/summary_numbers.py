"""The ``SN`` numbers of ``samtools stats`` that need no reference (stats.c), in SQL."""

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import duckdb

from bam_assets.model.sam import cigar_length_sql
from bam_assets.model.tables import TableNames, TableSpec
from bam_assets.stats.records import records_sql

# samtools stats defaults: ``-i, --insert-size`` (8000) and ``-m, --most-inserts`` (0.99).
DEFAULT_MAX_INSERT_SIZE = 8000
DEFAULT_INSERT_BULK = 0.99
# stats.c counts "bases mapped (cigar)" over M, I, = and X: insertions too, unlike the reference
# span.
_MAPPED_CIGAR_OPS = "MI=X"

SUMMARY_TABLE = TableSpec("read_stats_summary", "field VARCHAR, value DOUBLE")


@dataclass(frozen=True)
class SummaryNumbers:
    """The integer counters behind ``samtools stats`` SN lines (stats.c, output_stats)."""

    first_fragments: int
    last_fragments: int
    other_fragments: int
    reads_mapped: int
    reads_mapped_and_paired: int
    reads_unmapped: int
    reads_properly_paired: int
    reads_paired: int
    reads_duplicated: int
    reads_mq0: int
    reads_qc_failed: int
    non_primary_alignments: int
    supplementary_alignments: int
    total_length: int
    total_first_fragment_length: int
    total_last_fragment_length: int
    bases_mapped: int
    bases_mapped_cigar: int
    bases_duplicated: int
    mismatches: int
    maximum_length: int
    maximum_first_fragment_length: int
    maximum_last_fragment_length: int
    quality_sum: int
    reads_on_different_chromosomes: int
    inward_pairs: int
    outward_pairs: int
    other_pairs: int
    insert_size_average: float
    insert_size_standard_deviation: float

    @property
    def sequences(self) -> int:
        return self.first_fragments + self.last_fragments + self.other_fragments

    # The headline numbers, as MultiQC derives them from the SN lines: percentages of the raw
    # total sequences.
    @property
    def percent_mapped(self) -> float:
        return _percent(self.reads_mapped, self.sequences)

    @property
    def percent_properly_paired(self) -> float:
        return _percent(self.reads_properly_paired, self.sequences)

    @property
    def percent_duplicates(self) -> float:
        return _percent(self.reads_duplicated, self.sequences)

    @property
    def average_quality(self) -> float:
        """SN average quality: quality sum over total length."""
        return self.quality_sum / self.total_length if self.total_length else 0.0

    @property
    def error_rate(self) -> float:
        """SN error rate: NM mismatches over bases mapped (cigar)."""
        return self.mismatches / self.bases_mapped_cigar if self.bases_mapped_cigar else 0.0


def _percent(count: int, total: int) -> float:
    return 100.0 * count / total if total else 0.0


# stats.c, collect_stats and collect_orig_read_stats. Secondary records only count as
# 'non-primary alignments'; records without SEQ count nowhere else. Duplicates, NM mismatches,
# bases mapped (cigar: M/I/=/X) and maximum lengths include supplementary records; everything
# else only "original" ones (neither secondary nor supplementary). Quality sums cover first and
# last fragments only; a missing QUAL ('*') is stored as 0xff per base, so it adds 255 per base.
_SUMMARY_SQL = """
    WITH r AS ({records}),
    s AS (
        SELECT *, NOT is_secondary AND NOT is_supplementary AS is_original
        FROM r
        WHERE NOT is_secondary AND seq_len > 0
    )
    SELECT
        count(*) FILTER (is_original AND read_order = 1),
        count(*) FILTER (is_original AND read_order = 2),
        count(*) FILTER (is_original AND read_order NOT IN (1, 2)),
        count(*) FILTER (is_original AND NOT is_unmapped),
        count(*) FILTER (is_original AND NOT is_unmapped AND is_paired AND NOT is_mate_unmapped),
        count(*) FILTER (is_original AND is_unmapped),
        count(*) FILTER (is_original AND NOT is_unmapped AND is_paired AND NOT is_mate_unmapped
                         AND is_proper_pair),
        count(*) FILTER (is_original AND is_paired),
        count(*) FILTER (is_duplicate),
        count(*) FILTER (is_original AND NOT is_unmapped AND mapq = 0),
        count(*) FILTER (is_original AND is_qcfail),
        (SELECT count(*) FROM r WHERE is_secondary),
        (SELECT count(*) FROM r WHERE is_secondary = false AND is_supplementary),
        coalesce(sum(seq_len) FILTER (is_original), 0),
        coalesce(sum(seq_len) FILTER (is_original AND read_order = 1), 0),
        coalesce(sum(seq_len) FILTER (is_original AND read_order = 2), 0),
        coalesce(sum(seq_len) FILTER (is_original AND NOT is_unmapped), 0),
        coalesce(sum({cigar_mapped}) FILTER (NOT is_unmapped), 0),
        coalesce(sum(seq_len) FILTER (is_duplicate), 0),
        -- the first NM tag, read from the record at ingest (samtools: bam_aux_get, bam_aux2i)
        coalesce(sum(nm) FILTER (NOT is_unmapped), 0),
        coalesce(max(read_len), 0),
        coalesce(max(read_len) FILTER (read_order = 1), 0),
        coalesce(max(read_len) FILTER (read_order = 2), 0),
        -- a missing QUAL counts 255 per base, as in stats.c
        coalesce(sum(coalesce(qual_sum, 255 * seq_len))
                 FILTER (is_original AND read_order IN (1, 2)), 0),
        count(*) FILTER (is_original AND NOT is_unmapped AND is_paired AND NOT is_mate_unmapped
                         AND next_ref_id <> ref_id)
    FROM s
"""

# stats.c, collect_stats: insert sizes of original, mapped, paired records whose mate is mapped;
# |TLEN| capped at -i (8000); counted when non-zero or the mate is on the same reference.
# Orientation from the read's and mate's strands and which of the two comes first; every pair
# is seen twice, so output_stats halves each bin (integer truncation).
INSERT_SIZE_SQL = """
    WITH r AS ({records}),
    pairs AS (
        SELECT least(abs(tlen), $max_insert) AS insert_size,
               CASE
                   WHEN is_reverse = is_mate_reverse THEN 'other'
                   -- is_fst * pos_fst and is_fst * is_fwd agree in sign: inward; ties: inward
                   WHEN pnext = pos THEN 'inward'
                   WHEN sign(pnext - pos) * (CASE WHEN is_reverse THEN -1 ELSE 1 END) > 0
                       THEN 'inward'
                   ELSE 'outward'
               END AS orientation
        FROM r
        WHERE NOT is_secondary AND NOT is_supplementary AND seq_len > 0 AND NOT is_unmapped
              AND is_paired AND NOT is_mate_unmapped
              AND (tlen <> 0 OR next_ref_id = ref_id)
    )
    SELECT insert_size,
           count(*) FILTER (orientation = 'inward') // 2 AS inward,
           count(*) FILTER (orientation = 'outward') // 2 AS outward,
           count(*) FILTER (orientation = 'other') // 2 AS other
    FROM pairs
    GROUP BY insert_size
    ORDER BY insert_size
"""


@dataclass(frozen=True)
class InsertSizeBin:
    insert_size: int
    inward: int
    outward: int
    other: int

    @property
    def pairs(self) -> int:
        return self.inward + self.outward + self.other


def insert_size_histogram(
    connection: duckdb.DuckDBPyConnection,
    tables: TableNames,
    key: str,
    max_insert_size: int = DEFAULT_MAX_INSERT_SIZE,
) -> list[InsertSizeBin]:
    """Pairs per insert size and orientation, as samtools stats' IS lines before the cut."""
    rows = connection.execute(
        INSERT_SIZE_SQL.format(records=records_sql(tables)),
        {"key": key, "max_insert": max_insert_size},
    ).fetchall()
    return [InsertSizeBin(*map(int, row)) for row in rows]


def float32(value: float) -> float:
    """``value`` rounded to single precision, as a C ``float`` holds it."""
    return struct.unpack("f", struct.pack("f", value))[0]


@dataclass(frozen=True)
class InsertSizeBulk:
    """The main bulk of insert sizes (stats.c, output_stats): the sizes below ``limit`` (the IS
    lines printed), and their average and standard deviation."""

    limit: int
    average: float
    standard_deviation: float


def insert_size_bulk(
    histogram: Sequence[InsertSizeBin], bulk_fraction: float = DEFAULT_INSERT_BULK
) -> InsertSizeBulk:
    """The main bulk of insert sizes, as samtools finds it.

    samtools walks the bins in order until the cumulative share exceeds ``-m`` (0.99) and
    computes the moments of that part only. This runs over the histogram (at most -i + 1 bins),
    with the same floating-point operations in the same order as the C code.
    """
    # isize_main_bulk is a C float: compare against its single-precision value.
    threshold = float32(bulk_fraction)
    total = sum(b.pairs for b in histogram)
    bulk = 0.0
    weighted = 0.0
    ibulk = 0
    for b in histogram:
        if b.pairs > 0:
            ibulk = b.insert_size + 1
        bulk += b.pairs
        weighted += b.insert_size * b.pairs
        if total and bulk / total > threshold:
            ibulk = b.insert_size + 1
            total = int(bulk)
            break
    average = weighted / (total if total else 1)
    variance = 0.0
    for b in histogram:
        if 1 <= b.insert_size < ibulk:
            variance += (
                b.pairs
                * (b.insert_size - average)
                * (b.insert_size - average)
                / (total if total else 1)
            )
    return InsertSizeBulk(ibulk, average, math.sqrt(variance))


def summary_numbers(
    connection: duckdb.DuckDBPyConnection,
    tables: TableNames,
    key: str,
    max_insert_size: int = DEFAULT_MAX_INSERT_SIZE,
    insert_bulk: float = DEFAULT_INSERT_BULK,
) -> SummaryNumbers:
    """The reference-free SN numbers of ``samtools stats`` for one partition."""
    row = connection.execute(
        _SUMMARY_SQL.format(
            records=records_sql(tables), cigar_mapped=cigar_length_sql(_MAPPED_CIGAR_OPS)
        ),
        {"key": key},
    ).fetchone()
    assert row is not None
    values = [int(v) for v in row]
    *counts, anomalous = values
    histogram = insert_size_histogram(connection, tables, key, max_insert_size)
    bulk = insert_size_bulk(histogram, insert_bulk)
    return SummaryNumbers(
        *counts,
        reads_on_different_chromosomes=anomalous,
        inward_pairs=sum(b.inward for b in histogram),
        outward_pairs=sum(b.outward for b in histogram),
        other_pairs=sum(b.other for b in histogram),
        insert_size_average=bulk.average,
        insert_size_standard_deviation=bulk.standard_deviation,
    )


def stored_summary_numbers(
    connection: duckdb.DuckDBPyConnection, tables: TableNames
) -> dict[str, SummaryNumbers]:
    """The SN numbers stored by ``summary_rows`` for every partition that has them."""
    table = tables.of(SUMMARY_TABLE)
    exists = connection.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = ? "
        "AND database_name = current_database()",
        [table],
    ).fetchone()
    if not exists or not exists[0]:
        return {}
    values: dict[str, dict[str, float]] = {}
    for key, name, value in connection.execute(f"SELECT key, field, value FROM {table}").fetchall():
        values.setdefault(key, {})[name] = value
    names = {f.name: f.type for f in fields(SummaryNumbers)}
    return {
        key: SummaryNumbers(
            **{name: (float if kind is float else int)(row[name]) for name, kind in names.items()}
        )
        for key, row in values.items()
        if set(names) <= set(row)
    }


def summary_rows(stats: SummaryNumbers) -> tuple[str, dict[str, Any]]:
    """The SN counters as (field, value) rows of ``SUMMARY_TABLE``: a SELECT and its
    parameters."""
    names = [f.name for f in fields(stats)]
    return (
        "SELECT $key, unnest($names), unnest($values)",
        {"names": names, "values": [float(getattr(stats, name)) for name in names]},
    )
