"""SAM constants as the SAM specification (section 1.4) names them, written once.

The C decoder (``reading/bam/_records.c``) keeps its own ``#define`` of the one bit it needs, named
as htslib names it.
"""

# FLAG bits, by the boolean column each becomes in the reads table.
FLAG_BITS = {
    "is_paired": 0x1,
    "is_proper_pair": 0x2,
    "is_unmapped": 0x4,
    "is_mate_unmapped": 0x8,
    "is_reverse": 0x10,
    "is_mate_reverse": 0x20,
    "is_read1": 0x40,
    "is_read2": 0x80,
    "is_secondary": 0x100,
    "is_qcfail": 0x200,
    "is_duplicate": 0x400,
    "is_supplementary": 0x800,
}
# The names ``samtools flags`` and ``samtools view -f/-F/-G`` take for them (htslib's
# bam_str2flag).
FLAG_NAMES = {
    "PAIRED": 0x1,
    "PROPER_PAIR": 0x2,
    "UNMAP": 0x4,
    "MUNMAP": 0x8,
    "REVERSE": 0x10,
    "MREVERSE": 0x20,
    "READ1": 0x40,
    "READ2": 0x80,
    "SECONDARY": 0x100,
    "QCFAIL": 0x200,
    "DUP": 0x400,
    "SUPPLEMENTARY": 0x800,
}
PAIRED = FLAG_BITS["is_paired"]
PROPER_PAIR = FLAG_BITS["is_proper_pair"]
UNMAPPED = FLAG_BITS["is_unmapped"]
MATE_UNMAPPED = FLAG_BITS["is_mate_unmapped"]
REVERSE = FLAG_BITS["is_reverse"]
MATE_REVERSE = FLAG_BITS["is_mate_reverse"]
READ1 = FLAG_BITS["is_read1"]
READ2 = FLAG_BITS["is_read2"]
SECONDARY = FLAG_BITS["is_secondary"]
QCFAIL = FLAG_BITS["is_qcfail"]
DUPLICATE = FLAG_BITS["is_duplicate"]
SUPPLEMENTARY = FLAG_BITS["is_supplementary"]
NOT_PRIMARY = SECONDARY | SUPPLEMENTARY

# CIGAR operations that consume the query (SEQ) and the reference.
QUERY_CONSUMING_OPS = "MIS=X"
REFERENCE_CONSUMING_OPS = "MDN=X"

PHRED_OFFSET = 33


def cigar_length_sql(ops: str, cigar: str = "cigar") -> str:
    """A DuckDB expression: the summed lengths of the ``ops`` operations of the CIGAR text in
    column ``cigar`` (0 for ``*``), e.g. ``cigar_length_sql(QUERY_CONSUMING_OPS)``."""
    return (
        f"coalesce(list_sum(list_transform(regexp_extract_all({cigar}, '(\\d+)[{ops}]', 1), "
        f"lambda x: x::BIGINT)), 0)"
    )
