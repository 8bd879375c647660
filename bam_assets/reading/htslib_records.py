"""Records formatted by htslib (CRAM, SAM, and BAM where the bulk decoder stops), to batches: their
SAM text split into columns, with what the text cannot say taken from the records themselves.

The text of a SAM file's record never misleads: its fields cannot hold a TAB. htslib prints a
binary (BAM or CRAM) record's bytes as they are, so there a read name, a reference name or a QUAL
(byte 232 prints as chr((232 + 33) & 0xff), a TAB) can hold a TAB, which shifts every column after
it, and a ``Z`` value can hold ``<TAB>NM:i:99``, which reads like a tag. The text of every chunk is
split at TABs in one go (``sam_text``); rows whose split cannot be trusted are cut again by the
lengths their records give, and what the text hides comes from the records: the reference ids, a
first NM tag behind a ``Z``, ``H`` or ``A`` tag, the quality of a one-base QUAL printed ``*``
(Phred 9, chr(9 + 33)).
"""

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pysam

from bam_assets.model.reads_schema import SAM_COLUMNS
from bam_assets.model.sam_bytes import bytes_from_text, text_from_bytes, text_from_htslib
from bam_assets.reading.base_sums import gc_counts, quality_sums
from bam_assets.reading.sam_text import (
    FIRST_NM_AFTER_NUMBERS,
    first_nm,
    reads_batch,
    split_sam_lines,
)
from bam_assets.util.arrow_numpy import numpy_array

_INTEGER_TAG_TYPES = frozenset("cCsSiI")


class UnsplittableRecord(ValueError):
    """A record whose SAM text does not follow from its fields (a read name holding a NUL and
    then a TAB: htslib prints all of it, pysam's name stops at the NUL)."""


def records_batch(
    lines: list[str],
    records: list[pysam.AlignedSegment],
    first_rec_no: int,
    reference_names: list[bytes] | None,
) -> pa.RecordBatch:
    """A batch of the reads schema from htslib's ``lines`` of ``records`` (stored text, escaped
    as ``model.sam_bytes`` escapes it). ``reference_names`` are the header's, as bytes, for BAM
    and CRAM records; None for a SAM file's."""
    columns = split_sam_lines(lines)
    binary = reference_names is not None
    if binary:
        tab_in_a_name = any(b"\t" in name for name in reference_names)
        irregular = _irregular_rows(columns, records, tab_in_a_name)
        if irregular.any():
            _split_again(columns, irregular, lines, records, first_rec_no, reference_names)
    columns["ref_id"] = pa.array([record.reference_id for record in records], pa.int32())
    columns["next_ref_id"] = pa.array([r.next_reference_id for r in records], pa.int32())
    columns["nm"] = _first_nm(columns["tags"], records) if binary else first_nm(columns["tags"])
    columns["qual_sum"] = _quality_sums(columns, records)
    columns["gc_count"] = gc_counts(columns["seq"])
    ends = pa.array([record.reference_end for record in records], pa.int64())
    return reads_batch(first_rec_no, columns, ends)


def _irregular_rows(
    columns: dict[str, pa.Array], records: list[pysam.AlignedSegment], tab_in_a_name: bool
) -> np.ndarray:
    """Rows whose split at TABs may be wrong: the read name is not the record's (it holds a TAB;
    one holding a NUL prints in full where pysam stops at the NUL), the QUAL is not as long as
    the SEQ (it holds a TAB), or every row when a reference name holds a TAB."""
    if tab_in_a_name:
        return np.ones(len(records), bool)
    names = (text_from_htslib(record.query_name) for record in records)
    irregular = np.fromiter(
        (
            text != name and not text.startswith(name + "\0")
            for text, name in zip(columns["qname"].to_pylist(), names, strict=True)
        ),
        bool,
        len(records),
    )
    qual, seq = columns["qual"], columns["seq"]
    # characters, not bytes: an escaped byte is one character, a UTF-8 sequence one for several
    short = pc.and_(
        pc.not_equal(qual, "*"), pc.not_equal(pc.utf8_length(qual), pc.utf8_length(seq))
    )
    return irregular | short.to_numpy(zero_copy_only=False)


