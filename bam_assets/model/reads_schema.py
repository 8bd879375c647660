"""The columns of the reads table: what each holds, where it comes from, its Arrow and SQL type.

Coordinates are SAM's: ``pos``, ``pnext`` and ``end_pos`` are 1-based, ``pos = 0`` means unplaced;
no column is 0-based. Strings are stored as ``samtools view`` prints them (``*`` and ``=`` kept).
"""

from dataclasses import dataclass
from typing import Literal

import pyarrow as pa

from bam_assets.model.sam import FLAG_BITS

_ARROW_TYPES = {"VARCHAR": pa.string(), "BIGINT": pa.int64(), "INTEGER": pa.int32()}


@dataclass(frozen=True)
class Column:
    """One column of the reads table.

    ``source`` says who fills it: ``reader`` (in the Arrow stream the reader produces), ``key``
    (the partition key, added by the store) or ``derived`` (computed by the store from other
    columns).
    """

    name: str
    sql_type: str
    description: str
    source: Literal["reader", "key", "derived"] = "reader"
    nullable: bool = False

    @property
    def arrow_type(self) -> pa.DataType:
        return _ARROW_TYPES[self.sql_type]


READS_COLUMNS: tuple[Column, ...] = (
    Column("key", "VARCHAR", "partition key of the source file", source="key"),
    Column("rec_no", "BIGINT", "0-based ordinal of the record in its file (file order)"),
    Column("qname", "VARCHAR", "QNAME, the read name"),
    Column("flag", "INTEGER", "FLAG, the bitwise flags (also as the is_* columns)"),
    Column("rname", "VARCHAR", "RNAME, the reference name; '*' when unplaced"),
    Column("pos", "BIGINT", "POS, 1-based leftmost position; 0 when unplaced"),
    Column("mapq", "INTEGER", "MAPQ, the mapping quality"),
    Column("cigar", "VARCHAR", "CIGAR; '*' when absent"),
    Column("rnext", "VARCHAR", "RNEXT: '=' same reference, '*' unknown"),
    Column("pnext", "BIGINT", "PNEXT, 1-based position of the mate; 0 when unavailable"),
    Column("tlen", "BIGINT", "TLEN, the observed template length"),
    Column("seq", "VARCHAR", "SEQ; '*' when not stored"),
    Column("qual", "VARCHAR", "QUAL as Phred+33 text; '*' when not stored"),
    Column(
        "tags",
        "VARCHAR",
        "the optional fields as SAM prints them, tab-separated, in file order; '' when none",
    ),
    Column(
        "end_pos",
        "BIGINT",
        "1-based inclusive end on the reference (htslib's bam_endpos); NULL when unmapped or "
        "unplaced",
        nullable=True,
    ),
    Column(
        "read_length",
        "BIGINT",
        "length of SEQ, else the query length from the CIGAR (M/I/S/=/X)",
        source="derived",
    ),
    Column(
        "qual_sum",
        "BIGINT",
        "sum of the base quality bytes, as samtools stats sums them; NULL when no QUAL is "
        "stored (all bytes 0xff, printed '*')",
        nullable=True,
    ),
    Column("gc_count", "BIGINT", "C and G bases in SEQ; NULL when SEQ is '*'", nullable=True),
    Column(
        "ref_id",
        "INTEGER",
        "RNAME as an index into the file's references (files.reference_names; BAM's refID, "
        "counted from 0); -1 when unplaced",
    ),
    Column(
        "next_ref_id",
        "INTEGER",
        "RNEXT as an index into the file's references (BAM's next refID); -1 when unknown",
    ),
    Column(
        "nm",
        "BIGINT",
        "the first NM tag as samtools reads it (its value when an integer, else 0); NULL "
        "without one",
        nullable=True,
    ),
    *(
        Column(name, "BOOLEAN", f"flag & {bit:#x} <> 0", source="derived")
        for name, bit in FLAG_BITS.items()
    ),
)

# The Arrow stream a reader produces: every column it fills, in table order.
READS_SCHEMA = pa.schema(
    [pa.field(c.name, c.arrow_type, c.nullable) for c in READS_COLUMNS if c.source == "reader"]
)
# The eleven mandatory SAM fields, in SAM order.
SAM_COLUMNS = (
    "qname",
    "flag",
    "rname",
    "pos",
    "mapq",
    "cigar",
    "rnext",
    "pnext",
    "tlen",
    "seq",
    "qual",
)
