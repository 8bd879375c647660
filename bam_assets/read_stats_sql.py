"""Read statistics as SQL over the ``reads`` table, reproducing samtools 1.24 definitions.

Every statistic runs inside DuckDB; only small results (counts, histograms of at most a few
thousand rows) reach Python. Each query names the samtools source it reproduces:
``bam_stat.c`` (flagstat), ``bam_index.c`` (idxstats) and ``stats.c`` (``samtools stats``).

Coordinates follow the reads table: ``pos`` and ``end_pos`` are 1-based and inclusive. Window
starts in the coverage tables are 1-based too.

Summary tables are named ``read_stats_<name>`` (derived from the configured reads table) and keyed
by partition key; each write replaces one partition's rows in one transaction.
"""

import math
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path

import duckdb

from bam_assets.duckdb_store import StoreConfig, header_text, transaction

# samtools stats defaults: ``-i, --insert-size`` (8000) and ``-m, --most-inserts`` (0.99).
DEFAULT_MAX_INSERT_SIZE = 8000
DEFAULT_INSERT_BULK = 0.99
DEFAULT_COVERAGE_WINDOW = 100_000

# Flag bits (SAM specification 1.4), used as SQL parameters.
_UNMAP, _SECONDARY, _QCFAIL, _DUP, _SUPPLEMENTARY = 0x4, 0x100, 0x200, 0x400, 0x800


def stats_table(config: StoreConfig, name: str) -> str:
    """``read_stats_<name>`` for the default ``reads`` table; a validated identifier."""
    base = config.reads_table[:-1] if config.reads_table.endswith("s") else config.reads_table
    return f"{base}_stats_{name}"


def _lengths(pattern: str) -> str:
    """Sum of the lengths of CIGAR operations matching ``pattern`` (a regex character class)."""
    return (
        f"coalesce(list_sum(list_transform(regexp_extract_all(cigar, '(\\d+){pattern}', 1), "
        f"lambda x: x::BIGINT)), 0)"
    )


# One row per record with the quantities samtools derives from bam1_t. ``seq_len`` is
# ``core.l_qseq`` (0 when SEQ is '*'); ``read_len`` is stats.c's unclipped_length (l_qseq plus
# hard clips); ``read_order`` is stats.c's READ_ORDER: unpaired reads count as first fragments,
# paired ones as 1 (READ1), 2 (READ2), 3 (both) or 0 (neither); ``mate_rname`` resolves '='.
_RECORDS = f"""
    SELECT flag, rname, pos, end_pos, mapq, cigar, tlen, seq, qual, tags, pnext, qual_sum,
           gc_count,
           CASE WHEN rnext = '=' THEN rname ELSE rnext END AS mate_rname,
           CASE WHEN seq = '*' THEN 0 ELSE length(seq) END AS seq_len,
           CASE WHEN seq = '*' THEN 0 ELSE length(seq) END
               + CASE WHEN contains(cigar, 'H') THEN {_lengths("H")} ELSE 0 END AS read_len,
           CASE WHEN NOT is_paired THEN 1
                ELSE (CASE WHEN is_read1 THEN 1 ELSE 0 END) + (CASE WHEN is_read2 THEN 2 ELSE 0 END)
           END AS read_order,
           is_paired, is_proper_pair, is_unmapped, is_mate_unmapped, is_reverse,
           is_mate_reverse, is_read1, is_read2, is_secondary, is_qcfail, is_duplicate,
           is_supplementary
    FROM {{reads}}
    WHERE key = $key
"""


def _records(config: StoreConfig) -> str:
    return _RECORDS.format(reads=config.reads_table)


# --------------------------------------------------------------------------------------------
# flagstat


FLAGSTAT_CATEGORIES = (
    "total",
    "primary",
    "secondary",
    "supplementary",
    "duplicates",
    "primary_duplicates",
    "mapped",
    "primary_mapped",
    "paired",
    "read1",
    "read2",
    "properly_paired",
    "with_itself_and_mate_mapped",
    "singletons",
    "mate_on_different_chr",
    "mate_on_different_chr_mapq5",
)


