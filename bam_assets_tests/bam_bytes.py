"""BAM files built byte by byte, so that a test can damage exactly one field.

Only the standard library: BGZF blocks with ``zlib``, BAM headers and records with ``struct``.
Every field a reader checks can be forced to a wrong value (a block's BSIZE, ISIZE or CRC32, a
record's ``block_size``, ``l_read_name``, ``n_cigar_op`` or ``l_seq``, a reference's ``l_name``).
"""

import struct
import zlib
from collections.abc import Sequence

from bam_assets.reading.bam.bgzf import BGZF_EOF_MARKER

BGZF_MAGIC = b"\x1f\x8b\x08\x04"
SEQ_CODES = "=ACMGRSVTWYHKDBN"
CIGAR_CODES = "MIDNSHP=XB"
DEFAULT_TEXT = b"@HD\tVN:1.6\n@SQ\tSN:chr1\tLN:1000\n"
_INT_FORMATS = {"c": "b", "C": "B", "s": "h", "S": "H", "i": "i", "I": "I", "f": "f"}


def bgzf_block(
    payload: bytes,
    *,
    cdata: bytes | None = None,
    crc: int | None = None,
    isize: int | None = None,
    bsize: int | None = None,
    magic: bytes = BGZF_MAGIC,
) -> bytes:
    """One BGZF block holding ``payload`` (deflated, or ``cdata`` as given); ``crc``, ``isize``
    and ``bsize`` (the block size minus one, as stored) replace the true values."""
    if cdata is None:
        compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
        cdata = compressor.compress(payload) + compressor.flush()
    size = 18 + len(cdata) + 8
    header = magic + b"\x00\x00\x00\x00\x00\xff" + struct.pack("<H", 6) + b"BC"
    header += struct.pack("<HH", 2, (size - 1 if bsize is None else bsize) & 0xFFFF)
    trailer = struct.pack(
        "<II",
        zlib.crc32(payload) if crc is None else crc,
        len(payload) if isize is None else isize,
    )
    return header + cdata + trailer


def bgzf(data: bytes, block: int = 0xFF00, eof: bool = True) -> bytes:
    """``data`` in BGZF blocks of at most ``block`` bytes (htslib writes 0xff00), then the EOF
    marker."""
    blocks = [bgzf_block(data[i : i + block]) for i in range(0, len(data), block)]
    return b"".join(blocks or [bgzf_block(b"")]) + (BGZF_EOF_MARKER if eof else b"")


def bam_header(
    text: bytes = DEFAULT_TEXT,
    references: Sequence[tuple] = ((b"chr1", 1000),),
    *,
    l_text: int | None = None,
    n_ref: int | None = None,
) -> bytes:
    """The uncompressed BAM header. A reference is ``(name, length)``, written with its NUL, or
    ``(raw bytes, length, l_name)``, written as given."""
    out = b"BAM\x01" + struct.pack("<i", len(text) if l_text is None else l_text) + text
    out += struct.pack("<i", len(references) if n_ref is None else n_ref)
    for reference in references:
        if len(reference) == 3:
            raw, length, l_name = reference
        else:
            raw, length = reference[0] + b"\x00", reference[1]
            l_name = len(raw)
        out += struct.pack("<i", l_name) + raw + struct.pack("<i", length)
    return out


def cigar_ops(text: str) -> list[int]:
    """``4M2S`` as BAM's 32-bit operations (length << 4 | op)."""
    ops, number = [], ""
    for character in text:
        if character.isdigit():
            number += character
        else:
            ops.append(int(number) << 4 | CIGAR_CODES.index(character))
            number = ""
    return ops


def pack_seq(seq: str) -> bytes:
    codes = [SEQ_CODES.index(base) for base in seq.upper()] + [0]
    return bytes(codes[i] << 4 | codes[i + 1] for i in range(0, len(seq), 2))


def _reg2bin(begin: int, end: int) -> int:
    end -= 1
    for shift, offset in ((14, 4681), (17, 585), (20, 73), (23, 9), (26, 1)):
        if begin >> shift == end >> shift:
            return offset + (begin >> shift)
    return 0


def bam_record(
    qname: bytes = b"r1",
    flag: int = 0,
    tid: int = 0,
    pos: int = 0,
    mapq: int = 60,
    cigar: str | list[int] = "4M",
    mtid: int = -1,
    mpos: int = -1,
    tlen: int = 0,
    seq: str = "ACGT",
    qual: bytes | None = None,
    tags: bytes = b"",
    *,
    raw_qname: bytes | None = None,
    l_qname: int | None = None,
    n_cigar: int | None = None,
    l_seq: int | None = None,
    block_size: int | None = None,
) -> bytes:
    """One uncompressed record; ``pos`` and ``mpos`` are 0-based, as BAM stores them.

    ``qname`` gets its NUL, ``raw_qname`` is written as given. ``qual`` None is Phred 30 per
    base (``b"\\xff" * n`` is BAM's "no QUAL"). The length fields can be forced.
    """
    ops = cigar_ops(cigar) if isinstance(cigar, str) else list(cigar)
    name = qname + b"\x00" if raw_qname is None else raw_qname
    qual = bytes([30] * len(seq)) if qual is None else qual
    variable = name + b"".join(struct.pack("<I", op) for op in ops) + pack_seq(seq) + qual + tags
    span = sum(op >> 4 for op in ops if (op & 0xF) in (0, 2, 3, 7, 8)) or 1
    core = struct.pack(
        "<iiBBHHHiiii",
        tid,
        pos,
        (len(name) if l_qname is None else l_qname) & 0xFF,
        mapq,
        _reg2bin(max(pos, 0), max(pos, 0) + span),
        (len(ops) if n_cigar is None else n_cigar) & 0xFFFF,
        flag,
        len(seq) if l_seq is None else l_seq,
        mtid,
        mpos,
        tlen,
    )
    size = len(core) + len(variable) if block_size is None else block_size
    return struct.pack("<i", size) + core + variable


def tag_int(key: bytes, value: int, type_: str = "i") -> bytes:
    return key + type_.encode() + struct.pack("<" + _INT_FORMATS[type_], value)


def tag_text(key: bytes, value: bytes, type_: bytes = b"Z") -> bytes:
    """A ``Z`` (or ``H``) tag: the value and its NUL."""
    return key + type_ + value + b"\x00"


def tag_char(key: bytes, value: bytes) -> bytes:
    return key + b"A" + value


def tag_array(key: bytes, subtype: str, values: Sequence, count: int | None = None) -> bytes:
    return (
        key
        + b"B"
        + subtype.encode()
        + struct.pack("<I", len(values) if count is None else count)
        + b"".join(struct.pack("<" + _INT_FORMATS[subtype], value) for value in values)
    )


def good_records(count: int = 3, first: int = 0) -> bytes:
    """``count`` plain mapped 8-base records named ``r<first>``…, 10 bases apart, with NM:i:0."""
    return b"".join(
        bam_record(
            f"r{first + i}".encode(), pos=10 * i, seq="ACGTACGT", cigar="8M", tags=tag_int(b"NM", 0)
        )
        for i in range(count)
    )


def bam(records: bytes, header: bytes | None = None, **bgzf_options) -> bytes:
    """A whole BAM file: ``header`` (default: one contig, chr1) and ``records`` in BGZF blocks."""
    return bgzf((bam_header() if header is None else header) + records, **bgzf_options)


def bam_blocks(*payloads: bytes, eof: bool = True) -> bytes:
    """One BGZF block per payload, so that a test can damage one block of a file."""
    return b"".join(bgzf_block(payload) for payload in payloads) + (BGZF_EOF_MARKER if eof else b"")
