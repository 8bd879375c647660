"""Decoding BAM records in bulk: BGZF blocks to the SAM text of whole chunks, with numpy and Arrow.

``alignment_reader`` renders records one at a time with htslib's SAM formatter; for BAM files this
module does the same work a chunk at a time. It inflates BGZF blocks with ISA-L (``isal``, 1.7x
faster than the zlib htslib uses here), checking each block's CRC32 and size as htslib does,
frames the records of a chunk and builds every column with vector operations over the chunk's
bytes, producing the text ``sam_format1`` prints.

It only decodes what it knows to match htslib byte for byte. Anything else (an invalid record, a
CIGAR kept in a ``CG`` tag, ``B:f`` arrays or ``d`` tags, a NaN float, non-ASCII text, a damaged
block) raises ``NeedsHtslib`` with the virtual offset of the chunk, and the reader continues from
there with pysam, which either decodes the records or reports the error in its words.
"""

import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from isal import isal_zlib

_BGZF_HEADER = struct.Struct("<4s6xH2sHH")  # magic, XLEN, SI1 SI2, SLEN, BSIZE
_BGZF_MAGIC = b"\x1f\x8b\x08\x04"
_BGZF_HEADER_SIZE = 18
_BLOCK_SIZE = struct.Struct("<i")
# A chunk whose records need more bytes than this (or a corrupt record size) is left to htslib.
_MAX_BUFFERED_BYTES = 256 << 20
_CORE = np.dtype(
    [
        ("block_size", "<i4"),
        ("ref_id", "<i4"),
        ("pos", "<i4"),
        ("l_read_name", "u1"),
        ("mapq", "u1"),
        ("bin", "<u2"),
        ("n_cigar_op", "<u2"),
        ("flag", "<u2"),
        ("l_seq", "<i4"),
        ("next_ref_id", "<i4"),
        ("next_pos", "<i4"),
        ("tlen", "<i4"),
    ]
)
_CORE_SIZE = _CORE.itemsize  # 36 bytes, block_size included
_UNMAPPED = 0x4
_SEQ_CODES = np.frombuffer(b"=ACMGRSVTWYHKDBN", np.uint8)
# Two bases per byte: high nibble first.
_SEQ_PAIRS = (
    np.stack([np.repeat(_SEQ_CODES, 16), np.tile(_SEQ_CODES, 16)], axis=1).reshape(-1).view("<u2")
)
_CIGAR_CHARS = pa.array(list("MIDNSHP=X") + ["B"] + ["?"] * 6, pa.string())
_CONSUMES_QUERY = np.array([1, 1, 0, 0, 1, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0], np.int64)
_CONSUMES_REFERENCE = np.array([1, 0, 1, 1, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0], np.int64)
_SOFT_CLIP = 4
_INTEGER_TYPES = {
    ord("c"): "<i1",
    ord("C"): "u1",
    ord("s"): "<i2",
    ord("S"): "<u2",
    ord("i"): "<i4",
    ord("I"): "<u4",
}
_UNSUPPORTED, _NUL_TERMINATED, _ARRAY = -1, -2, -3
_VALUE_SIZES = np.full(256, _UNSUPPORTED, np.int64)
_PRINTED_TYPE = np.zeros(256, np.uint8)
_IS_INTEGER = np.zeros(256, bool)
for _code, _dtype in _INTEGER_TYPES.items():
    _VALUE_SIZES[_code] = np.dtype(_dtype).itemsize
    _PRINTED_TYPE[_code] = ord("i")
    _IS_INTEGER[_code] = True
for _code, _size in (
    (ord("A"), 1),
    (ord("f"), 4),
    (ord("Z"), _NUL_TERMINATED),
    (ord("H"), _NUL_TERMINATED),
    (ord("B"), _ARRAY),
):
    _VALUE_SIZES[_code] = _size
    _PRINTED_TYPE[_code] = _code
