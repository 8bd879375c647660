"""The differential oracle of the fuzzer (``fuzz/fuzz_decoder.py``) and of the replay of its past
findings (``reading/test_fuzz_findings.py``): a fuzz input becomes a BAM file, which the ingest
reads twice, once with the bulk decoder and once with htslib's formatter alone
(``bulk_bam_decoding=False``). Either both give the same rows, or both refuse the file with
``AlignmentReadError``; anything else raised is a finding too (an unclear crash).

Input format (kept stable: the saved findings use it). Byte 0 picks a mode (``% 4``), byte 1 is a
knob, the rest is the payload:

- 0: the payload is the file (BGZF framing, binary header, everything);
- 1: the payload is an uncompressed BAM stream, written as BGZF;
- 2: a fixed valid header, then the payload as record bytes, written as BGZF;
- 3: like 2, the first 4 payload bytes damaging the first blocks (BSIZE, ISIZE or CRC32), with
  block sizes beyond 64 KiB among the choices, and the EOF marker left out when bit 0x80 is set.

The knob's low 3 bits pick the records per chunk; bits 3-7 the block size; bit 0x40 reads with
``allow_missing_eof``.
"""

import dataclasses
import struct
import zlib
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from bam_assets.reading.bam.bgzf import BGZF_EOF_MARKER
from bam_assets.reading.errors import AlignmentReadError
from bam_assets.reading.options import ReaderOptions
from bam_assets.reading.reader import iter_read_batches, read_header

_TEXT = b"@HD\tVN:1.6\n@SQ\tSN:chr1\tLN:1000\n@SQ\tSN:chrM\tLN:16569\n"
HEADER = (
    b"BAM\x01"
    + struct.pack("<i", len(_TEXT))
    + _TEXT
    + struct.pack("<i", 2)
    + struct.pack("<i", 5)
    + b"chr1\x00"
    + struct.pack("<i", 1000)
    + struct.pack("<i", 5)
    + b"chrM\x00"
    + struct.pack("<i", 16569)
)
CHUNK_SIZES = (1, 2, 3, 7, 16, 64, 1000, 10_000)
BLOCK_SIZES = (0xFF00, 0xFF00, 0xFF00, 4096, 517, 64, 37, 0x10000, 0x10001, 70000)
# Rows compared per input: enough to cross chunk and block edges, few enough for ~50 inputs/s.
MAX_ROWS = 200


def _block(payload: bytes, damage: int) -> bytes:
    """One BGZF block; ``damage`` 1, 2 or 3 makes its BSIZE, ISIZE or CRC32 wrong by one."""
    compressor = zlib.compressobj(1, zlib.DEFLATED, -15)
    cdata = compressor.compress(payload) + compressor.flush()
    bsize = 18 + len(cdata) + 8 - 1 + (damage == 1)
    crc = zlib.crc32(payload) ^ (damage == 3)
    isize = len(payload) + (damage == 2)
    return (
        b"\x1f\x8b\x08\x04\x00\x00\x00\x00\x00\xff\x06\x00BC\x02\x00"
        + struct.pack("<H", bsize & 0xFFFF)
        + cdata
        + struct.pack("<II", crc, isize)
    )


def _bgzf(data: bytes, size: int, damage: bytes = b"", eof: bool = True) -> bytes:
    blocks = []
    for index, start in enumerate(range(0, len(data), size)):
        kind = damage[index] % 16 if index < len(damage) else 0
        blocks.append(_block(data[start : start + size], kind if kind < 4 else 0))
    return b"".join(blocks) + (BGZF_EOF_MARKER if eof else b"")


def file_from_input(data: bytes) -> tuple[bytes, ReaderOptions]:
    """The file a fuzz input stands for, and the reading options to read it with."""
    if len(data) < 2:
        return data, ReaderOptions(chunk_size=4)
    mode, knob, rest = data[0] % 4, data[1], data[2:]
    options = ReaderOptions(chunk_size=CHUNK_SIZES[knob % 8], allow_missing_eof=bool(knob & 0x40))
    if mode == 0:
        return rest, options
    if mode == 3:
        size = BLOCK_SIZES[(knob >> 3) % len(BLOCK_SIZES)]
        return _bgzf(HEADER + rest[4:], size, rest[:4], eof=not knob & 0x80), options
    size = BLOCK_SIZES[(knob >> 3) % 3]
    return _bgzf(rest if mode == 1 else HEADER + rest, size), options


def _read(path: Path, options: ReaderOptions) -> tuple[pa.Table | None, str | None]:
    """The first ``MAX_ROWS`` rows the ingest reads with ``options`` (None for a file without
    records), or None and the refusal."""
    batches = []
    rows = 0
    try:
        for batch in iter_read_batches(path, options):
            batches.append(batch)
            rows += batch.num_rows
            if rows >= MAX_ROWS:
                break
    except AlignmentReadError as refusal:
        return None, str(refusal)
    if not batches:
        return None, None
    return pa.Table.from_batches(batches).slice(0, MAX_ROWS), None


def _first_difference(bulk: pa.Table, htslib: pa.Table) -> str:
    if bulk.num_rows != htslib.num_rows:
        return f"bulk read {bulk.num_rows} rows, htslib {htslib.num_rows}"
    for name in bulk.column_names:
        ours, theirs = bulk.column(name).to_pylist(), htslib.column(name).to_pylist()
        for row, (a, b) in enumerate(zip(ours, theirs, strict=True)):
            if a != b:
                return f"row {row}, column {name}: bulk {a!r}, htslib {b!r}"
    return "the tables differ in type or metadata"


def check(data: bytes, folder: Path) -> None:
    """Raises AssertionError when the two ways of reading the file of ``data`` disagree (one
    refuses what the other reads, or the rows differ); any error other than AlignmentReadError
    propagates as it is."""
    content, options = file_from_input(data)
    path = folder / "input.bam"
    path.write_bytes(content)
    try:
        read_header(path, options)
    except AlignmentReadError:
        return  # both paths start here: the ingest refuses before either decodes a record
    bulk, bulk_refusal = _read(path, options)
    htslib, htslib_refusal = _read(path, dataclasses.replace(options, bulk_bam_decoding=False))
    if (bulk_refusal is None) != (htslib_refusal is None):
        raise AssertionError(f"bulk refusal: {bulk_refusal}; htslib refusal: {htslib_refusal}")
    if bulk_refusal is None and (bulk is None) != (htslib is None):
        raise AssertionError(f"bulk read {bulk!r}, htslib {htslib!r}")
    if bulk is not None and htslib is not None:
        bulk = _without_known_difference(bulk, htslib)
        if not bulk.equals(htslib):
            raise AssertionError(_first_difference(bulk, htslib))


def _without_known_difference(bulk: pa.Table, htslib: pa.Table) -> pa.Table:
    """``bulk`` with the one known difference of the htslib path undone: pysam hides every
    quality of a record whose first quality byte is 0xff (SAM prints its QUAL as ``*``), so that
    path stores no ``qual_sum`` where the bulk decoder sums the bytes, as samtools stats does
    (``reading/test_htslib_records.py`` shows both)."""
    if bulk.num_rows != htslib.num_rows:
        return bulk
    hidden = pc.and_(pc.equal(bulk["qual"], "*"), pc.is_null(htslib["qual_sum"]))
    sums = pc.if_else(hidden, pa.scalar(None, pa.int64()), bulk["qual_sum"])
    return bulk.set_column(bulk.schema.get_field_index("qual_sum"), "qual_sum", sums)
