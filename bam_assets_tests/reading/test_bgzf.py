"""BGZF blocks and the binary header as htslib reads them: the bulk decoder never accepts a block
htslib refuses, and what htslib refuses is named in words.

samtools (``pysam.view``) is the oracle: a file it reads is read with the same records, one it
refuses is refused.
"""

import gzip
import zlib
from pathlib import Path

import pysam
import pytest

from bam_assets.reading.bam.bgzf import BgzfBlockError, read_bgzf_block
from bam_assets.reading.bam.decoder import NeedsHtslib, iter_record_chunks
from bam_assets.reading.errors import AlignmentReadError
from bam_assets.reading.options import ReaderOptions
from bam_assets.reading.reader import iter_read_batches, read_header
from bam_assets_tests.bam_bytes import (
    BGZF_EOF_MARKER,
    bam,
    bam_blocks,
    bam_header,
    bgzf_block,
    good_records,
)

BOTH_PATHS = [ReaderOptions(), ReaderOptions(bulk_bam_decoding=False)]


def rows(path: Path, options: ReaderOptions = BOTH_PATHS[0]) -> list[dict]:
    return [row for batch in iter_read_batches(path, options) for row in batch.to_pylist()]


def samtools_refuses(path: Path) -> bool:
    try:
        pysam.view("-c", str(path))
    except pysam.SamtoolsError:
        return True
    return False


def test_a_block_that_inflates_to_more_than_64_kib_is_refused(tmp_path: Path):
    """Its CRC32 and ISIZE agree with its 70,000 bytes, but htslib inflates into 65,536."""
    records = good_records(1400)
    path = tmp_path / "big_block.bam"
    path.write_bytes(
        bgzf_block(bam_header())
        + bgzf_block(records[:70_000])
        + bgzf_block(records[70_000:])
        + BGZF_EOF_MARKER
    )
    assert samtools_refuses(path)
    with pytest.raises(NeedsHtslib, match="more than the 64 KiB"):
        list(iter_record_chunks(path, 100))
    header_block = len(bgzf_block(bam_header()))
    for options in BOTH_PATHS:
        with pytest.raises(AlignmentReadError, match=f"block at byte {header_block}: it inflates"):
            rows(path, options)


def test_a_block_of_exactly_64_kib_is_read(tmp_path: Path):
    data = bam_header() + good_records(2000)
    path = tmp_path / "full_block.bam"
    path.write_bytes(bgzf_block(data[:65_536]) + bgzf_block(data[65_536:]) + BGZF_EOF_MARKER)
    assert len(rows(path)) == 2000 == int(pysam.view("-c", str(path)))