_ARRAY_WIDTHS = np.zeros(256, np.int64)
for _code, _dtype in _INTEGER_TYPES.items():
    _ARRAY_WIDTHS[_code] = np.dtype(_dtype).itemsize


class NeedsHtslib(Exception):
    """The decoder stops here; htslib must take over from ``virtual_offset`` (record ``rec_no``)."""

    def __init__(self, virtual_offset: int, rec_no: int, reason: str):
        super().__init__(reason)
        self.virtual_offset = virtual_offset
        self.rec_no = rec_no
        self.reason = reason


@dataclass(frozen=True)
class DecodedChunk:
    """The SAM columns of one chunk, as ``alignment_reader`` stores them."""

    columns: dict[str, pa.Array]
    end_positions: pa.Array  # htslib's reference_end (0-based exclusive), null where pysam's is


class _BgzfStream:
    """The uncompressed bytes of a BGZF file, read block by block, with virtual offsets."""

    def __init__(self, path: Path):
        self._file = path.open("rb")
        self._file_offset = 0
        self.data = bytearray()
        self.base = 0  # stream position of data[0]
        self._blocks: list[tuple[int, int]] = []  # (stream position, file offset) of each block
        self.at_eof = False

    def close(self) -> None:
        self._file.close()

    def read_block(self) -> None:
        """Appends the next block's bytes; raises ValueError on anything htslib would refuse."""
        header = self._file.read(_BGZF_HEADER_SIZE)
        if not header:
            self.at_eof = True
            return
        if len(header) < _BGZF_HEADER_SIZE:
            raise ValueError("truncated block header")
        magic, extra_length, subfield, subfield_length, block_size = _BGZF_HEADER.unpack(header)
        if magic != _BGZF_MAGIC or extra_length != 6 or subfield != b"BC" or subfield_length != 2:
            raise ValueError("not a plain BGZF block header")
        rest = self._file.read(block_size + 1 - _BGZF_HEADER_SIZE)
        if len(rest) != block_size + 1 - _BGZF_HEADER_SIZE or len(rest) < 8:
            raise ValueError("truncated block")
        payload = isal_zlib.decompress(memoryview(rest)[:-8], -15)
        crc, size = struct.unpack_from("<II", rest, len(rest) - 8)
        if isal_zlib.crc32(payload) != crc or len(payload) != size:
            raise ValueError("block checksum or size mismatch")
        self._blocks.append((self.base + len(self.data), self._file_offset))
        self._file_offset += block_size + 1
        self.data += payload

    def ensure(self, end: int) -> bool:
        """Reads blocks until stream position ``end`` is buffered; False at end of file."""
        while self.base + len(self.data) < end:
            if self.at_eof:
                return False
            self.read_block()
        return True

    def virtual_offset(self, position: int) -> int:
        """htslib's virtual offset of stream ``position`` (block file offset << 16 | in-block)."""
        index = len(self._blocks) - 1
        while index > 0 and self._blocks[index][0] > position:
            index -= 1
        start, file_offset = self._blocks[index]
        if position - start >= 1 << 16:  # at the very end of a full block: the next one
            return self._file_offset << 16
        return file_offset << 16 | (position - start)

    def discard_before(self, position: int) -> None:
        """Forgets bytes before stream ``position`` (and the blocks wholly before it)."""
        del self.data[: position - self.base]
        self.base = position
        keep = 0
        while keep + 1 < len(self._blocks) and self._blocks[keep + 1][0] <= position:
            keep += 1
        del self._blocks[:keep]


def read_reference_names(stream: _BgzfStream) -> tuple[list[str], int]:
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
        raw = bytes(stream.data[position + 4 : position + 3 + name_length])
        names.append(raw.decode("ascii"))
        position += 8 + name_length
    return names, position


