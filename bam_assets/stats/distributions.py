"""Distributions of one partition (samtools stats' MAPQ, RL, IS, FFQ/LFQ and GCF/GCL, and
coverage), each stored in a table of its own keyed by partition.

``distribution_queries`` says what to store (table, SELECT, parameters); the caller's store writes
each table; ``distribution`` reads one back.
"""

from dataclasses import dataclass
from typing import Any

import duckdb

from bam_assets.model.sam import DUPLICATE, QCFAIL, SECONDARY, SUPPLEMENTARY, UNMAPPED
from bam_assets.model.sam_header import header_contigs
from bam_assets.model.tables import TableNames, TableSpec
from bam_assets.stats.cycle_quality import CYCLE_QUALITY_TABLE
from bam_assets.stats.records import records_sql
from bam_assets.stats.summary_numbers import DEFAULT_MAX_INSERT_SIZE, INSERT_SIZE_SQL

DEFAULT_COVERAGE_WINDOW = 100_000

DISTRIBUTION_TABLES = {
    "mapq": TableSpec("read_stats_mapq", "mapq INTEGER, reads BIGINT"),
    "read_length": TableSpec(
        "read_stats_read_length",
        "read_length BIGINT, reads BIGINT, first_fragments BIGINT, last_fragments BIGINT",
    ),
    "insert_size": TableSpec(
        "read_stats_insert_size",
        "insert_size BIGINT, inward BIGINT, outward BIGINT, other BIGINT, pairs BIGINT",
    ),
    "quality_by_cycle": TableSpec(
        "read_stats_quality_by_cycle",
        "fragment VARCHAR, cycle BIGINT, bases BIGINT, quality_sum BIGINT, mean_quality DOUBLE",
    ),
    "gc_content": TableSpec(
        "read_stats_gc_content", "gc_percent INTEGER, first_fragments BIGINT, last_fragments BIGINT"
    ),
    "coverage_contig": TableSpec(
        "read_stats_coverage_contig",
        "ordinal INTEGER, contig VARCHAR, length BIGINT, reads BIGINT, bases BIGINT, "
        "covered_bases BIGINT, mean_depth DOUBLE, breadth DOUBLE",
    ),
    "coverage_window": TableSpec(
        "read_stats_coverage_window",
        "contig VARCHAR, window_start BIGINT, window_end BIGINT, reads BIGINT, bases BIGINT, "
        "mean_depth DOUBLE",
    ),
}


@dataclass(frozen=True)
class DistributionQuery:
    """One distribution table of a partition: where it goes and the SELECT that fills it (its
    first column is ``$key``)."""

    name: str
    table: TableSpec
    select_sql: str
    parameters: dict[str, Any]


_MAPQ_SQL = """
    SELECT $key, mapq, count(*)
    FROM ({records})
    WHERE flag & $excluded = 0 AND seq_len > 0
    GROUP BY mapq
"""

# stats.c, RL/FRL/LRL lines: unclipped lengths (hard clips added back) of original records.
_READ_LENGTH_SQL = """
    SELECT $key, read_len, count(*),
           count(*) FILTER (read_order = 1), count(*) FILTER (read_order = 2)
    FROM ({records})
    WHERE NOT is_secondary AND NOT is_supplementary AND seq_len > 0
    GROUP BY read_len
"""

# stats.c, FFQ/LFQ lines: the quality of each sequencing cycle (reverse-strand records read
# back to front) of original first and last fragments; a missing QUAL counts as 255. Summed per
# cycle at ingest (cycle_quality.py) into the cycle table.
_QUALITY_BY_CYCLE_SQL = """
    SELECT $key, CASE fragment WHEN 1 THEN 'first' ELSE 'last' END, cycle, bases, quality_sum,
           quality_sum / bases
    FROM {cycles}
    WHERE key = $key
"""

# stats.c, GCF/GCL lines, at a resolution of whole percent: G+C share of each original
# fragment's sequence.
_GC_CONTENT_SQL = """
    SELECT $key, gc_percent,
           count(*) FILTER (read_order = 1), count(*) FILTER (read_order = 2)
    FROM (
        SELECT read_order,
               round(100.0 * gc_count / seq_len)::INTEGER AS gc_percent
        FROM ({records})
        WHERE NOT is_secondary AND NOT is_supplementary AND seq_len > 0
              AND read_order IN (1, 2)
    )
    GROUP BY gc_percent
"""

# Coverage counts what ``samtools depth``/``samtools coverage`` count by default: records not
# unmapped, secondary, QC-failed or duplicate, over their reference span (pos..end_pos,
# deletions included). Covered bases are the union of those spans (islands of overlapping reads).
_COVERED_RECORDS = """
    SELECT rname, pos, end_pos
    FROM {reads}
    WHERE key = $key AND flag & $excluded = 0 AND rname <> '*' AND end_pos >= pos
"""