@dataclass(frozen=True)
class Flagstat:
    """``samtools flagstat`` counters, each a (QC-passed, QC-failed) pair."""

    total: tuple[int, int]
    primary: tuple[int, int]
    secondary: tuple[int, int]
    supplementary: tuple[int, int]
    duplicates: tuple[int, int]
    primary_duplicates: tuple[int, int]
    mapped: tuple[int, int]
    primary_mapped: tuple[int, int]
    paired: tuple[int, int]
    read1: tuple[int, int]
    read2: tuple[int, int]
    properly_paired: tuple[int, int]
    with_itself_and_mate_mapped: tuple[int, int]
    singletons: tuple[int, int]
    mate_on_different_chr: tuple[int, int]
    mate_on_different_chr_mapq5: tuple[int, int]

    def rows(self) -> list[tuple[str, int, int]]:
        return [(f.name, *getattr(self, f.name)) for f in fields(self)]

    def inconsistencies(self) -> list[str]:
        """Relations that bam_stat.c's counters always satisfy; empty when all hold."""
        problems = []
        for column, label in ((0, "QC-passed"), (1, "QC-failed")):

            def v(name: str, column: int = column) -> int:
                return getattr(self, name)[column]

            if v("primary") + v("secondary") + v("supplementary") != v("total"):
                problems.append(f"{label}: primary + secondary + supplementary != total")
            if v("read1") + v("read2") > 2 * v("paired") or v("paired") > v("primary"):
                problems.append(f"{label}: paired reads exceed primary reads")
            if v("primary_mapped") > v("mapped") or v("mapped") > v("total"):
                problems.append(f"{label}: mapped counts exceed their totals")
            if v("primary_duplicates") > v("duplicates"):
                problems.append(f"{label}: primary duplicates exceed duplicates")
            if v("properly_paired") > v("paired") or v("with_itself_and_mate_mapped") > v("paired"):
                problems.append(f"{label}: pair counts exceed paired reads")
            if v("mate_on_different_chr_mapq5") > v("mate_on_different_chr"):
                problems.append(f"{label}: mapQ>=5 subset exceeds its set")
        return problems


# bam_stat.c, flagstat_loop: every record counts in total, mapped and duplicates; the pairing
# counters look only at primary records (neither secondary nor supplementary) with 0x1 set.
_FLAGSTAT_SQL = """
    WITH r AS ({records}),
    p AS (SELECT *, NOT is_secondary AND NOT is_supplementary AS is_primary FROM r)
    SELECT is_qcfail,
        count(*),
        count(*) FILTER (is_primary),
        count(*) FILTER (is_secondary),
        count(*) FILTER (NOT is_secondary AND is_supplementary),
        count(*) FILTER (is_duplicate),
        count(*) FILTER (is_primary AND is_duplicate),
        count(*) FILTER (NOT is_unmapped),
        count(*) FILTER (is_primary AND NOT is_unmapped),
        count(*) FILTER (is_primary AND is_paired),
        count(*) FILTER (is_primary AND is_paired AND is_read1),
        count(*) FILTER (is_primary AND is_paired AND is_read2),
        count(*) FILTER (is_primary AND is_paired AND is_proper_pair AND NOT is_unmapped),
        count(*) FILTER (is_primary AND is_paired AND NOT is_unmapped AND NOT is_mate_unmapped),
        count(*) FILTER (is_primary AND is_paired AND is_mate_unmapped AND NOT is_unmapped),
        count(*) FILTER (is_primary AND is_paired AND NOT is_unmapped AND NOT is_mate_unmapped
                         AND mate_rname <> rname),
        count(*) FILTER (is_primary AND is_paired AND NOT is_unmapped AND NOT is_mate_unmapped
                         AND mate_rname <> rname AND mapq >= 5)
    FROM p
    GROUP BY is_qcfail
"""


def flagstat(connection: duckdb.DuckDBPyConnection, config: StoreConfig, key: str) -> Flagstat:
    """The partition's ``samtools flagstat`` counters."""
    rows = connection.execute(
        _FLAGSTAT_SQL.format(records=_records(config)), {"key": key}
    ).fetchall()
    counts = {bool(row[0]): row[1:] for row in rows}
    passed = counts.get(False, (0,) * len(FLAGSTAT_CATEGORIES))
    failed = counts.get(True, (0,) * len(FLAGSTAT_CATEGORIES))
    return Flagstat(*[(int(p), int(f)) for p, f in zip(passed, failed, strict=True)])


# --------------------------------------------------------------------------------------------
# idxstats