def test_a_deflate_bomb_is_inflated_no_further_than_64_kib(tmp_path: Path):
    """40 kB of deflate that would inflate to 40 MB: refused after 64 KiB, memory bounded."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    bomb = compressor.compress(bytes(40 << 20)) + compressor.flush()
    path = tmp_path / "bomb.bin"
    path.write_bytes(bgzf_block(b"", cdata=bomb))
    with path.open("rb") as handle, pytest.raises(BgzfBlockError, match="more than the 64 KiB"):
        read_bgzf_block(handle)


def test_a_block_size_below_a_whole_block_is_refused_without_reading_on(tmp_path: Path):
    path = tmp_path / "bsize.bin"
    path.write_bytes(bgzf_block(bam_header(), bsize=15) + bytes(1 << 20))
    with path.open("rb") as handle:
        with pytest.raises(BgzfBlockError, match="block size 16"):
            read_bgzf_block(handle)
        assert handle.tell() == 18  # a read of a negative size used to read the whole file


@pytest.mark.parametrize(
    ("damage", "cause"),
    [
        ("magic", r"corrupt compressed block at byte \d+: invalid block header"),
        ("bsize-below-header", r"invalid block header \(block size 10\)"),
        ("bsize-too-large", r"corrupt compressed block at byte \d+"),
    ],
)
def test_a_damaged_block_header_is_refused_naming_its_byte(tmp_path: Path, damage: str, cause):
    payloads = [bam_header(), *(good_records(2, 2 * i) for i in range(4))]
    blocks = [bgzf_block(payload) for payload in payloads]
    if damage == "magic":
        blocks[2] = b"\xe0" + blocks[2][1:]
    elif damage == "bsize-below-header":
        blocks[2] = bgzf_block(payloads[2], bsize=9)
    else:
        blocks[2] = bgzf_block(payloads[2], bsize=len(blocks[2]) - 1 + 40)
    path = tmp_path / f"{damage}.bam"
    path.write_bytes(b"".join(blocks) + BGZF_EOF_MARKER)
    assert samtools_refuses(path)
    for options in BOTH_PATHS:
        with pytest.raises(AlignmentReadError, match=cause):
            rows(path, options)


def test_a_wrong_isize_alone_is_read_as_htslib_reads_it(tmp_path: Path):
    """htslib ignores ISIZE; the bulk decoder hands such a block to htslib."""
    data = bam_header() + good_records(3)
    path = tmp_path / "isize.bam"
    path.write_bytes(bgzf_block(data, isize=len(data) + 10) + BGZF_EOF_MARKER)
    with pytest.raises(NeedsHtslib, match="ISIZE says"):
        list(iter_record_chunks(path, 100))
    assert [row["qname"] for row in rows(path)] == ["r0", "r1", "r2"]


@pytest.mark.parametrize(
    ("raw", "l_name"),
    [(b"chr1", 4), (b"chr1\x00xx\x00", 8), (b"chr1\x00", 5)],
    ids=["without-nul", "nul-inside", "plain"],
)
def test_reference_names_end_at_their_first_nul_as_in_bam_hdr_read(
    tmp_path: Path, raw: bytes, l_name: int
):
    path = tmp_path / "names.bam"
    path.write_bytes(bam(good_records(1), bam_header(references=[(raw, 1000, l_name)])))
    assert "\tchr1\t" in pysam.view(str(path))
    for options in BOTH_PATHS:
        assert [row["rname"] for row in rows(path, options)] == ["chr1"]


@pytest.mark.parametrize(
    "header",
    [
        bam_header(n_ref=-1),
        bam_header(references=[(b"", 1000, 0)]),
        bam_header(l_text=-5),
    ],
    ids=["n_ref-negative", "l_name-zero", "l_text-negative"],
)
def test_a_damaged_binary_header_is_named_as_such(tmp_path: Path, header: bytes):
    path = tmp_path / "header.bam"
    path.write_bytes(bam(good_records(1), header))
    assert samtools_refuses(path)
    with pytest.raises(AlignmentReadError, match="a BAM file whose binary header is invalid"):
        read_header(path, ReaderOptions())


def test_a_damaged_first_block_is_named_as_such(tmp_path: Path):
    data = bam_header() + good_records(3)
    path = tmp_path / "crc.bam"
    path.write_bytes(bgzf_block(data, crc=zlib.crc32(data) ^ 1) + BGZF_EOF_MARKER)
    assert samtools_refuses(path)
    with pytest.raises(AlignmentReadError, match="block at byte 0: CRC32 checksum mismatch"):
        read_header(path, ReaderOptions())


def test_bytes_after_the_end_of_file_marker_are_named(tmp_path: Path):
    path = tmp_path / "trailing.bam"
    path.write_bytes(bam(good_records(3)) + b"this is not bgzf!!\n\n")
    assert samtools_refuses(path)
    with pytest.raises(AlignmentReadError, match="20 bytes follow its BGZF end-of-file marker"):
        read_header(path, ReaderOptions())


def test_a_gzipped_sam_file_is_read(tmp_path: Path):
    sam = b"@HD\tVN:1.6\n@SQ\tSN:chr1\tLN:1000\nr1\t0\tchr1\t1\t60\t4M\t*\t0\t0\tACGT\tIIII\n"
    path = tmp_path / "plain.sam"
    path.write_bytes(gzip.compress(sam))
    assert [row["qname"] for row in rows(path)] == ["r1"]
    assert read_header(path, ReaderOptions()).format == "SAM"


def test_a_bam_compressed_with_plain_gzip_is_refused_in_words(tmp_path: Path):
    """samtools streams it; pysam's open asks for a position plain gzip cannot give. Refused,
    with the command that recompresses it (docs/operations.md)."""
    path = tmp_path / "plain.bam"
    path.write_bytes(gzip.compress(bam_header() + good_records(5)))
    assert int(pysam.view("-c", str(path))) == 5
    with pytest.raises(AlignmentReadError, match="plain gzip, not BGZF.*samtools view -b"):
        read_header(path, ReaderOptions())


def test_a_plain_gzip_member_between_bgzf_blocks_is_read_as_htslib_reads_it(tmp_path: Path):
    path = tmp_path / "member.bam"
    path.write_bytes(
        bgzf_block(bam_header() + good_records(2))
        + gzip.compress(good_records(2, 2))
        + BGZF_EOF_MARKER
    )
    assert [row["qname"] for row in rows(path)] == ["r0", "r1", "r2", "r3"]
    assert len(rows(path)) == int(pysam.view("-c", str(path)))


def test_empty_blocks_and_an_end_of_file_marker_mid_file_are_skipped(tmp_path: Path):
    empty = bgzf_block(b"", cdata=b"\x01\x00\x00\xff\xff")
    path = tmp_path / "empty_blocks.bam"
    path.write_bytes(
        bgzf_block(bam_header())
        + empty
        + bgzf_block(good_records(2))
        + BGZF_EOF_MARKER
        + bam_blocks(good_records(2, 2))
    )
    assert [row["qname"] for row in rows(path)] == ["r0", "r1", "r2", "r3"]
    assert int(pysam.view("-c", str(path))) == 4


def test_a_missing_end_of_file_marker_is_refused_unless_allowed(tmp_path: Path):
    """samtools warns and reads every record. Refused by default (the marker is the only sign
    of an interrupted copy), with a message naming the option that reads it as samtools does."""
    path = tmp_path / "no_eof.bam"
    path.write_bytes(bam(good_records(3), eof=False))
    assert int(pysam.view("-c", str(path))) == 3
    with pytest.raises(AlignmentReadError, match="truncated.*allow_missing_eof"):
        read_header(path, ReaderOptions())
    for bulk in (True, False):
        options = ReaderOptions(allow_missing_eof=True, bulk_bam_decoding=bulk)
        assert read_header(path, options).format == "BAM"
        assert [row["qname"] for row in rows(path, options)] == ["r0", "r1", "r2"]


def test_a_file_cut_inside_a_block_fails_even_when_a_missing_marker_is_allowed(tmp_path: Path):
    data = bam_blocks(bam_header(), good_records(2), good_records(2, 2), eof=False)
    path = tmp_path / "cut.bam"
    path.write_bytes(data[:-20])
    assert samtools_refuses(path)
    options = ReaderOptions(allow_missing_eof=True)
    with pytest.raises(AlignmentReadError, match="truncated inside the compressed block"):
        rows(path, options)