def _split_again(
    columns: dict[str, pa.Array],
    irregular: np.ndarray,
    lines: list[str],
    records: list[pysam.AlignedSegment],
    first_rec_no: int,
    reference_names: list[bytes],
) -> None:
    """Replaces the text columns of the ``irregular`` rows by their fields cut by length."""
    fields = []
    for row in np.flatnonzero(irregular):
        try:
            fields.append(_split(bytes_from_text(lines[row]), records[row], reference_names))
        except UnsplittableRecord as error:
            raise UnsplittableRecord(
                f"record {first_rec_no + row + 1} has SAM text that cannot be split into its "
                f"fields: {error}"
            ) from error
    mask = numpy_array(irregular)
    for index, name in enumerate((*SAM_COLUMNS, "tags")):
        replacements = pa.array([text_from_bytes(row[index]) for row in fields], pa.string())
        columns[name] = pc.replace_with_mask(columns[name], mask, replacements)


def _split(raw: bytes, record: pysam.AlignedSegment, reference_names: list[bytes]) -> list[bytes]:
    """The 11 fields and the tags of one line, the fields that may hold a TAB cut by the lengths
    the record gives: its read name, its reference names and its QUAL."""
    name = record.query_name.encode("utf-8", "surrogateescape")
    if raw.startswith(name + b"\0"):  # a NUL inside the name: htslib prints all of it
        name = raw[: raw.index(b"\t", len(name))]
    if not raw.startswith(name + b"\t"):
        raise UnsplittableRecord(f"its text does not start with its read name {name!r}")
    position = len(name) + 1

    def take(length: int | None = None) -> bytes:
        """The next field: ``length`` bytes, or up to the next TAB."""
        nonlocal position
        end = raw.find(b"\t", position) if length is None else position + length
        end = len(raw) if end < 0 else end
        if raw[end : end + 1] not in (b"\t", b""):
            raise UnsplittableRecord(f"no TAB after the field at byte {position}")
        field = raw[position:end]
        position = end + 1
        return field

    def reference(tid: int) -> bytes:
        return b"*" if tid < 0 else reference_names[tid]

    mate = b"=" if record.next_reference_id == record.reference_id >= 0 else None
    fields = [name, take(), take(len(reference(record.reference_id)))]
    fields += [take(), take(), take(), take(len(mate or reference(record.next_reference_id)))]
    fields += [take(), take(), take()]
    qualities = record.query_qualities  # None when printed '*': no SEQ, or first byte 0xff
    fields.append(take(1 if qualities is None else len(qualities)))
    fields.append(raw[position:])
    if int(fields[1]) != record.flag or fields[2] != reference(record.reference_id):
        raise UnsplittableRecord("its fields do not follow from its text")
    return fields


def _first_nm(tags: pa.StringArray, records: list[pysam.AlignedSegment]) -> pa.Array:
    """The first NM tag of binary records as samtools stats reads it: from the text where every
    tag before it is a number or a character (aligners write NM early), else from the record."""
    nm = first_nm(tags, FIRST_NM_AFTER_NUMBERS)
    unsure = pc.and_(nm.is_null(), pc.match_substring(tags, "NM:"))
    rows = np.flatnonzero(unsure.to_numpy(zero_copy_only=False))
    if len(rows) == 0:
        return nm
    values = nm.to_pylist()
    for row in rows:
        if records[row].has_tag("NM"):
            value, tag_type = records[row].get_tag("NM", with_value_type=True)
            values[row] = int(value) if tag_type in _INTEGER_TAG_TYPES else 0
    return pa.array(values, pa.int64())


def _quality_sums(columns: dict[str, pa.Array], records: list[pysam.AlignedSegment]) -> pa.Array:
    """The quality sums of the QUAL text (``base_sums``), where a one-base QUAL printed ``*`` is
    the record's: Phred 9 (chr(9 + 33)) or no QUAL."""
    sums = quality_sums(columns["qual"])
    qual, seq = columns["qual"], columns["seq"]
    one_base = pc.and_(pc.equal(pc.utf8_length(seq), 1), pc.not_equal(seq, "*"))
    rows = np.flatnonzero(pc.and_(pc.equal(qual, "*"), one_base).to_numpy(zero_copy_only=False))
    if len(rows) == 0:
        return sums
    values = sums.to_pylist()
    for row in rows:
        qualities = records[row].query_qualities
        values[row] = None if qualities is None else int(qualities[0])
    return pa.array(values, pa.int64())