@dataclass(frozen=True)
class IdxstatsRow:
    """One ``samtools idxstats`` line; ``name`` is ``*`` for unplaced reads."""

    name: str
    length: int
    mapped: int
    unmapped: int


_SQ_LINE = re.compile(r"^@SQ\t(.*)$", re.MULTILINE)


def header_contigs(text: str) -> list[tuple[str, int]]:
    """(name, length) of every @SQ line of a SAM header, in header order."""
    contigs = []
    for match in _SQ_LINE.finditer(text):
        fields_ = dict(field.split(":", 1) for field in match.group(1).split("\t") if ":" in field)
        contigs.append((fields_["SN"], int(fields_.get("LN", 0))))
    return contigs


# bam_index.c (idxstats without an index, and the index's pseudo-bins): all records count,
# including secondary and supplementary; placed records split by 0x4, unplaced go to '*'.
_IDXSTATS_SQL = """
    SELECT rname,
           count(*) FILTER (NOT is_unmapped) AS mapped,
           count(*) FILTER (is_unmapped) AS unmapped,
           count(*) AS records
    FROM {reads}
    WHERE key = $key
    GROUP BY rname
"""


def reference_lengths(reference: str | None) -> dict[str, int]:
    """Sequence lengths from a FASTA reference's ``.fai`` index (empty without one)."""
    if not reference:
        return {}
    fai = Path(f"{reference}.fai")
    if not fai.is_file():
        return {}
    lengths = {}
    for line in fai.read_text().splitlines():
        name, length, *_ = line.split("\t")
        lengths[name] = int(length)
    return lengths


def idxstats(
    connection: duckdb.DuckDBPyConnection,
    config: StoreConfig,
    key: str,
    reference_lengths: dict[str, int] | None = None,
) -> list[IdxstatsRow]:
    """One row per @SQ contig in header order, then ``*`` (all records without a reference).

    For CRAM files htslib replaces an @SQ length that disagrees with the reference's ``.fai``
    (sanitise_SQ_lines), and idxstats prints the replaced length; pass ``reference_lengths``
    (see ``reference_lengths()``) to do the same.
    """
    counts = {
        name: (mapped, unmapped, records)
        for name, mapped, unmapped, records in connection.execute(
            _IDXSTATS_SQL.format(reads=config.reads_table), {"key": key}
        ).fetchall()
    }
    overrides = reference_lengths if _format(connection, config, key) == "CRAM" else None
    rows = []
    for name, length in header_contigs(header_text(connection, config, key)):
        mapped, unmapped, _ = counts.get(name, (0, 0, 0))
        if overrides and name in overrides:
            length = overrides[name]
        rows.append(IdxstatsRow(name, length, int(mapped), int(unmapped)))
    unplaced = counts.get("*", (0, 0, 0))[2]
    rows.append(IdxstatsRow("*", 0, 0, int(unplaced)))
    return rows


def _format(connection: duckdb.DuckDBPyConnection, config: StoreConfig, key: str) -> str:
    rows = connection.execute(
        f"SELECT format FROM {config.files_table} WHERE key = ?", [key]
    ).fetchall()
    return rows[0][0] if rows else ""


# --------------------------------------------------------------------------------------------
# samtools stats: summary numbers


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
        coalesce(sum(coalesce(sam_tag_int(tags, 'NM'), 0)) FILTER (NOT is_unmapped), 0),
        coalesce(max(read_len), 0),
        coalesce(max(read_len) FILTER (read_order = 1), 0),
        coalesce(max(read_len) FILTER (read_order = 2), 0),
        -- a missing QUAL counts 255 per base, as in stats.c
        coalesce(sum(coalesce(qual_sum, 255 * seq_len))
                 FILTER (is_original AND read_order IN (1, 2)), 0),
        count(*) FILTER (is_original AND NOT is_unmapped AND is_paired AND NOT is_mate_unmapped
                         AND mate_rname <> rname)
    FROM s