def iter_record_chunks(
    path: Path, chunk_size: int
) -> Iterator[tuple[int, int, bytes, np.ndarray, list[str]]]:
    """Yields ``(virtual offset, first rec_no, chunk bytes, record starts, reference names)``
    for chunks of ``chunk_size`` records; raises NeedsHtslib where the file stops making sense."""
    stream = _BgzfStream(path)
    try:
        try:
            names, position = read_reference_names(stream)
        except (ValueError, zlib.error, isal_zlib.error, UnicodeDecodeError) as error:
            raise NeedsHtslib(0, 0, f"header: {error}") from error
        rec_no = 0
        while True:
            voffset = stream.virtual_offset(position)
            stream.discard_before(position)
            try:
                starts = _frame_records(stream, chunk_size)
            except (ValueError, zlib.error, isal_zlib.error) as error:
                raise NeedsHtslib(voffset, rec_no, str(error)) from error
            if not starts:
                return
            size = starts.pop()
            yield voffset, rec_no, bytes(stream.data[:size]), np.array(starts, np.int64), names
            position = stream.base + size
            rec_no += len(starts)
    finally:
        stream.close()


def _frame_records(stream: _BgzfStream, chunk_size: int) -> list[int]:
    """Offsets of up to ``chunk_size`` whole records from the start of ``stream.data``, followed by
    the offset after the last one (an empty list at the end of the file).

    The only per-record Python loop (a record's start is known only from the previous record's
    size), so it checks nothing: a start past the buffered bytes ends the pass, and sizes are
    checked by ``_Chunk.check``.
    """
    starts: list[int] = []
    append = starts.append
    unpack = _BLOCK_SIZE.unpack_from
    position = 0
    while True:
        data = stream.data
        try:
            for _ in range(chunk_size - len(starts)):
                append(position)
                position += 4 + unpack(data, position)[0]
        except struct.error:  # fewer than 4 bytes left at ``position``
            position = starts.pop()
        while starts and position > len(data):
            position = starts.pop()
        if len(starts) == chunk_size:
            break
        if position < 0 or (starts and position <= starts[-1]):
            raise ValueError("invalid record size")
        if stream.at_eof:
            if position != len(data):
                raise ValueError("truncated record")
            break
        if len(data) > _MAX_BUFFERED_BYTES:
            raise ValueError("records larger than the decoder buffers")
        stream.read_block()
    if starts:
        starts.append(position)
    return starts


def _ranges(data: pa.Buffer, starts: np.ndarray, ends: np.ndarray) -> pa.Array:
    """``data[starts[i]:ends[i]]`` as a binary array, for ranges in increasing, disjoint order.

    A binary array whose offsets alternate between starts and ends holds each range and the gap
    after it; taking every other element copies just the ranges, in C.
    """
    count = len(starts)
    if count == 0:
        return pa.array([], pa.binary())
    offsets = np.empty(2 * count, np.int32)
    offsets[0::2] = starts
    offsets[1::2] = ends
    interleaved = pa.Array.from_buffers(
        pa.binary(), 2 * count - 1, [None, pa.py_buffer(offsets), data]
    )
    return interleaved.take(pa.array(np.arange(0, 2 * count - 1, 2)))


def _fixed_width_text(codes: np.ndarray) -> pa.Array:
    """Rows of a 2-D uint8 array as strings of that width."""
    count, width = codes.shape
    offsets = np.arange(0, (count + 1) * width, width, dtype=np.int32)
    return pa.Array.from_buffers(
        pa.string(), count, [None, pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(codes))]
    )


def _read_le(data: np.ndarray, positions: np.ndarray, dtype: str) -> np.ndarray:
    """Little-endian values of ``dtype`` at byte ``positions`` of ``data``."""
    width = np.dtype(dtype).itemsize
    raw = data[positions[:, None] + np.arange(width)]
    return raw.reshape(-1).view(dtype)


