"""The complete text ``samtools stats FILE`` prints without a reference (samtools 1.24, default
options), from the stored reads: every section, byte for byte.

stats.c, output_stats, section by section: CHK, SN, FFQ/LFQ, GCF/GCL, GCC, GCT, FBC/FTC, LBC/LTC,
the barcode sections, IS, RL/FRL/LRL, MAPQ, ID, IC and, for coordinate-sorted files, COV and GCD.
Where samtools keeps a C ``float`` the arithmetic is done in single precision so the printed
digits agree.

Cost: about 10 s (unsorted) to 14 s (sorted) of CPU per million 150-bp reads, three times the
ingest, most of it in the per-base pass (``base_counts``) and the file-order queries. So it runs
on demand only (``bam-assets stats``, the MultiQC export), never as part of the per-file
summaries.
"""

import duckdb
import numpy as np

from bam_assets.model.sam import DUPLICATE, QCFAIL, SECONDARY, SUPPLEMENTARY, UNMAPPED
from bam_assets.model.tables import TableNames
from bam_assets.stats.barcodes import barcode_lines
from bam_assets.stats.base_counts import BaseCounts, base_counts
from bam_assets.stats.indels import indel_lines
from bam_assets.stats.records import records_sql
from bam_assets.stats.samtools_text import float_ratio, sn_lines
from bam_assets.stats.sorted_sections import coverage_lines, gc_depth_lines, ordered_records
from bam_assets.stats.summary_numbers import (
    DEFAULT_MAX_INSERT_SIZE,
    SummaryNumbers,
    insert_size_bulk,
    insert_size_histogram,
    summary_numbers,
)

# What samtools_version() and hts_version() say in the samtools bundled with pysam 0.24.1, the
# oracle of the tests. MultiQC reads the versions from this line, and finds the file by its
# first words.
SAMTOOLS_VERSION = "1.24 (pysam)"
HTSLIB_VERSION = "1.24"
_QUALITY_VALUES = 257  # stats->nquals
_GC_BINS = 200  # stats->ngc

# RL/FRL/LRL: read_lengths[unclipped length]++ for original records with SEQ.
_READ_LENGTHS_SQL = """
    SELECT read_len, count(*), count(*) FILTER (read_order = 1), count(*) FILTER (read_order = 2)
    FROM ({records})
    WHERE NOT is_secondary AND NOT is_supplementary AND seq_len > 0
    GROUP BY read_len ORDER BY read_len
"""

# MAPQ: mapping_qualities[core.qual]++ unless UNMAP|SECONDARY|SUPPLEMENTARY|QCFAIL|DUP, with SEQ.
_MAPQ_SQL = """
    SELECT mapq, count(*) FROM ({records})
    WHERE flag & $excluded = 0 AND seq_len > 0
    GROUP BY mapq ORDER BY mapq
"""

# GCF/GCL: collect_orig_read_stats adds 1 to gc_1st/gc_2nd[i] for every i in
# [gc_count*(ngc-1)/seq_len, (gc_count+1)*(ngc-1)/seq_len) (C integer division, capped at
# ngc-1). Grouped by (fragment, gc_count, seq_len) here; the bins are filled in Python.
_GC_SQL = """
    SELECT read_order, gc_count, seq_len, count(*)
    FROM ({records})
    WHERE NOT is_secondary AND NOT is_supplementary AND seq_len > 0 AND read_order IN (1, 2)
    GROUP BY ALL
"""