"""

# stats.c, collect_stats: insert sizes of original, mapped, paired records whose mate is mapped;
# |TLEN| capped at -i (8000); counted when non-zero or the mate is on the same reference.
# Orientation from the read's and mate's strands and which of the two comes first; every pair
# is seen twice, so output_stats halves each bin (integer truncation).
_INSERT_SIZE_SQL = """
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
              AND (tlen <> 0 OR mate_rname = rname)
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
    config: StoreConfig,
    key: str,
    max_insert_size: int = DEFAULT_MAX_INSERT_SIZE,
) -> list[InsertSizeBin]:
    """Pairs per insert size and orientation, as samtools stats' IS lines before the cut."""
    rows = connection.execute(
        _INSERT_SIZE_SQL.format(records=_records(config)),
        {"key": key, "max_insert": max_insert_size},
    ).fetchall()
    return [InsertSizeBin(*map(int, row)) for row in rows]


def float32(value: float) -> float:
    """``value`` rounded to single precision, as a C ``float`` holds it."""
    return struct.unpack("f", struct.pack("f", value))[0]


def insert_size_moments(
    histogram: Sequence[InsertSizeBin], bulk_fraction: float = DEFAULT_INSERT_BULK
) -> tuple[float, float]:
    """Average and standard deviation of the main bulk of insert sizes (stats.c, output_stats).

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
    return average, math.sqrt(variance)


def summary_numbers(
    connection: duckdb.DuckDBPyConnection,
    config: StoreConfig,
    key: str,
    max_insert_size: int = DEFAULT_MAX_INSERT_SIZE,
    insert_bulk: float = DEFAULT_INSERT_BULK,
) -> SummaryNumbers:
    """The reference-free SN numbers of ``samtools stats`` for one partition."""
    row = connection.execute(
        _SUMMARY_SQL.format(records=_records(config), cigar_mapped=_lengths("[MI=X]")),
        {"key": key},
    ).fetchone()
    assert row is not None
    values = [int(v) for v in row]
    *counts, anomalous = values
    histogram = insert_size_histogram(connection, config, key, max_insert_size)
    average, deviation = insert_size_moments(histogram, insert_bulk)
    return SummaryNumbers(
        *counts,
        reads_on_different_chromosomes=anomalous,
        inward_pairs=sum(b.inward for b in histogram),
        outward_pairs=sum(b.outward for b in histogram),
        other_pairs=sum(b.other for b in histogram),
        insert_size_average=average,
        insert_size_standard_deviation=deviation,
    )


# --------------------------------------------------------------------------------------------
# Summary tables: one partition's rows replaced in one transaction


def _replace_partition_rows(
    connection: duckdb.DuckDBPyConnection,
    table: str,
    columns: str,
    key: str,
    insert_sql: str,
    parameters: dict[str, object] | None = None,
) -> int:
    """Creates ``table`` if needed and replaces the rows of ``key`` with ``insert_sql``'s."""
    with transaction(connection):
        connection.execute(f"CREATE TABLE IF NOT EXISTS {table} (key VARCHAR NOT NULL, {columns})")
        connection.execute(f"DELETE FROM {table} WHERE key = ?", [key])
        connection.execute(f"INSERT INTO {table} {insert_sql}", {"key": key, **(parameters or {})})
        count = connection.execute(f"SELECT count(*) FROM {table} WHERE key = ?", [key]).fetchone()
    return int(count[0]) if count else 0


def write_flagstat(
    connection: duckdb.DuckDBPyConnection, config: StoreConfig, key: str, stats: Flagstat
) -> int:
    """Stores ``stats`` in ``read_stats_flagstat`` (one row per category, in samtools order)."""
    rows = stats.rows()
    return _replace_partition_rows(
        connection,
        stats_table(config, "flagstat"),
        "ordinal INTEGER, category VARCHAR, qc_passed BIGINT, qc_failed BIGINT",
        key,
        "SELECT $key, unnest(range(len($names))) + 1, unnest($names), unnest($passed), "
        "unnest($failed)",
        {
            "names": [r[0] for r in rows],
            "passed": [r[1] for r in rows],
            "failed": [r[2] for r in rows],
        },
    )


def write_idxstats(
    connection: duckdb.DuckDBPyConnection,
    config: StoreConfig,
    key: str,
    rows: Sequence[IdxstatsRow],
) -> int:
    """Stores idxstats rows in ``read_stats_idxstats`` (header order, ``*`` last)."""
    return _replace_partition_rows(
        connection,
        stats_table(config, "idxstats"),
        "ordinal INTEGER, contig VARCHAR, length BIGINT, mapped BIGINT, unmapped BIGINT",
        key,
        "SELECT $key, unnest(range(len($names))) + 1, unnest($names), unnest($lengths), "
        "unnest($mapped), unnest($unmapped)",
        {
            "names": [r.name for r in rows],
            "lengths": [r.length for r in rows],
            "mapped": [r.mapped for r in rows],
            "unmapped": [r.unmapped for r in rows],
        },
    )


