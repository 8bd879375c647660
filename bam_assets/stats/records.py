"""The per-record quantities samtools derives from ``bam1_t``, as one SQL query over the reads
table that the statistics build on.

Coordinates follow the reads table: ``pos`` and ``end_pos`` are 1-based and inclusive.
"""

from bam_assets.model.sam import cigar_length_sql
from bam_assets.model.tables import TableNames

# One row per record with the quantities samtools derives from bam1_t. ``seq_len`` is
# ``core.l_qseq`` (0 when SEQ is '*'); ``read_len`` is stats.c's unclipped_length (l_qseq plus
# hard clips); ``read_order`` is stats.c's READ_ORDER: unpaired reads count as first fragments,
# paired ones as 1 (READ1), 2 (READ2), 3 (both) or 0 (neither). ``ref_id`` and ``next_ref_id``
# are core.tid and core.mtid: names can mislead (contigs may be named '*' or '=', or share a name).
_RECORDS = f"""
    SELECT rec_no, flag, rname, pos, end_pos, mapq, cigar, tlen, seq, qual, tags, pnext, qual_sum,
           gc_count, ref_id, next_ref_id, nm,
           CASE WHEN seq = '*' THEN 0 ELSE length(seq) END AS seq_len,
           CASE WHEN seq = '*' THEN 0 ELSE length(seq) END
               + CASE WHEN contains(cigar, 'H') THEN {cigar_length_sql("H")} ELSE 0 END AS read_len,
           CASE WHEN NOT is_paired THEN 1
                ELSE (CASE WHEN is_read1 THEN 1 ELSE 0 END) + (CASE WHEN is_read2 THEN 2 ELSE 0 END)
           END AS read_order,
           is_paired, is_proper_pair, is_unmapped, is_mate_unmapped, is_reverse,
           is_mate_reverse, is_read1, is_read2, is_secondary, is_qcfail, is_duplicate,
           is_supplementary
    FROM {{reads}}
    WHERE key = $key
"""


def records_sql(tables: TableNames) -> str:
    """The records of partition ``$key`` with the derived columns above."""
    return _RECORDS.format(reads=tables.reads)
