"""Hostile and odd alignment files, one small file per case, built byte by byte (``bam_bytes``).

Each case is a file that samtools either reads (then the ingest must store what samtools prints)
or refuses (then the ingest must refuse it too, in words). ``system/test_hostile_input.py`` runs
every case against samtools; ``fuzz/make_seeds.py`` turns them into fuzzing seeds. Run as a
script to write them all: ``python -m bam_assets_tests.hostile OUT_DIR``.
"""

import gzip
import struct
import sys
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pysam

from bam_assets_tests.bam_bytes import (
    BGZF_EOF_MARKER,
    bam,
    bam_blocks,
    bam_header,
    bam_record,
    bgzf_block,
    good_records,
    tag_array,
    tag_char,
    tag_int,
    tag_text,
)
from bam_assets_tests.helpers import bgzf_blocks


@dataclass(frozen=True)
class Case:
    """One hostile file: ``build(folder)`` writes it and returns its path.

    ``reading`` overrides reading settings (a relative ``reference`` lies beside the file);
    ``refused`` is the cause (a regular expression) when the ingest refuses a file samtools reads,
    by decision (docs/operations.md says why).
    """

    name: str
    description: str
    build: Callable[[Path], Path]
    reading: dict = field(default_factory=dict)
    refused: str | None = None


CASES: dict[str, Case] = {}


def case(description: str, suffix: str = ".bam", reading: dict | None = None, refused=None):
    """Registers a builder of the file's bytes (or, taking the folder, of the file itself)."""

    def register(build: Callable) -> Callable:
        name = build.__name__.replace("_", "-")

        def write(folder: Path) -> Path:
            if build.__code__.co_argcount:
                return build(folder)
            path = folder / f"{name}{suffix}"
            path.write_bytes(build())
            return path

        CASES[name] = Case(name, description, write, reading or {}, refused)
        return build

    return register


def _blocks_with(index: int, damaged: bytes) -> bytes:
    """A header block and 8 two-record blocks, block ``index`` replaced by ``damaged``."""
    payloads = [bam_header()] + [good_records(2, 2 * i) for i in range(8)]
    blocks = [bgzf_block(payload) for payload in payloads]
    blocks[index] = damaged
    return b"".join(blocks) + BGZF_EOF_MARKER


def _block(index: int) -> bytes:
    return good_records(2, 2 * (index - 1))


# --- BGZF ---------------------------------------------------------------------------------------
@case("block 2 has bad magic bytes (threads=2 open hung in bgzf_check_EOF)")
def bad_magic() -> bytes:
    return _blocks_with(2, b"\xe0" + bgzf_block(_block(2))[1:])


@case("block 2 has BSIZE 9, smaller than the 18-byte block header")
def bsize_below_header() -> bytes:
    return _blocks_with(2, bgzf_block(_block(2), bsize=9))


@case("block 2's BSIZE is 40 bytes too large (the next header is misread)")
def bsize_too_large() -> bytes:
    return _blocks_with(2, bgzf_block(_block(2), bsize=len(bgzf_block(_block(2))) + 39))