def write_summary_numbers(
    connection: duckdb.DuckDBPyConnection, config: StoreConfig, key: str, stats: SummaryNumbers
) -> int:
    """Stores the SN counters in ``read_stats_summary`` as (field, value) rows."""
    names = [f.name for f in fields(stats)]
    return _replace_partition_rows(
        connection,
        stats_table(config, "summary"),
        "field VARCHAR, value DOUBLE",
        key,
        "SELECT $key, unnest($names), unnest($values)",
        {"names": names, "values": [float(getattr(stats, name)) for name in names]},
    )


# stats.c, collect_stats: the MAPQ histogram skips unmapped, secondary, supplementary, QC-failed
# and duplicate records (and records without SEQ).
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

_COVERAGE_EXCLUDED = _UNMAP | _SECONDARY | _QCFAIL | _DUP
_MAPQ_EXCLUDED = _UNMAP | _SECONDARY | _SUPPLEMENTARY | _QCFAIL | _DUP


def write_distributions(
    connection: duckdb.DuckDBPyConnection,
    config: StoreConfig,
    key: str,
    coverage_window: int = DEFAULT_COVERAGE_WINDOW,
    max_insert_size: int = DEFAULT_MAX_INSERT_SIZE,
) -> dict[str, int]:
    """Writes the partition's distribution tables; returns the row count of each table.

    Tables (``read_stats_<name>``): ``mapq``, ``read_length``, ``insert_size``,
    ``quality_by_cycle``, ``gc_content``, ``coverage_contig`` and ``coverage_window``
    (windows of ``coverage_window`` bases, 1-based inclusive starts and ends; windows without
    coverage are left out).
    """
    if coverage_window <= 0:
        raise ValueError(f"coverage_window must be positive, not {coverage_window}")
    records = _records(config)
    covered = _COVERED_RECORDS.format(reads=config.reads_table)
    contigs = header_contigs(header_text(connection, config, key))
    contig_parameters = {
        "names": [name for name, _ in contigs],
        "lengths": [length for _, length in contigs],
    }
    counts = {
        "mapq": _replace_partition_rows(
            connection,
            stats_table(config, "mapq"),
            "mapq INTEGER, reads BIGINT",
            key,
            _MAPQ_SQL.format(records=records),
            {"excluded": _MAPQ_EXCLUDED},
        ),
        "read_length": _replace_partition_rows(
            connection,
            stats_table(config, "read_length"),
            "read_length BIGINT, reads BIGINT, first_fragments BIGINT, last_fragments BIGINT",
            key,
            _READ_LENGTH_SQL.format(records=records),
        ),
        "insert_size": _replace_partition_rows(
            connection,
            stats_table(config, "insert_size"),
            "insert_size BIGINT, inward BIGINT, outward BIGINT, other BIGINT, pairs BIGINT",
            key,
            "SELECT $key, insert_size, inward, outward, other, inward + outward + other "
            f"FROM ({_INSERT_SIZE_SQL.format(records=records)}) "
            "WHERE inward + outward + other > 0",
            {"max_insert": max_insert_size},
        ),
        "quality_by_cycle": _replace_partition_rows(
            connection,
            stats_table(config, "quality_by_cycle"),
            "fragment VARCHAR, cycle BIGINT, bases BIGINT, quality_sum BIGINT, mean_quality DOUBLE",
            key,
            _QUALITY_BY_CYCLE_SQL.format(cycles=config.cycle_table),
        ),
        "gc_content": _replace_partition_rows(
            connection,
            stats_table(config, "gc_content"),
            "gc_percent INTEGER, first_fragments BIGINT, last_fragments BIGINT",
            key,
            _GC_CONTENT_SQL.format(records=records),
        ),
        "coverage_contig": _replace_partition_rows(
            connection,
            stats_table(config, "coverage_contig"),
            "ordinal INTEGER, contig VARCHAR, length BIGINT, reads BIGINT, bases BIGINT, "
            "covered_bases BIGINT, mean_depth DOUBLE, breadth DOUBLE",
            key,
            _COVERAGE_CONTIG_SQL.format(covered=covered),
            {"excluded": _COVERAGE_EXCLUDED, **contig_parameters},
        ),
        "coverage_window": _replace_partition_rows(
            connection,
            stats_table(config, "coverage_window"),
            "contig VARCHAR, window_start BIGINT, window_end BIGINT, reads BIGINT, bases BIGINT, "
            "mean_depth DOUBLE",
            key,
            _COVERAGE_WINDOW_SQL.format(covered=covered),
            {"excluded": _COVERAGE_EXCLUDED, "window": coverage_window, **contig_parameters},
        ),
    }
    return counts


