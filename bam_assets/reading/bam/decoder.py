"""Decoding BAM records in bulk: BGZF blocks to the SAM text columns of whole chunks.

``reading.reader`` renders CRAM and SAM records one at a time with htslib's SAM formatter; for BAM
files this module does the same work a chunk at a time. It reads the uncompressed stream block by
block (``bgzf``) and hands each chunk's bytes to ``_records`` (C, ``_records.c``), which frames
the records and writes every column as ``sam_format1`` prints it. The Python work per chunk is a
few calls.

It only decodes what it knows to match htslib byte for byte. Anything else (an invalid record, a
CIGAR kept in a ``CG`` tag, ``B:f`` arrays, text that is not ASCII, a damaged block) raises
``NeedsHtslib`` with the virtual offset of the chunk, and the reader continues from there with
pysam, which either decodes the records or reports the error in its words.
"""

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from bam_assets.model.sam_bytes import text_from_bytes
from bam_assets.reading.bam import _records
from bam_assets.reading.bam.bgzf import BgzfStream
from bam_assets.util.arrow_numpy import numpy_array, string_array

_BLOCK_SIZE = struct.Struct("<i")
# A chunk whose records need more bytes than this (or a corrupt record size) is left to htslib.
_MAX_BUFFERED_BYTES = 256 << 20


class NeedsHtslib(Exception):
    """The decoder stops here; htslib must take over from ``virtual_offset`` (record ``rec_no``)."""

    def __init__(self, virtual_offset: int, rec_no: int, reason: str):
        super().__init__(reason)
        self.virtual_offset = virtual_offset
        self.rec_no = rec_no
        self.reason = reason


@dataclass(frozen=True)
class DecodedChunk:
    """The SAM columns of one chunk, as the reader stores them."""

    columns: dict[str, pa.Array]  # the SAM fields, tags, qual_sum, gc_count, ids and nm
    end_positions: pa.Array  # htslib's reference_end (0-based exclusive), null where pysam's is


def read_reference_names(stream: BgzfStream) -> tuple[list[str], int]:
    """Parses the binary BAM header; returns the reference names and the stream position after."""
    if not stream.ensure(8) or bytes(stream.data[:4]) != b"BAM\x01":
        raise ValueError("no BAM magic")
    (text_length,) = _BLOCK_SIZE.unpack_from(stream.data, 4)
    position = 8 + text_length
    if text_length < 0 or not stream.ensure(position + 4):
        raise ValueError("truncated header")
    (count,) = _BLOCK_SIZE.unpack_from(stream.data, position)
    position += 4
    names = []
    for _ in range(count):
        if not stream.ensure(position + 4):
            raise ValueError("truncated header")
        (name_length,) = _BLOCK_SIZE.unpack_from(stream.data, position)
        if name_length < 1 or not stream.ensure(position + 8 + name_length):
            raise ValueError("truncated header")
        # as bam_hdr_read: l_name counts the NUL, and the name is the C string up to the first
        # NUL (one written without its NUL keeps all l_name bytes)
        raw = bytes(stream.data[position + 4 : position + 4 + name_length])
        names.append(text_from_bytes(raw.partition(b"\0")[0]))
        position += 8 + name_length
    return names, position


def iter_record_chunks(
    path: Path, chunk_size: int
) -> Iterator[tuple[int, int, bytearray, int, list[str]]]:
    """Yields ``(virtual offset, first rec_no, chunk bytes, record count, reference names)``
    for chunks of ``chunk_size`` records; raises NeedsHtslib where the file stops making sense."""
    stream = BgzfStream(path)
    try:
        try:
            names, position = read_reference_names(stream)
        except ValueError as error:  # BgzfBlockError included
            raise NeedsHtslib(0, 0, f"header: {error}") from error
        rec_no = 0
        while True:
            voffset = stream.virtual_offset(position)
            stream.discard_before(position)
            try:
                count, size = _frame_records(stream, chunk_size)
            except ValueError as error:
                raise NeedsHtslib(voffset, rec_no, str(error)) from error
            if not count:
                return
            yield voffset, rec_no, stream.data[:size], count, names
            position = stream.base + size
            rec_no += count
    finally:
        stream.close()


def _frame_records(stream: BgzfStream, chunk_size: int) -> tuple[int, int]:
    """How many whole records (up to ``chunk_size``) start ``stream.data``, reading blocks as
    needed, and how many bytes they take; (0, 0) at the end of the file."""
    count = end = 0
    while True:
        framed, end, bad = _records.frame(stream.data, end, chunk_size - count)
        count += framed
        if bad:
            raise ValueError("invalid record size")
        if count == chunk_size:
            return count, end
        if stream.at_eof:
            if end != len(stream.data):
                raise ValueError("truncated record")
            return count, end
        if len(stream.data) > _MAX_BUFFERED_BYTES:
            raise ValueError("records larger than the decoder buffers")
        stream.read_block()


def decode_chunk(
    voffset: int, rec_no: int, raw: bytearray, count: int, names: list[str]
) -> DecodedChunk:
    """The SAM columns of the ``count`` records in ``raw``; raises NeedsHtslib."""
    columns = _records.format(raw, count, len(names))
    if isinstance(columns, tuple):
        reason, index = columns
        raise NeedsHtslib(voffset, rec_no, f"{reason} (record {rec_no + index + 1})")
    references = string_array([*names, "*", "="])
    unknown, same = len(names), len(names) + 1

    def reference(ids: np.ndarray) -> pa.Array:
        return references.take(numpy_array(np.where(ids < 0, unknown, ids)))

    def text(name: str) -> pa.Array:
        return pa.Array.from_buffers(
            pa.string(),
            count,
            [None, pa.py_buffer(columns[f"{name}_offsets"]), pa.py_buffer(columns[name])],
        )

    def numbers(name: str, dtype: str, valid: str | None = None) -> pa.Array:
        values = np.frombuffer(columns[name], dtype)
        if valid is None:
            return numpy_array(values)
        return numpy_array(values, np.frombuffer(columns[valid], np.bool_))

    ref_id = np.frombuffer(columns["ref_id"], np.int32)
    next_ref_id = np.frombuffer(columns["next_ref_id"], np.int32)
    # RNEXT is '=' for the record's own reference, '*' when unknown.
    rnext_ids = np.where((next_ref_id == ref_id) & (ref_id >= 0), same, next_ref_id)
    return DecodedChunk(
        columns={
            "qname": text("qname"),
            "flag": numbers("flag", "<i4"),
            "rname": reference(ref_id),
            "pos": numbers("pos", "<i8"),
            "mapq": numbers("mapq", "<i4"),
            "cigar": text("cigar"),
            "rnext": reference(rnext_ids),
            "pnext": numbers("next_pos", "<i8"),
            "tlen": numbers("tlen", "<i8"),
            "seq": text("seq"),
            "qual": text("qual"),
            "tags": text("tags"),
            "qual_sum": numbers("qual_sum", "<i8", "qual_valid"),
            "gc_count": numbers("gc_count", "<i8", "seq_valid"),
            "ref_id": numpy_array(ref_id),
            "next_ref_id": numpy_array(next_ref_id),
            "nm": numbers("nm", "<i8", "nm_valid"),
        },
        end_positions=numbers("end_pos", "<i8", "end_valid"),
    )