@case("small BAM cut in the middle of its 3rd block (no EOF marker)")
def truncated_mid_block() -> bytes:
    data = bam_blocks(bam_header(), *(good_records(2, 2 * i) for i in range(4)), eof=False)
    offset, size = bgzf_blocks(data)[3]
    return data[: offset + size // 2]


@case("block 2 inflates to 70000 bytes (> 64 KiB), its CRC32 and ISIZE consistent")
def inflate_over_64k() -> bytes:
    records = good_records(1400)
    return bam_blocks(bam_header(), records[:70_000], records[70_000:])


@case("ISIZE says 10 bytes more than the block inflates to (htslib ignores ISIZE)")
def isize_mismatch() -> bytes:
    data = bam_header() + good_records(3)
    return bgzf_block(data, isize=len(data) + 10) + BGZF_EOF_MARKER


@case("CRC32 of the only block wrong")
def crc_mismatch() -> bytes:
    data = bam_header() + good_records(3)
    return bgzf_block(data, crc=zlib.crc32(data) ^ 1) + BGZF_EOF_MARKER


@case("whole BAM compressed as one plain gzip member", refused="plain gzip, not BGZF")
def plain_gzip() -> bytes:
    return gzip.compress(bam_header() + good_records(5), mtime=0)


@case("BGZF blocks, then a plain gzip member (no BC subfield), then the EOF marker")
def gzip_member_without_bc() -> bytes:
    return (
        bgzf_block(bam_header() + good_records(2))
        + gzip.compress(good_records(2, 2), mtime=0)
        + BGZF_EOF_MARKER
    )


@case(
    "valid blocks, no EOF marker: read with allow_missing_eof", reading={"allow_missing_eof": True}
)
def no_eof_marker() -> bytes:
    return bam(good_records(3), eof=False)


@case("valid file, EOF marker, then 20 bytes of garbage")
def trailing_garbage() -> bytes:
    return bam(good_records(3)) + b"this is not bgzf!!\n\n"


@case("an EOF marker block in the middle, records after it")
def eof_block_mid_file() -> bytes:
    return (
        bgzf_block(bam_header() + good_records(2)) + BGZF_EOF_MARKER + bam(good_records(2, 2), b"")
    )


@case("empty blocks (stored deflate, not EOF markers) between record blocks")
def empty_blocks_mid_file() -> bytes:
    empty = bgzf_block(b"", cdata=b"\x01\x00\x00\xff\xff")
    return b"".join(
        [bgzf_block(bam_header()), empty, bgzf_block(good_records(2)), empty, empty]
    ) + bam(good_records(2, 2), b"")


@case("uncompressed BAM (raw 'BAM\\1' bytes, no BGZF at all)")
def uncompressed_bam() -> bytes:
    return bam_header() + good_records(3)


@case("a whole BAM file concatenated to itself (a second header mid-stream)")
def concatenated_bams() -> bytes:
    return bam(good_records(2)) + bam(good_records(2, 2))


# --- binary header ------------------------------------------------------------------------------
@case("binary reference name 'chr1' written without its NUL (l_name 4)")
def ref_name_without_nul() -> bytes:
    return bam(good_records(2), bam_header(references=[(b"chr1", 1000, 4)]))


@case("binary reference name 'chr1\\0xx\\0' (a NUL inside, l_name 8)")
def ref_name_inner_nul() -> bytes:
    return bam(good_records(2), bam_header(references=[(b"chr1\x00xx\x00", 1000, 8)]))


@case("binary reference with l_name 0")
def ref_l_name_zero() -> bytes:
    return bam(good_records(2), bam_header(references=[(b"", 1000, 0)]))


@case("the @SQ text names chrText, the binary list chrBin (samtools idxstats lists chrBin)")
def sq_text_vs_binary() -> bytes:
    header = bam_header(b"@HD\tVN:1.6\n@SQ\tSN:chrText\tLN:1000\n", [(b"chrBin", 1000)])
    return bam(good_records(2), header)


@case("no @SQ lines in the text, one binary reference")
def sq_text_missing() -> bytes:
    return bam(good_records(2), bam_header(b"@HD\tVN:1.6\n", [(b"chr1", 1000)]))


@case("three binary references, two @SQ lines")
def sq_text_fewer() -> bytes:
    references = [(b"chr1", 1000), (b"chr2", 800), (b"chr3", 600)]
    text = b"@HD\tVN:1.6\n@SQ\tSN:chr1\tLN:1000\n@SQ\tSN:chr2\tLN:800\n"
    records = bam_record(b"a", tid=2, pos=3) + bam_record(b"b", tid=1, pos=3)
    return bam(records, bam_header(text, references))


@case("one binary reference, three @SQ lines (samtools idxstats lists the one)")
def sq_text_more() -> bytes:
    text = b"@HD\tVN:1.6\n@SQ\tSN:chr1\tLN:1000\n@SQ\tSN:chr2\tLN:800\n@SQ\tSN:chr3\tLN:600\n"
    return bam(good_records(2), bam_header(text, [(b"chr1", 1000)]))


@case("two binary references with the same name (samtools idxstats counts each)")
def duplicate_reference_names() -> bytes:
    records = bam_record(b"a", tid=0, pos=3) + bam_record(b"b", tid=1, pos=3)
    return bam(records, bam_header(b"@HD\tVN:1.6\n", [(b"chr1", 1000), (b"chr1", 500)]))


@case("contigs named '*' and '=' (records and mates on both)")
def contigs_star_and_equals() -> bytes:
    header = bam_header(
        b"@HD\tVN:1.6\n@SQ\tSN:*\tLN:1000\n@SQ\tSN:=\tLN:1000\n", [(b"*", 1000), (b"=", 1000)]
    )
    records = bam_record(b"a", tid=0, pos=5, mtid=1, mpos=9, flag=1) + bam_record(
        b"b", tid=1, pos=9, mtid=1, mpos=5, flag=1
    )
    return bam(records, header)


@case("a reference name holding a TAB")
def reference_name_tab() -> bytes:
    header = bam_header(b"@HD\tVN:1.6\n", [(b"chr\t1", 1000)])
    return bam(bam_record(b"a", mtid=0, mpos=3) + good_records(1), header)


@case("l_text negative (-5)")
def header_l_text_negative() -> bytes:
    return bam(good_records(1), bam_header(l_text=-5))


@case("n_ref negative (-1)")
def header_n_ref_negative() -> bytes:
    return bam(good_records(1), bam_header(n_ref=-1))


@case("@CO line with a Latin-1 byte (0xE9)")
def header_latin1_comment() -> bytes:
    return bam(good_records(2), bam_header(b"@HD\tVN:1.6\n@SQ\tSN:chr1\tLN:1000\n@CO\tcaf\xe9\n"))


@case("header text padded with NULs (as some writers do)")
def header_text_nul_padded() -> bytes:
    return bam(good_records(2), bam_header(b"@HD\tVN:1.6\n@SQ\tSN:chr1\tLN:1000\n" + bytes(20)))


# --- records ------------------------------------------------------------------------------------
@case("the last record's block_size runs 50 bytes past the end of the data")
def rec_truncated() -> bytes:
    size = struct.unpack_from("<i", bam_record(b"last"))[0]
    return bam(good_records(2) + bam_record(b"last", block_size=size + 50))


@case("block_size 20 (< 32) on record 2")
def rec_block_size_below_32() -> bytes:
    return bam(good_records(1) + bam_record(b"x", block_size=20) + good_records(1, 5))


@case("l_read_name 0")
def rec_l_read_name_zero() -> bytes:
    return bam(good_records(1) + bam_record(l_qname=0, raw_qname=b""))


@case("read name without its NUL")
def rec_qname_without_nul() -> bytes:
    return bam(good_records(1) + bam_record(raw_qname=b"abcd") + good_records(1, 5))


@case("read name 'ab\\0cd' (a NUL inside)")
def rec_qname_inner_nul() -> bytes:
    return bam(good_records(1) + bam_record(raw_qname=b"ab\x00cd\x00") + good_records(1, 5))


@case("read name holding a TAB")
def rec_qname_tab() -> bytes:
    return bam(bam_record(b"r\t1") + good_records(1, 5))


@case("read name holding a TAB, in a chunk htslib formats (a B:f tag follows)")
def rec_qname_tab_htslib_path() -> bytes:
    records = bam_record(b"r\t1") + bam_record(b"f", tags=tag_array(b"XF", "f", [0.5]))
    return bam(records + good_records(1, 5))


@case("read name with a Latin-1 byte")
def rec_qname_latin1() -> bytes:
    return bam(bam_record(b"caf\xe9") + good_records(1, 5))


@case("n_cigar_op 65535 in a record that has 1 op")
def rec_n_cigar_overflow() -> bytes:
    return bam(good_records(1) + bam_record(b"x", n_cigar=0xFFFF))


@case("l_seq negative (-4)")
def rec_l_seq_negative() -> bytes:
    return bam(good_records(1) + bam_record(b"x", l_seq=-4))


@case("l_seq 0x7fffffff in a small record")
def rec_l_seq_huge() -> bytes:
    return bam(good_records(1) + bam_record(b"x", l_seq=0x7FFFFFFF))


@case("tid 5 with one reference")
def rec_tid_out_of_range() -> bytes:
    return bam(good_records(1) + bam_record(b"x", tid=5))


@case("tid -2")
def rec_tid_below_minus_one() -> bytes:
    return bam(good_records(1) + bam_record(b"x", tid=-2))


@case("mate tid 7 with one reference")
def rec_mtid_out_of_range() -> bytes:
    return bam(good_records(1) + bam_record(b"x", mtid=7, mpos=3))


@case("CIGAR op codes 9..15 (B and undefined)")
def rec_cigar_op_invalid() -> bytes:
    return bam(
        good_records(1) + bam_record(b"x", cigar=[4 << 4] + [1 << 4 | c for c in range(9, 16)])
    )


@case("CIGAR 3M for a 4-base sequence (mapped)")
def rec_cigar_seq_mismatch() -> bytes:
    return bam(good_records(1) + bam_record(b"x", cigar="3M"))


@case("POS -5 and PNEXT -9")
def rec_pos_negative() -> bytes:
    return bam(good_records(1) + bam_record(b"x", pos=-5, mpos=-9, mtid=0))


@case("first op 4S of a 4-base read (htslib's CG-tag convention) without a CG tag")
def rec_cigar_cg_placeholder() -> bytes:
    return bam(good_records(1) + bam_record(b"x", cigar=[4 << 4 | 4, 1 << 4 | 3]))


# --- tags ---------------------------------------------------------------------------------------
def _tagged(tags: bytes) -> bytes:
    return bam(good_records(1) + bam_record(b"x", tags=tags) + good_records(1, 5))


@case("tag of invalid type '?'")
def tag_type_invalid() -> bytes:
    return _tagged(b"XX?abcd")


@case("tag key with a byte that is not UTF-8 (0xE9 'Z')")
def tag_key_latin1() -> bytes:
    return _tagged(tag_text(b"\xe9Z", b"v"))


@case("tag key holding a TAB")
def tag_key_tab() -> bytes:
    return _tagged(tag_text(b"X\t", b"v"))


@case("Z tag with a Latin-1 byte ('caf\\xe9')")
def tag_z_latin1() -> bytes:
    return _tagged(tag_text(b"XZ", b"caf\xe9"))


@case("Z tag holding the escape character U+F7E9 itself, as UTF-8")
def tag_z_escape_lookalike() -> bytes:
    return _tagged(tag_text(b"XZ", "\uf7e9".encode()))


@case("A tag with byte 0xE9")
def tag_a_high() -> bytes:
    return _tagged(tag_char(b"XA", b"\xe9"))


@case("A tag with byte 0 (NUL)")
def tag_a_nul() -> bytes:
    return _tagged(tag_char(b"XA", b"\x00"))


@case("Z tag whose NUL is missing (the record's last tag)")
def tag_z_without_nul() -> bytes:
    return _tagged(b"XZZabc")


@case("H tag with non-hex text of odd length")
def tag_h_invalid() -> bytes:
    return _tagged(tag_text(b"XH", b"XYZ", b"H"))


@case("B:I array claiming 0xFFFFFFFF elements")
def tag_b_huge_count() -> bytes:
    return _tagged(tag_array(b"XB", "I", [1, 2], count=0xFFFFFFFF))


@case("B array of invalid subtype 'x'")
def tag_b_invalid_subtype() -> bytes:
    return _tagged(b"XBBx" + struct.pack("<I", 2) + b"\x01\x02")


@case("3 stray bytes after the last tag (htslib ignores a tail of fewer than 4)")
def tag_tail_3_bytes() -> bytes:
    return _tagged(tag_int(b"NM", 1) + b"XY")


@case("i tag with only 2 value bytes (the record ends)")
def tag_i_truncated() -> bytes:
    return _tagged(b"XIi\x01\x02")


# --- QUAL and statistics ------------------------------------------------------------------------
@case("QUAL bytes 93..100 (Phred 94+ print above '~')")
def qual_phred_94_plus() -> bytes:
    return bam(bam_record(b"q", seq="ACGTACGT", cigar="8M", qual=bytes(range(93, 101))))


@case("QUAL byte 232 (prints as a TAB)")
def qual_tab() -> bytes:
    return bam(bam_record(b"q", qual=bytes([30, 232, 30, 30]), tags=tag_int(b"NM", 1)))


@case("QUAL 0xFF at the first base only (htslib prints '*')")
def qual_ff_first_only() -> bytes:
    return bam(bam_record(b"q", qual=bytes([0xFF, 30, 30, 30])))


@case("QUAL 0xFF at a later base only (prints ' ')")
def qual_ff_later() -> bytes:
    return bam(bam_record(b"q", qual=bytes([30, 0xFF, 30, 30])))


@case("a one-base read of Phred 9: SAM prints its QUAL as '*'")
def qual_one_base_phred9() -> bytes:
    return bam(
        bam_record(b"q", seq="A", cigar="1M", qual=bytes([9]))
        + bam_record(b"p", seq="A", cigar="1M", qual=bytes([30]))
    )


@case("two NM tags (NM:i:1 then NM:i:5): samtools takes the first")
def nm_two_tags() -> bytes:
    return bam(bam_record(b"n", tags=tag_int(b"NM", 1) + tag_int(b"NM", 5)))


@case("NM:Z:abc first, then NM:i:5: samtools reads the first, as 0")
def nm_z_then_i() -> bytes:
    return bam(bam_record(b"n", tags=tag_text(b"NM", b"abc") + tag_int(b"NM", 5)))


@case("no NM tag; a Z tag whose text is 'a<TAB>NM:i:99'")
def nm_only_inside_z_text() -> bytes:
    return bam(bam_record(b"n", tags=tag_text(b"XZ", b"a\tNM:i:99")))


@case("NM:i:-3 (samtools sums NM unsigned: its error rate is 4.6e+18)")
def nm_negative() -> bytes:
    return bam(bam_record(b"n", tags=tag_int(b"NM", -3)))


@case("NM as a B array")
def nm_b_array() -> bytes:
    return bam(bam_record(b"n", tags=tag_array(b"NM", "C", [1, 2])))


@case("every one of the 4096 FLAG values once")
def all_flags_bam() -> bytes:
    return bam(b"".join(bam_record(f"f{f}".encode(), flag=f, mtid=0, mpos=20) for f in range(4096)))


def _cram(folder: Path, name: str, source: bytes, suffix: str) -> Path:
    """``name``.cram of the SAM or BAM file ``source`` (``suffix``), records on chr1, its
    reference ``name``.fa beside it."""
    sequence = "ACGT" * 250
    fasta = folder / f"{name}.fa"
    lines = "\n".join(sequence[i : i + 60] for i in range(0, 1000, 60))
    fasta.write_text(f">chr1\n{lines}\n")
    pysam.faidx(str(fasta))
    written = folder / f"{name}{suffix}"
    written.write_bytes(source)
    path = folder / f"{name}.cram"
    pysam.view("-C", "-T", str(fasta), "-o", str(path), str(written), catch_stdout=False)
    written.unlink()
    return path


@case(
    "every one of the 4096 FLAG values once, as CRAM",
    reading={"reference": "all-flags-cram.fa"},  # beside the file
)
def all_flags_cram(folder: Path) -> Path:
    records = "".join(f"f{f}\t{f}\tchr1\t1\t60\t4M\t=\t21\t0\tACGT\tIIII\n" for f in range(4096))
    sam = "@HD\tVN:1.6\n@SQ\tSN:chr1\tLN:1000\n" + records
    return _cram(folder, "all-flags-cram", sam.encode(), ".sam")


@case(
    "a one-base read of Phred 9 (QUAL printed '*'), as CRAM",
    reading={"reference": "qual-one-base-phred9-cram.fa"},
)
def qual_one_base_phred9_cram(folder: Path) -> Path:
    return _cram(folder, "qual-one-base-phred9-cram", qual_one_base_phred9(), ".bam")


def write_all(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    return [hostile.build(folder) for hostile in CASES.values()]


if __name__ == "__main__":
    for written in write_all(Path(sys.argv[1])):
        sys.stdout.write(f"{written}\n")