def _join_lists(values: pa.Array, counts: np.ndarray, separator: str) -> pa.Array:
    """Joins consecutive runs of ``counts[i]`` strings of ``values`` with ``separator``."""
    offsets = np.zeros(len(counts) + 1, np.int32)
    np.cumsum(counts, out=offsets[1:])
    lists = pa.ListArray.from_arrays(pa.array(offsets), values)
    return pc.binary_join(lists, separator)


def _printf_g(values: np.ndarray) -> pa.Array:
    """``printf("%g", value)`` of float32 ``values`` (htslib prints ``f`` tags so).

    Arrow prints a float32 as its shortest round-trip decimal, in plain notation. Where that has
    at most 6 significant digits and the value is within %g's plain range, %g's correctly rounded
    6-digit result is that same decimal (the 6-digit grid is over ten times coarser than float32
    spacing); the other values are formatted by Python, whose %g rounds the same way.
    """
    shortest = pc.cast(pa.array(values), pa.string())
    digits = pc.utf8_ltrim(pc.replace_substring(pc.utf8_ltrim(shortest, "-"), ".", ""), "0")
    magnitude = np.abs(values.astype(np.float64))
    plain = (magnitude == 0) | ((magnitude >= 1e-4) & (magnitude < 1e6))
    exact = plain & (pc.utf8_length(digits).to_numpy(zero_copy_only=False) <= 6)
    if exact.all():
        return shortest
    others = np.flatnonzero(~exact)
    printed = pa.array([f"{value:g}" for value in values[others].astype(np.float64).tolist()])
    chosen = np.arange(len(values))
    chosen[others] = len(values) + np.arange(len(others))
    return pa.concat_arrays([shortest, printed]).take(pa.array(chosen))