def stats_text(
    connection: duckdb.DuckDBPyConnection,
    tables: TableNames,
    key: str,
    path: str,
    command_line: str | None = None,
    max_insert_size: int = DEFAULT_MAX_INSERT_SIZE,
) -> str:
    """What ``samtools stats`` prints for partition ``key`` (no reference).

    ``# The command line was:`` reads ``stats <path>`` unless ``command_line`` says otherwise
    (samtools prints its own arguments there).
    """
    numbers = summary_numbers(connection, tables, key, max_insert_size=max_insert_size)
    histogram = insert_size_histogram(connection, tables, key, max_insert_size)
    ordered = ordered_records(connection, tables, key)
    bases = base_counts(connection, tables, key)
    records = records_sql(tables)
    checksums = bases.checksums

    out = [
        f"# This file was produced by samtools stats ({SAMTOOLS_VERSION}+htslib-{HTSLIB_VERSION})"
        " and can be plotted using plot-bamstats",
        "# This file contains statistics for all reads.",
        f"# The command line was:  {command_line or 'stats ' + path}",
        "# CHK, Checksum\t[2]Read Names\t[3]Sequences\t[4]Qualities",
        "# CHK, CRC32 of reads which passed filtering followed by addition (32bit overflow)",
        f"CHK\t{checksums.names:08x}\t{checksums.sequences:08x}\t{checksums.qualities:08x}",
        "# Summary Numbers. Use `grep ^SN | cut -f 2-` to extract this part.",
        *sn_lines(numbers, ordered.is_sorted).splitlines(),
    ]
    out += _quality_lines(bases, numbers)
    gc_first, gc_last = _gc_lines(connection, records, key)
    out.append("# GC Content of first fragments. Use `grep ^GCF | cut -f 2-` to extract this part.")
    out += gc_first
    out.append("# GC Content of last fragments. Use `grep ^GCL | cut -f 2-` to extract this part.")
    out += gc_last
    out += _content_lines(bases)
    out += barcode_lines(connection, tables, key)

    out.append(
        "# Insert sizes. Use `grep ^IS | cut -f 2-` to extract this part. The columns are: "
        "insert size, pairs total, inward oriented pairs, outward oriented pairs, other pairs"
    )
    limit = insert_size_bulk(histogram).limit
    by_size = {b.insert_size: b for b in histogram}
    for size in range(limit):
        b = by_size.get(size)
        inward, outward, other = (b.inward, b.outward, b.other) if b else (0, 0, 0)
        out.append(f"IS\t{size}\t{inward + outward + other}\t{inward}\t{outward}\t{other}")

    lengths = connection.execute(_READ_LENGTHS_SQL.format(records=records), {"key": key})
    lengths = lengths.fetchall()
    for title, tag, column in (
        ("Read lengths", "RL", 1),
        ("Read lengths - first fragments", "FRL", 2),
        ("Read lengths - last fragments", "LRL", 3),
    ):
        out.append(
            f"# {title}. Use `grep ^{tag} | cut -f 2-` to extract this part. The columns are: "
            "read length, count"
        )
        out += [f"{tag}\t{row[0]}\t{row[column]}" for row in lengths if row[column]]

    out.append(
        "# Mapping qualities for reads !(UNMAP|SECOND|SUPPL|QCFAIL|DUP). Use `grep ^MAPQ | cut "
        "-f 2-` to extract this part. The columns are: mapq, count"
    )
    excluded = UNMAPPED | SECONDARY | SUPPLEMENTARY | QCFAIL | DUPLICATE
    mapq = connection.execute(_MAPQ_SQL.format(records=records), {"key": key, "excluded": excluded})
    out += [f"MAPQ\t{quality}\t{count}" for quality, count in mapq.fetchall()]

    ids, ics = indel_lines(connection, tables, key)
    out.append(
        "# Indel distribution. Use `grep ^ID | cut -f 2-` to extract this part. The columns are: "
        "length, number of insertions, number of deletions"
    )
    out += ids
    out.append(
        "# Indels per cycle. Use `grep ^IC | cut -f 2-` to extract this part. The columns are: "
        "cycle, number of insertions (fwd), .. (rev) , number of deletions (fwd), .. (rev)"
    )
    out += ics

    if ordered.is_sorted:
        out.append("# Coverage distribution. Use `grep ^COV | cut -f 2-` to extract this part.")
        out += coverage_lines(connection, tables, key)
        out.append(
            "# GC-depth. Use `grep ^GCD | cut -f 2-` to extract this part. The columns are: GC%, "
            "unique sequence percentiles, 10th, 25th, 50th, 75th and 90th depth percentile"
        )
        average_length = (
            np.float32(float_ratio(numbers.total_length, numbers.sequences))
            if numbers.sequences
            else np.float32(0)
        )
        out += gc_depth_lines(ordered, average_length)
    return "\n".join(out) + "\n"


def _quality_lines(bases: BaseCounts, numbers: SummaryNumbers) -> list[str]:
    """FFQ/LFQ: rows 1..maximum first/last fragment length (unclipped lengths, supplementary
    records included, so all-zero rows can appear), columns 0..max_qual+1 (output_stats adds 1
    unless a QUAL '*' made the maximum 255)."""
    max_quality = bases.max_quality
    if max_quality + 1 < _QUALITY_VALUES and max_quality < 255:
        max_quality += 1
    out = []
    for title, tag, fragment, rows in (
        ("First", "FFQ", 0, numbers.maximum_first_fragment_length),
        ("Last", "LFQ", 1, numbers.maximum_last_fragment_length),
    ):
        out.append(
            f"# {title} Fragment Qualities. Use `grep ^{tag} | cut -f 2-` to extract this part."
        )
        out.append(
            "# Columns correspond to qualities and rows to cycles. First column is the cycle "
            "number."
        )
        block = np.zeros((rows, max_quality + 1), np.int64)
        have = bases.quality[fragment, :rows, : max_quality + 1]
        block[: have.shape[0], : have.shape[1]] = have
        for cycle, values in enumerate(block.tolist()):
            out.append(f"{tag}\t{cycle + 1}\t" + "\t".join(map(str, values)))
    return out


