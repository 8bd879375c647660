"""SAM text of a chunk of records to a batch of the reads schema, with Arrow compute kernels."""

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from bam_assets.model.reads_schema import READS_SCHEMA, SAM_COLUMNS
from bam_assets.reading.base_sums import gc_counts, quality_sums
from bam_assets.util.arrow_numpy import int64_values, numpy_array


def sam_lines_to_batch(
    lines: list[str], first_rec_no: int, end_positions: list[int | None]
) -> pa.RecordBatch:
    """Turns SAM record lines (no trailing newline) into a batch of ``READS_SCHEMA``.

    ``end_positions`` are the records' ``reference_end`` (htslib's ``bam_endpos``), taken while
    decoding: computing them from the CIGAR text in SQL cost a third of a second per million reads.
    """
    return reads_batch(first_rec_no, split_sam_lines(lines), pa.array(end_positions, pa.int64()))


def split_sam_lines(lines: list[str]) -> dict[str, pa.Array]:
    """The 11 SAM fields and the tags of SAM record lines, as text columns.

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


def reads_batch(
    first_rec_no: int, sam_columns: dict[str, pa.Array], end_positions: pa.Array
) -> pa.RecordBatch:
    """A batch of ``READS_SCHEMA`` from the SAM fields of consecutive records (text or typed).

    ``qual_sum`` and ``gc_count`` are summed over the chunk's buffers (``base_sums``) unless
    ``sam_columns`` has them."""
    count = len(end_positions)
    columns: list[pa.Array] = [numpy_array(np.arange(first_rec_no, first_rec_no + count))]
    for name in (*SAM_COLUMNS, "tags"):
        column = sam_columns[name]
        target = READS_SCHEMA.field(name).type
        if column.type != target:
            column = pc.cast(column, target)
        columns.append(column)
    # htslib computes an end for a record that claims to be mapped but has no position; SAM says
    # such a record is unplaced.
    unplaced = numpy_array(int64_values(columns[READS_SCHEMA.get_field_index("pos")]) == 0)
    columns.append(pc.if_else(unplaced, pa.nulls(count, pa.int64()), end_positions))
    if "qual_sum" in sam_columns:  # the bulk decoder sums while it decodes
        columns += [sam_columns["qual_sum"], sam_columns["gc_count"]]
    else:
        columns.append(quality_sums(columns[READS_SCHEMA.get_field_index("qual")]))
        columns.append(gc_counts(columns[READS_SCHEMA.get_field_index("seq")]))
    return pa.RecordBatch.from_arrays(columns, schema=READS_SCHEMA)