class _Chunk:
    """One chunk's bytes, record starts and core fields, and the columns built from them."""

    def __init__(self, raw: bytes, starts: np.ndarray, names: list[str], voffset: int, rec_no: int):
        self.voffset = voffset
        self.rec_no = rec_no
        self.buffer = pa.py_buffer(raw)
        self.data = np.frombuffer(raw, np.uint8)
        self.count = len(starts)
        # Framing trusts each record's size; one too small to hold the fixed fields (or negative)
        # shows up here as starts closer than that, or a last record past the end.
        if (np.diff(starts) < _CORE_SIZE).any() or starts[-1] + _CORE_SIZE > len(self.data):
            raise self.refuse("record shorter than its fixed fields")
        core_bytes = self.data[starts[:, None] + np.arange(_CORE_SIZE)]
        self.core = core_bytes.reshape(-1).view(_CORE)
        self.names = names
        core = self.core
        self.record_ends = starts + 4 + core["block_size"].astype(np.int64)
        self.qname_start = starts + _CORE_SIZE
        self.cigar_start = self.qname_start + core["l_read_name"]
        self.seq_start = self.cigar_start + 4 * core["n_cigar_op"].astype(np.int64)
        self.l_seq = core["l_seq"].astype(np.int64)
        self.qual_start = self.seq_start + (self.l_seq + 1) // 2
        self.tag_start = self.qual_start + self.l_seq
        self.nul_positions = np.flatnonzero(self.data == 0)

    def refuse(self, reason: str) -> NeedsHtslib:
        return NeedsHtslib(self.voffset, self.rec_no, reason)

    def check(self) -> None:
        """The checks htslib's ``bam_read1`` and ``sam_read1`` make, and the cases left to it."""
        core = self.core
        if (core["block_size"] < 32).any():
            raise self.refuse("invalid record size")
        if (core["l_read_name"] < 1).any() or (self.l_seq < 0).any():
            raise self.refuse("invalid record lengths")
        if (self.tag_start > self.record_ends).any():
            raise self.refuse("record fields overrun the record")
        if (self.data[self.cigar_start - 1] != 0).any():
            raise self.refuse("read name without its NUL")
        references = len(self.names)
        for field in ("ref_id", "next_ref_id"):
            if ((core[field] < -1) | (core[field] >= references)).any():
                raise self.refuse("reference id out of range")

    def qname(self) -> pa.Array:
        return _ranges(self.buffer, self.qname_start, self.cigar_start - 1)

    def reference(self, ids: np.ndarray) -> pa.Array:
        names = pa.array(self.names + ["*"], pa.string())
        return names.take(pa.array(np.where(ids < 0, len(self.names), ids)))

    def cigar_and_end(self) -> tuple[pa.Array, pa.Array]:
        """The CIGAR text and htslib's ``bam_endpos`` (pysam's ``reference_end``)."""
        core = self.core
        counts = core["n_cigar_op"].astype(np.int64)
        flag = core["flag"]
        raw = _ranges(self.buffer, self.cigar_start, self.seq_start)
        ops = np.frombuffer(raw.buffers()[2], "<u4", int(counts.sum()))
        codes = (ops & 0xF).astype(np.int64)
        lengths = (ops >> 4).astype(np.int64)
        bounds = np.zeros(self.count + 1, np.int64)
        np.cumsum(counts, out=bounds[1:])
        query = np.cumsum(lengths * _CONSUMES_QUERY[codes])
        reference = np.cumsum(lengths * _CONSUMES_REFERENCE[codes])
        query_len = np.diff(np.concatenate([[0], query])[bounds])
        ref_len = np.diff(np.concatenate([[0], reference])[bounds])
        has_cigar = counts > 0
        mapped = (flag & _UNMAPPED) == 0
        if (has_cigar & mapped & (self.l_seq > 0) & (query_len != self.l_seq)).any():
            raise self.refuse("CIGAR and sequence lengths differ")
        first = ops[np.minimum(bounds[:-1], max(len(ops) - 1, 0))] if len(ops) else np.zeros(0)
        if (
            len(ops)
            and (
                has_cigar
                & (core["ref_id"] >= 0)
                & (core["pos"] >= 0)
                & ((first & 0xF) == _SOFT_CLIP)
                & ((first >> 4) == self.l_seq)
            ).any()
        ):
            raise self.refuse("CIGAR may be held in a CG tag")
        op_text = pc.binary_join_element_wise(
            pc.cast(pa.array(lengths), pa.string()), _CIGAR_CHARS.take(pa.array(codes)), ""
        )
        text = pc.if_else(pa.array(has_cigar), _join_lists(op_text, counts, ""), pa.scalar("*"))
        end = core["pos"].astype(np.int64) + np.maximum(ref_len, 1)
        end_positions = pa.array(end, pa.int64(), mask=~(has_cigar & mapped))
        return text, end_positions

    def seq_and_qual(self) -> tuple[pa.Array, pa.Array]:
        packed = _ranges(self.buffer, self.seq_start, self.qual_start)
        packed_bytes = np.frombuffer(
            packed.buffers()[2], np.uint8, int(((self.l_seq + 1) // 2).sum())
        )
        bases = _SEQ_PAIRS[packed_bytes].view(np.uint8)
        base_offsets = np.zeros(self.count + 1, np.int64)
        np.cumsum(2 * ((self.l_seq + 1) // 2), out=base_offsets[1:])
        seq = _ranges(pa.py_buffer(bases), base_offsets[:-1], base_offsets[:-1] + self.l_seq)
        shifted = pa.py_buffer((self.data + np.uint8(33)).astype(np.uint8))
        qual = _ranges(shifted, self.qual_start, self.tag_start)
        has_seq = self.l_seq > 0
        first_qual = self.data[np.minimum(self.qual_start, len(self.data) - 1)]
        has_qual = has_seq & (first_qual != 0xFF)
        star = pa.scalar("*")
        return (
            pc.if_else(pa.array(has_seq), seq.view(pa.string()), star),
            pc.if_else(pa.array(has_qual), qual.view(pa.string()), star),
        )

    def tags(self) -> pa.Array:
        """The optional fields as ``sam_format1`` prints them, tab-separated, '' when none.

        The fields are walked one position at a time across all records with numpy (a record's
        n-th field starts where its (n-1)-th ends); then each type's values become text in one
        call, and each record's fields are joined in the order they lie in the chunk.
        """
        data = self.data
        cursor = self.tag_start.copy()
        end = self.record_ends
        nul_positions = self.nul_positions
        starts: list[np.ndarray] = []
        records: list[np.ndarray] = []
        active = np.flatnonzero(cursor < end)
        while len(active):
            at = cursor[active]
            stop = end[active]
            if (at + 3 > stop).any():
                raise self.refuse("truncated tag")
            kinds = data[at + 2]
            sizes = _VALUE_SIZES[kinds]
            if (sizes == _UNSUPPORTED).any():
                raise self.refuse("tag type left to htslib")
            values = at + 3
            strings = sizes == _NUL_TERMINATED
            if strings.any():
                found = np.searchsorted(nul_positions, values[strings])
                if (found >= len(nul_positions)).any():
                    raise self.refuse("string tag without its NUL")
                sizes[strings] = nul_positions[found] - values[strings] + 1
            arrays = sizes == _ARRAY
            if arrays.any():
                sizes[arrays] = self._array_sizes(values[arrays], stop[arrays])
            following = values + sizes
            if (following > stop).any():
                raise self.refuse("tag overruns the record")
            starts.append(at)
            records.append(active)
            cursor[active] = following
            active = active[following < stop]
        if not starts:
            return pa.array([""] * self.count, pa.string())
        at = np.sort(np.concatenate(starts))
        counts = np.bincount(np.concatenate(records), minlength=self.count)
        fields = pc.binary_join_element_wise(self._tag_prefixes(at), self._tag_values(at), "")
        return _join_lists(fields, counts, "\t")

    def _tag_prefixes(self, at: np.ndarray) -> pa.Array:
        """``XX:T:`` for tags at ``at``: integer types print as ``i``."""
        prefix = np.empty((len(at), 5), np.uint8)
        prefix[:, 0] = self.data[at]
        prefix[:, 1] = self.data[at + 1]
        prefix[:, 2] = ord(":")
        prefix[:, 3] = _PRINTED_TYPE[self.data[at + 2]]
        prefix[:, 4] = ord(":")
        return _fixed_width_text(prefix)

    def _tag_values(self, at: np.ndarray) -> pa.Array:
        """The value text of each tag at ``at`` (sorted), by type."""
        data = self.data
        kinds = data[at + 2]
        values = at + 3
        groups: list[np.ndarray] = []
        texts: list[pa.Array] = []
        integers = _IS_INTEGER[kinds]
        if integers.any():
            rows = np.flatnonzero(integers)
            numbers = np.empty(len(rows), np.int64)
            for code, dtype in _INTEGER_TYPES.items():
                of_type = kinds[rows] == code
                if of_type.any():
                    numbers[of_type] = _read_le(data, values[rows[of_type]], dtype)
            groups.append(rows)
            texts.append(pc.cast(pa.array(numbers), pa.string()))
        rows = np.flatnonzero(kinds == ord("A"))
        if len(rows):
            groups.append(rows)
            texts.append(_fixed_width_text(data[values[rows], None]))
        rows = np.flatnonzero(kinds == ord("f"))
        if len(rows):
            number = _read_le(data, values[rows], "<f4")
            if np.isnan(number).any():
                raise self.refuse("NaN float tag")
            groups.append(rows)
            texts.append(_printf_g(number))
        rows = np.flatnonzero((kinds == ord("Z")) | (kinds == ord("H")))
        if len(rows):
            nul_positions = self.nul_positions
            stops = nul_positions[np.searchsorted(nul_positions, values[rows])]
            groups.append(rows)
            texts.append(_ranges(self.buffer, values[rows], stops).view(pa.string()))
        rows = np.flatnonzero(kinds == ord("B"))
        if len(rows):
            groups.append(rows)
            texts.append(self._array_texts(values[rows]))
        order = np.concatenate(groups)
        position = np.empty(len(order), np.int64)
        position[order] = np.arange(len(order))
        return pa.concat_arrays(texts).take(pa.array(position))

    def _array_sizes(self, values: np.ndarray, stops: np.ndarray) -> np.ndarray:
        """Bytes taken by ``B`` arrays of integers at ``values`` (subtype, count, elements)."""
        if (values + 5 > stops).any():
            raise self.refuse("truncated array tag")
        widths = _ARRAY_WIDTHS[self.data[values]]
        if (widths == 0).any():
            raise self.refuse("array type left to htslib")
        return 5 + _read_le(self.data, values + 1, "<u4").astype(np.int64) * widths

    def _array_texts(self, values: np.ndarray) -> pa.Array:
        """``t,1,2,3`` (or ``t`` when empty) for the ``B`` arrays at ``values``."""
        data = self.data
        subtypes = data[values]
        counts = _read_le(data, values + 1, "<u4").astype(np.int64)
        groups: list[np.ndarray] = []
        texts: list[pa.Array] = []
        for code, dtype in _INTEGER_TYPES.items():
            rows = np.flatnonzero(subtypes == code)
            if not len(rows):
                continue
            first = values[rows] + 5
            raw = _ranges(self.buffer, first, first + counts[rows] * np.dtype(dtype).itemsize)
            numbers = np.frombuffer(raw.buffers()[2], dtype, int(counts[rows].sum()))
            elements = pc.binary_join_element_wise(",", pc.cast(pa.array(numbers), pa.string()), "")
            groups.append(rows)
            texts.append(
                pc.binary_join_element_wise(chr(code), _join_lists(elements, counts[rows], ""), "")
            )
        order = np.concatenate(groups)
        position = np.empty(len(order), np.int64)
        position[order] = np.arange(len(order))
        return pa.concat_arrays(texts).take(pa.array(position))


def decode_chunk(
    voffset: int, rec_no: int, raw: bytes, starts: np.ndarray, names: list[str]
) -> DecodedChunk:
    """The SAM columns of the records at ``starts`` in ``raw``; raises NeedsHtslib."""
    chunk = _Chunk(raw, starts, names, voffset, rec_no)
    chunk.check()
    core = chunk.core
    cigar, end_positions = chunk.cigar_and_end()
    seq, qual = chunk.seq_and_qual()
    ref_id = core["ref_id"]
    next_ref_id = core["next_ref_id"]
    rnext = chunk.reference(next_ref_id)
    rnext = pc.if_else(pa.array((next_ref_id == ref_id) & (ref_id >= 0)), pa.scalar("="), rnext)
    columns = {
        "qname": chunk.qname().view(pa.string()),
        "flag": pa.array(core["flag"].astype(np.int32)),
        "rname": chunk.reference(ref_id),
        "pos": pa.array(core["pos"].astype(np.int64) + 1),
        "mapq": pa.array(core["mapq"].astype(np.int32)),
        "cigar": cigar,
        "rnext": rnext,
        "pnext": pa.array(core["next_pos"].astype(np.int64) + 1),
        "tlen": pa.array(core["tlen"].astype(np.int64)),
        "seq": seq,
        "qual": qual,
        "tags": chunk.tags(),
    }
    for name in ("qname", "cigar", "seq", "qual", "tags", "rname", "rnext"):
        column = columns[name]
        if len(column) and column.buffers()[2] is not None:
            text = np.frombuffer(column.buffers()[2], np.uint8)
            if len(text) and text.max() >= 0x80:
                raise chunk.refuse("non-ASCII text")
    return DecodedChunk(columns=columns, end_positions=end_positions)