def _gc_lines(
    connection: duckdb.DuckDBPyConnection, records: str, key: str
) -> tuple[list[str], list[str]]:
    """GCF and GCL lines: output_stats prints a line where the count changes, at the midpoint
    of the run before (``(i + prev) * 0.5 * 100 / (ngc - 1)``); the last run is never printed."""
    gc = {1: np.zeros(_GC_BINS, np.int64), 2: np.zeros(_GC_BINS, np.int64)}
    rows = connection.execute(_GC_SQL.format(records=records), {"key": key}).fetchall()
    for order, gc_count, seq_length, n in rows:
        low = gc_count * (_GC_BINS - 1) // seq_length
        high = min((gc_count + 1) * (_GC_BINS - 1) // seq_length, _GC_BINS - 1)
        if high > low:
            gc[order][low:high] += n

    def text(tag: str, values: np.ndarray) -> list[str]:
        out, previous = [], 0
        for i in range(_GC_BINS):
            if values[i] == values[previous]:
                continue
            percent = (i + previous) * 0.5 * 100.0 / (_GC_BINS - 1)
            out.append(f"{tag}\t{percent:.2f}\t{values[previous]}")
            previous = i
        return out

    return text("GCF", gc[1]), text("GCL", gc[2])


def _percent_row(tag: str, cycle: int, counts: np.ndarray, with_n_and_other: bool) -> str | None:
    """A base-content line: A, C, G, T (and N, other) as percentages of A+C+G+T; no line for a
    cycle without A, C, G or T."""
    a, c, g, t, n, other = (int(x) for x in counts)
    total = a + c + g + t
    if not total:
        return None
    values = [a, c, g, t] + ([n, other] if with_n_and_other else [])
    return f"{tag}\t{cycle}\t" + "\t".join(f"{100.0 * v / total:.2f}" for v in values)


def _content_lines(bases: BaseCounts) -> list[str]:
    """GCC (both fragments), GCT (read oriented), FBC/FTC and LBC/LTC."""
    content = bases.content
    cycles = content.shape[1]
    out = [
        "# ACGT content per cycle. Use `grep ^GCC | cut -f 2-` to extract this part. The columns "
        "are: cycle; A,C,G,T base counts as a percentage of all A/C/G/T bases [%]; and N and O "
        "counts as a percentage of all A/C/G/T bases [%]"
    ]
    for cycle in range(cycles):
        line = _percent_row("GCC", cycle + 1, content[0, cycle] + content[1, cycle], True)
        if line:
            out.append(line)
    out.append(
        "# ACGT content per cycle, read oriented. Use `grep ^GCT | cut -f 2-` to extract this "
        "part. The columns are: cycle; A,C,G,T base counts as a percentage of all A/C/G/T bases [%]"
    )
    for cycle in range(cycles):
        counts = np.concatenate((bases.read_oriented[cycle], [0, 0]))
        line = _percent_row("GCT", cycle + 1, counts, False)
        if line:
            out.append(line)
    for title, tag, total_tag, fragment in (("first", "FBC", "FTC", 0), ("last", "LBC", "LTC", 1)):
        out.append(
            f"# ACGT content per cycle for {title} fragments. Use `grep ^{tag} | cut -f 2-` to "
            "extract this part. The columns are: cycle; A,C,G,T base counts as a percentage of "
            "all A/C/G/T bases [%]; and N and O counts as a percentage of all A/C/G/T bases [%]"
        )
        for cycle in range(cycles):
            line = _percent_row(tag, cycle + 1, content[fragment, cycle], True)
            if line:
                out.append(line)
        totals = content[fragment].sum(axis=0) if cycles else np.zeros(6, np.int64)
        out.append(
            f"# ACGT raw counters for {title} fragments. Use `grep ^{total_tag} | cut -f 2-` to "
            "extract this part. The columns are: A,C,G,T,N base counters"
        )
        out.append(f"{total_tag}\t" + "\t".join(str(int(v)) for v in totals[:5]))
    return out