_COVERAGE_CONTIG_SQL = """
    WITH a AS ({covered}),
    ordered AS (
        SELECT *, max(end_pos) OVER (PARTITION BY rname ORDER BY pos, end_pos
                                     ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS reach
        FROM a
    ),
    numbered AS (
        SELECT *, sum(CASE WHEN reach IS NULL OR pos > reach THEN 1 ELSE 0 END)
                      OVER (PARTITION BY rname ORDER BY pos, end_pos ROWS UNBOUNDED PRECEDING)
                      AS island
        FROM ordered
    ),
    islands AS (
        SELECT rname, count(*) AS reads, sum(end_pos - pos + 1) AS bases,
               max(end_pos) - min(pos) + 1 AS covered
        FROM numbered
        GROUP BY rname, island
    ),
    per_contig AS (
        SELECT rname, sum(reads) AS reads, sum(bases) AS bases, sum(covered) AS covered
        FROM islands
        GROUP BY rname
    ),
    contigs AS (
        SELECT unnest(range(len($names))) + 1 AS ordinal, unnest($names) AS contig,
               unnest($lengths) AS length
    )
    SELECT $key, c.ordinal, c.contig, c.length, coalesce(p.reads, 0), coalesce(p.bases, 0),
           coalesce(p.covered, 0),
           CASE WHEN c.length > 0 THEN coalesce(p.bases, 0) / c.length END,
           CASE WHEN c.length > 0 THEN coalesce(p.covered, 0) / c.length END
    FROM contigs c LEFT JOIN per_contig p ON p.rname = c.contig
"""

_COVERAGE_WINDOW_SQL = """
    WITH a AS ({covered}),
    pieces AS (
        SELECT rname, pos, end_pos,
               unnest(range((pos - 1) // $window, (end_pos - 1) // $window + 1)) AS window_index
        FROM a
    ),
    contigs AS (SELECT unnest($names) AS contig, unnest($lengths) AS length)
    SELECT $key, rname, window_index * $window + 1 AS window_start,
           CASE WHEN c.length > 0 THEN least((window_index + 1) * $window, c.length)
                ELSE (window_index + 1) * $window END AS window_end,
           count(*) AS reads,
           sum(least(end_pos, (window_index + 1) * $window)
               - greatest(pos, window_index * $window + 1) + 1) AS bases,
           sum(least(end_pos, (window_index + 1) * $window)
               - greatest(pos, window_index * $window + 1) + 1)
               / (CASE WHEN c.length > 0 THEN least((window_index + 1) * $window, c.length)
                       ELSE (window_index + 1) * $window END - window_index * $window)
               AS mean_depth
    FROM pieces LEFT JOIN contigs c ON c.contig = pieces.rname
    GROUP BY rname, window_index, c.length
"""

_COVERAGE_EXCLUDED = UNMAPPED | SECONDARY | QCFAIL | DUPLICATE
_MAPQ_EXCLUDED = UNMAPPED | SECONDARY | SUPPLEMENTARY | QCFAIL | DUPLICATE


def distribution_queries(
    tables: TableNames,
    header_text: str,
    coverage_window: int = DEFAULT_COVERAGE_WINDOW,
    max_insert_size: int = DEFAULT_MAX_INSERT_SIZE,
) -> list[DistributionQuery]:
    """The partition's distribution tables: ``mapq``, ``read_length``, ``insert_size``,
    ``quality_by_cycle``, ``gc_content``, ``coverage_contig`` and ``coverage_window`` (windows of
    ``coverage_window`` bases, 1-based inclusive starts and ends; windows without coverage are
    left out). ``header_text`` gives the contigs and their lengths."""
    if coverage_window <= 0:
        raise ValueError(f"coverage_window must be positive, not {coverage_window}")
    records = records_sql(tables)
    covered = _COVERED_RECORDS.format(reads=tables.reads)
    contigs = header_contigs(header_text)
    contig_parameters = {
        "names": [name for name, _ in contigs],
        "lengths": [length for _, length in contigs],
    }
    queries = {
        "mapq": (_MAPQ_SQL.format(records=records), {"excluded": _MAPQ_EXCLUDED}),
        "read_length": (_READ_LENGTH_SQL.format(records=records), {}),
        "insert_size": (
            "SELECT $key, insert_size, inward, outward, other, inward + outward + other "
            f"FROM ({INSERT_SIZE_SQL.format(records=records)}) "
            "WHERE inward + outward + other > 0",
            {"max_insert": max_insert_size},
        ),
        "quality_by_cycle": (
            _QUALITY_BY_CYCLE_SQL.format(cycles=tables.of(CYCLE_QUALITY_TABLE)),
            {},
        ),
        "gc_content": (_GC_CONTENT_SQL.format(records=records), {}),
        "coverage_contig": (
            _COVERAGE_CONTIG_SQL.format(covered=covered),
            {"excluded": _COVERAGE_EXCLUDED, **contig_parameters},
        ),
        "coverage_window": (
            _COVERAGE_WINDOW_SQL.format(covered=covered),
            {"excluded": _COVERAGE_EXCLUDED, "window": coverage_window, **contig_parameters},
        ),
    }
    return [
        DistributionQuery(name, DISTRIBUTION_TABLES[name], select_sql, parameters)
        for name, (select_sql, parameters) in queries.items()
    ]


def distribution(
    connection: duckdb.DuckDBPyConnection, tables: TableNames, key: str, name: str
) -> list[tuple]:
    """The stored rows of one distribution table for ``key`` (without the key column)."""
    table = tables.of(DISTRIBUTION_TABLES[name])
    result = connection.execute(
        f"SELECT * EXCLUDE (key) FROM {table} WHERE key = ? ORDER BY ALL", [key]
    )
    return result.fetchall()
