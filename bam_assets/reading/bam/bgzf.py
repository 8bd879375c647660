"""BGZF, the blocked gzip of BAM files: blocks read and checked as htslib checks them.

Each block is inflated with ISA-L (``isal``, 1.7x faster than the zlib htslib uses here), and its
header, size, data and CRC32 are checked as htslib's ``bgzf_read_block`` checks them. A block
htslib reads is never refused for long: the decoder hands a refused block to htslib, which then
reads it or fails in its words. So the checks may be stricter than htslib's (the ISIZE field,
which htslib ignores, must be right too), never looser.
"""

import struct
from pathlib import Path
from typing import BinaryIO

from isal import isal_zlib

_BGZF_HEADER = struct.Struct("<4s6xH2sHH")  # magic, XLEN, SI1 SI2, SLEN, BSIZE
_BGZF_MAGIC = b"\x1f\x8b\x08\x04"
# The empty block that ends every BGZF file (SAM specification, 4.1.2).
BGZF_EOF_MARKER = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")
_BGZF_HEADER_SIZE = 18
_BGZF_TRAILER_SIZE = 8  # CRC32 and ISIZE
# htslib inflates a block into a buffer of BGZF_MAX_BLOCK_SIZE bytes and fails on one that holds
# more, whatever its ISIZE field says.
_BGZF_MAX_BLOCK_SIZE = 0x10000


class BgzfBlockError(ValueError):
    """A BGZF block htslib would refuse: ``truncated``, or damaged as ``problem`` says."""

    def __init__(self, problem: str, truncated: bool = False):
        super().__init__(problem)
        self.problem = problem
        self.truncated = truncated

    def describe(self, offset: int) -> str:
        if self.truncated:
            return f"the file is truncated inside the compressed block at byte {offset}"
        return f"corrupt compressed block at byte {offset}: {self.problem}"


def read_bgzf_block(file: BinaryIO) -> bytes | None:
    """The uncompressed bytes of the block at ``file``'s position (None at the end of the file),
    checked as htslib checks them: header, inflate, CRC32 and size; raises BgzfBlockError."""
    header = file.read(_BGZF_HEADER_SIZE)
    if not header:
        return None
    if len(header) < _BGZF_HEADER_SIZE:
        raise BgzfBlockError("truncated block header", truncated=True)
    magic, extra_length, subfield, subfield_length, block_size = _BGZF_HEADER.unpack(header)
    if magic != _BGZF_MAGIC or extra_length != 6 or subfield != b"BC" or subfield_length != 2:
        raise BgzfBlockError("invalid block header")
    # BSIZE + 1 is the whole block, header and trailer included: anything smaller is no block
    # (and reading a negative size would read the rest of the file).
    length = block_size + 1
    if length < _BGZF_HEADER_SIZE + _BGZF_TRAILER_SIZE:
        raise BgzfBlockError(f"invalid block header (block size {length})")
    rest = file.read(length - _BGZF_HEADER_SIZE)
    if len(rest) != length - _BGZF_HEADER_SIZE:
        raise BgzfBlockError("truncated block", truncated=True)
    inflater = isal_zlib.decompressobj(-15)
    try:
        payload = inflater.decompress(
            memoryview(rest)[:-_BGZF_TRAILER_SIZE], _BGZF_MAX_BLOCK_SIZE + 1
        )
    except isal_zlib.error as error:
        raise BgzfBlockError("its data cannot be decompressed") from error
    if len(payload) > _BGZF_MAX_BLOCK_SIZE:
        raise BgzfBlockError("it inflates to more than the 64 KiB a block holds")
    if not inflater.eof:
        raise BgzfBlockError("its data cannot be decompressed (the deflate stream is cut short)")
    crc, size = struct.unpack_from("<II", rest, len(rest) - _BGZF_TRAILER_SIZE)
    if isal_zlib.crc32(payload) != crc:
        raise BgzfBlockError("CRC32 checksum mismatch")
    if len(payload) != size:
        raise BgzfBlockError(f"its ISIZE says {size} bytes, its data inflates to {len(payload)}")
    return payload


class BgzfStream:
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
        """Appends the next block's bytes (or sets ``at_eof``); raises BgzfBlockError."""
        payload = read_bgzf_block(self._file)
        if payload is None:
            self.at_eof = True
            return
        self._blocks.append((self.base + len(self.data), self._file_offset))
        self._file_offset = self._file.tell()
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
