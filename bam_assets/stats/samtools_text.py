"""Formats read statistics exactly as samtools 1.24 prints them.

``flagstat_text`` and ``idxstats_text`` are byte-identical to ``samtools flagstat`` and
``samtools idxstats``; ``sn_lines`` reproduces the ``SN`` lines of ``samtools stats`` that need no
reference (``samtools_stats`` assembles the complete text). samtools computes several ratios in
single precision (``(float)n / total``); they are rounded to a C ``float`` here before
formatting, so the printed digits agree.
"""

from bam_assets.stats.flagstat import Flagstat
from bam_assets.stats.idxstats import IdxstatsRow
from bam_assets.stats.summary_numbers import SummaryNumbers, float32


def float_ratio(numerator: float, denominator: float) -> float:
    """``(float)numerator / denominator`` in C: both operands and the quotient are floats."""
    return float32(float32(numerator) / float32(denominator))


def flagstat_percent(count: int, total: int) -> str:
    """bam_stat.c, percent(): ``%.2f%%`` of ``(float)n / total * 100.0``, or ``N/A``."""
    if total == 0:
        return "N/A"
    return f"{float_ratio(count, total) * 100.0:.2f}%"


def flagstat_text(stats: Flagstat) -> str:
    """``samtools flagstat`` default output (bam_stat.c, out_fmt_default)."""

    def pair(counts: tuple[int, int]) -> str:
        return f"{counts[0]} + {counts[1]}"

    def percents(counts: tuple[int, int], totals: tuple[int, int]) -> str:
        return (
            f"({flagstat_percent(counts[0], totals[0])} : {flagstat_percent(counts[1], totals[1])})"
        )

    s = stats
    lines = [
        f"{pair(s.total)} in total (QC-passed reads + QC-failed reads)",
        f"{pair(s.primary)} primary",
        f"{pair(s.secondary)} secondary",
        f"{pair(s.supplementary)} supplementary",
        f"{pair(s.duplicates)} duplicates",
        f"{pair(s.primary_duplicates)} primary duplicates",
        f"{pair(s.mapped)} mapped {percents(s.mapped, s.total)}",
        f"{pair(s.primary_mapped)} primary mapped {percents(s.primary_mapped, s.primary)}",
        f"{pair(s.paired)} paired in sequencing",
        f"{pair(s.read1)} read1",
        f"{pair(s.read2)} read2",
        f"{pair(s.properly_paired)} properly paired {percents(s.properly_paired, s.paired)}",
        f"{pair(s.with_itself_and_mate_mapped)} with itself and mate mapped",
        f"{pair(s.singletons)} singletons {percents(s.singletons, s.paired)}",
        f"{pair(s.mate_on_different_chr)} with mate mapped to a different chr",
        f"{pair(s.mate_on_different_chr_mapq5)} with mate mapped to a different chr (mapQ>=5)",
    ]
    return "\n".join(lines) + "\n"


def idxstats_text(rows: list[IdxstatsRow]) -> str:
    """``samtools idxstats`` output: name, length, mapped, unmapped; ``*`` last."""
    return "".join(f"{r.name}\t{r.length}\t{r.mapped}\t{r.unmapped}\n" for r in rows)


def sn_values(s: SummaryNumbers, is_sorted: bool | None = None) -> list[tuple[str, str, str]]:
    """(label, value text, comment) of each SN line, in samtools' order (stats.c, output_stats).

    ``is sorted`` depends on record order rather than on the records: it is printed only when
    ``is_sorted`` is given (see ``sorted_sections``).
    """
    sequences = s.sequences
    order = []
    if is_sorted is not None:
        comment = "sorted by coordinate" if is_sorted else "not sorted by coordinate"
        order = [("is sorted", str(int(is_sorted)), comment)]
    # stats.c sums NM into a uint64_t: with negative NM values the rate is that of the wrapped sum
    error_rate = (
        float_ratio(s.mismatches % (1 << 64), s.bases_mapped_cigar) if s.bases_mapped_cigar else 0
    )
    return [
        ("raw total sequences", str(sequences), "excluding supplementary and secondary reads"),
        ("filtered sequences", "0", ""),
        ("sequences", str(sequences), ""),
        *order,
        ("1st fragments", str(s.first_fragments), ""),
        ("last fragments", str(s.last_fragments), ""),
        ("reads mapped", str(s.reads_mapped), ""),
        (
            "reads mapped and paired",
            str(s.reads_mapped_and_paired),
            "paired-end technology bit set + both mates mapped",
        ),
        ("reads unmapped", str(s.reads_unmapped), ""),
        ("reads properly paired", str(s.reads_properly_paired), "proper-pair bit set"),
        ("reads paired", str(s.reads_paired), "paired-end technology bit set"),
        ("reads duplicated", str(s.reads_duplicated), "PCR or optical duplicate bit set"),
        ("reads MQ0", str(s.reads_mq0), "mapped and MQ=0"),
        ("reads QC failed", str(s.reads_qc_failed), ""),
        ("non-primary alignments", str(s.non_primary_alignments), ""),
        ("supplementary alignments", str(s.supplementary_alignments), ""),
        ("total length", str(s.total_length), "ignores clipping"),
        ("total first fragment length", str(s.total_first_fragment_length), "ignores clipping"),
        ("total last fragment length", str(s.total_last_fragment_length), "ignores clipping"),
        ("bases mapped", str(s.bases_mapped), "ignores clipping"),
        ("bases mapped (cigar)", str(s.bases_mapped_cigar), "more accurate"),
        ("bases trimmed", "0", ""),
        ("bases duplicated", str(s.bases_duplicated), ""),
        ("mismatches", str(s.mismatches), "from NM fields"),
        ("error rate", f"{error_rate:e}", "mismatches / bases mapped (cigar)"),
        ("average length", _average(s.total_length, sequences), ""),
        (
            "average first fragment length",
            _average(s.total_first_fragment_length, s.first_fragments),
            "",
        ),
        (
            "average last fragment length",
            _average(s.total_last_fragment_length, s.last_fragments),
            "",
        ),
        ("maximum length", str(s.maximum_length), ""),
        ("maximum first fragment length", str(s.maximum_first_fragment_length), ""),
        ("maximum last fragment length", str(s.maximum_last_fragment_length), ""),
        (
            "average quality",
            f"{(s.quality_sum / s.total_length) if s.total_length else 0:.1f}",
            "",
        ),
        ("insert size average", f"{s.insert_size_average:.1f}", ""),
        ("insert size standard deviation", f"{s.insert_size_standard_deviation:.1f}", ""),
        ("inward oriented pairs", str(s.inward_pairs), ""),
        ("outward oriented pairs", str(s.outward_pairs), ""),
        ("pairs with other orientation", str(s.other_pairs), ""),
        ("pairs on different chromosomes", str(s.reads_on_different_chromosomes // 2), ""),
        (
            "percentage of properly paired reads (%)",
            f"{float_ratio(100 * s.reads_properly_paired, sequences) if sequences else 0:.1f}",
            "",
        ),
    ]


def _average(total: int, count: int) -> str:
    """``%.0f`` of ``(float)total / count`` (0 when there are no reads)."""
    return f"{float_ratio(total, count) if count else 0:.0f}"


def sn_lines(s: SummaryNumbers, is_sorted: bool | None = None) -> str:
    """The SN lines as samtools stats prints them (``# comment`` where samtools has one)."""
    out = []
    for label, value, comment in sn_values(s, is_sorted):
        line = f"SN\t{label}:\t{value}"
        if comment:
            line += f"\t# {comment}"
        out.append(line)
    return "\n".join(out) + "\n"
