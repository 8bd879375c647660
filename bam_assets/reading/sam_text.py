"""SAM text of a chunk of records to a batch of the reads schema, with Arrow compute kernels."""

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from bam_assets.model.reads_schema import READS_SCHEMA, SAM_COLUMNS
from bam_assets.reading.base_sums import gc_counts, quality_sums
from bam_assets.util.arrow_numpy import int64_values, numpy_array

# The first NM tag of SAM text. Exact for a SAM file's records, whose values cannot hold a TAB.
FIRST_NM = r"(?:^|\t)NM:(?P<type>[AifZHB]):(?P<value>[^\t]*)"
# The same, only where every tag before it is a number or a character, which cannot hold a TAB:
# exact for any record (htslib prints a binary Z or H value's TABs as they are, so a Z tag
# 'a<TAB>NM:i:99' reads like an NM tag). Lazy: the fewest tags before it, so the first NM.
FIRST_NM_AFTER_NUMBERS = (
    r"^(?:[A-Za-z0-9]{2}:(?:[ifB]:[^\t]*|A:[^\t])\t)*?NM:(?P<type>[AifZHB]):(?P<value>[^\t]*)"
)


def split_sam_lines(lines: list[str]) -> dict[str, pa.Array]:
    """The 11 SAM fields and the tags of SAM record lines (no trailing newline), as text columns.

    The optional fields stay one string, exactly as SAM prints them (``NM:i:0<TAB>MD:Z:100``, or
    ``''`` when there are none): every line gets a tab appended and is split into at most 12
    parts, so the 12th part is the tag text plus that tab, which is then cut off.
    """
    text = pa.array(lines, pa.string())
    text = pc.binary_join_element_wise(text, "", "\t")
    fields = pc.split_pattern(text, "\t", max_splits=len(SAM_COLUMNS))
    columns = {name: pc.list_element(fields, index) for index, name in enumerate(SAM_COLUMNS)}
    tags_and_tab = pc.list_element(fields, len(SAM_COLUMNS))
    columns["tags"] = pc.binary_slice(tags_and_tab.view(pa.binary()), 0, -1).view(pa.string())
    return columns


def first_nm(tags: pa.StringArray, pattern: str = FIRST_NM) -> pa.Array:
    """The first NM tag found by ``pattern`` as samtools stats reads it (``bam_aux2i``): its
    value when of type ``i``, 0 for any other type; null where ``pattern`` finds none."""
    found = pc.extract_regex(tags, pattern)
    value = pc.struct_field(found, "value")
    is_integer = pc.equal(pc.struct_field(found, "type"), "i")
    number = pc.cast(pc.if_else(is_integer, value, "0"), pa.int64())
    return pc.if_else(found.is_valid(), number, pa.scalar(None, pa.int64()))


def reads_batch(
    first_rec_no: int, columns: dict[str, pa.Array], end_positions: pa.Array
) -> pa.RecordBatch:
    """A batch of ``READS_SCHEMA`` from the columns of consecutive records: the SAM fields and
    tags (text or typed), ``ref_id``, ``next_ref_id`` and ``nm``, and ``qual_sum`` and
    ``gc_count`` unless they are summed here from the text (``base_sums``).

    ``end_positions`` are the records' ``reference_end`` (htslib's ``bam_endpos``), taken while
    decoding: computing them from the CIGAR text in SQL cost a third of a second per million reads.
    """
    count = len(end_positions)
    batch = {"rec_no": numpy_array(np.arange(first_rec_no, first_rec_no + count))}
    for name in (*SAM_COLUMNS, "tags", "ref_id", "next_ref_id", "nm"):
        column = columns[name]
        target = READS_SCHEMA.field(name).type
        batch[name] = column if column.type == target else pc.cast(column, target)
    # htslib computes an end for a record that claims to be mapped but has no position; SAM says
    # such a record is unplaced.
    unplaced = numpy_array(int64_values(batch["pos"]) == 0)
    batch["end_pos"] = pc.if_else(unplaced, pa.nulls(count, pa.int64()), end_positions)
    summed = "qual_sum" in columns  # the bulk decoder sums while it decodes
    batch["qual_sum"] = columns["qual_sum"] if summed else quality_sums(batch["qual"])
    batch["gc_count"] = columns["gc_count"] if summed else gc_counts(batch["seq"])
    return pa.RecordBatch.from_arrays(
        [batch[field.name] for field in READS_SCHEMA], schema=READS_SCHEMA
    )