def distribution(
    connection: duckdb.DuckDBPyConnection, config: StoreConfig, key: str, name: str
) -> list[tuple]:
    """The stored rows of one distribution table for ``key`` (without the key column)."""
    table = stats_table(config, name)
    result = connection.execute(
        f"SELECT * EXCLUDE (key) FROM {table} WHERE key = ? ORDER BY ALL", [key]
    )
    return result.fetchall()


# --------------------------------------------------------------------------------------------
# Cross-file overview and partition integrity


OVERVIEW_COLUMNS = (
    "key",
    "format",
    "records",
    "primary",
    "primary_mapped",
    "properly_paired",
    "duplicates",
    "secondary",
    "supplementary",
    "qc_failed",
    "ingest_seconds",
)

# Per file, samtools flagstat's QC-passed + QC-failed counts of the same names.
_OVERVIEW_SQL = """
    SELECT f.key, f.format, count(r.key) AS records,
           count(*) FILTER (r.flag & {non_primary} = 0) AS "primary",
           count(*) FILTER (r.flag & {non_primary} = 0 AND NOT r.is_unmapped) AS primary_mapped,
           count(*) FILTER (r.flag & {non_primary} = 0 AND r.is_paired AND r.is_proper_pair
                            AND NOT r.is_unmapped) AS properly_paired,
           count(*) FILTER (r.is_duplicate) AS duplicates,
           count(*) FILTER (r.is_secondary) AS secondary,
           count(*) FILTER (NOT r.is_secondary AND r.is_supplementary) AS supplementary,
           count(*) FILTER (r.is_qcfail) AS qc_failed,
           f.ingest_seconds
    FROM {files} f LEFT JOIN {reads} r ON r.key = f.key
    GROUP BY f.key, f.format, f.ingest_seconds
    ORDER BY f.key
"""


def write_overview(connection: duckdb.DuckDBPyConnection, config: StoreConfig) -> list[tuple]:
    """Rebuilds ``read_stats_overview`` (one row per ingested file) and returns its rows."""
    table = stats_table(config, "overview")
    query = _OVERVIEW_SQL.format(
        files=config.files_table,
        reads=config.reads_table,
        non_primary=_SECONDARY | _SUPPLEMENTARY,
    )
    with transaction(connection):
        connection.execute(f"CREATE OR REPLACE TABLE {table} AS {query}")
        rows = connection.execute(f"SELECT * FROM {table} ORDER BY key").fetchall()
    return rows


@dataclass(frozen=True)
class PartitionIntegrity:
    """Row bookkeeping of one partition: rec_no must run 0..n-1 exactly once each."""

    rows: int
    distinct_rec_no: int
    min_rec_no: int | None
    max_rec_no: int | None
    files_read_count: int | None

    @property
    def duplicated_rows(self) -> int:
        return self.rows - self.distinct_rec_no

    @property
    def consistent(self) -> bool:
        contiguous = self.rows == 0 or (self.min_rec_no == 0 and self.max_rec_no == self.rows - 1)
        return self.duplicated_rows == 0 and contiguous and self.files_read_count == self.rows


def partition_integrity(
    connection: duckdb.DuckDBPyConnection, config: StoreConfig, key: str
) -> PartitionIntegrity:
    row = connection.execute(
        f"""
        SELECT count(*), count(DISTINCT rec_no), min(rec_no), max(rec_no),
               (SELECT read_count FROM {config.files_table} WHERE key = $key)
        FROM {config.reads_table}
        WHERE key = $key
        """,
        {"key": key},
    ).fetchone()
    assert row is not None
    return PartitionIntegrity(*row)
