"""BAM and CRAM records whose SAM text is ambiguous are stored with their true fields, on the bulk
path and on htslib's (``htslib_records``).

htslib prints a binary record's bytes as they are: a TAB inside a read name, a reference name or a
QUAL (byte 232) would shift the columns after it, and a one-base QUAL of Phred 9 prints ``*``.
Every case is read both ways and compared with what samtools prints; a ``B:f`` tag (which the bulk
decoder leaves to htslib) puts a record in a chunk that htslib formats.
"""

from pathlib import Path

import pysam
import pytest

from bam_assets.model.reads_schema import SAM_COLUMNS
from bam_assets.model.sam_bytes import bytes_from_text
from bam_assets.reading.options import ReaderOptions
from bam_assets.reading.reader import iter_read_batches
from bam_assets_tests.bam_bytes import (
    bam,
    bam_header,
    bam_record,
    good_records,
    tag_array,
    tag_char,
    tag_int,
    tag_text,
)

HTSLIB_CHUNK = bam_record(b"f", tags=tag_array(b"XF", "f", [0.5]))


def read(path: Path, bulk: bool) -> list[dict]:
    options = ReaderOptions(bulk_bam_decoding=bulk)
    return [row for batch in iter_read_batches(path, options) for row in batch.to_pylist()]


def sam_text(rows: list[dict]) -> bytes:
    fields = [
        [str(row[c]) for c in SAM_COLUMNS] + ([row["tags"]] if row["tags"] else []) for row in rows
    ]
    return b"".join(bytes_from_text("\t".join(line)) + b"\n" for line in fields)


def both_paths(path: Path) -> list[list[dict]]:
    """The rows of both paths, checked against samtools view."""
    expected = pysam.view("--no-PG", str(path))
    expected = expected if isinstance(expected, bytes) else expected.encode()
    results = []
    for bulk in (True, False):
        rows = read(path, bulk)
        assert sam_text(rows) == expected
        results.append(rows)
    return results


def test_a_tab_in_a_read_name_keeps_every_column(tmp_path: Path):
    """A contig named '1' makes the shifted split of 'a<TAB>4' type-check: it must not happen."""
    path = tmp_path / "tab.bam"
    header = bam_header(b"@HD\tVN:1.6\n", [(b"1", 1000)])
    path.write_bytes(bam(bam_record(b"a\t4", pos=4) + HTSLIB_CHUNK + good_records(1), header))
    for rows in both_paths(path):
        assert rows[0]["qname"] == "a\t4" and rows[0]["flag"] == 0 and rows[0]["pos"] == 5
        assert rows[0]["rname"] == "1" and rows[0]["cigar"] == "4M"


def test_a_tab_in_a_reference_name_keeps_every_column(tmp_path: Path):
    path = tmp_path / "tab_contig.bam"
    header = bam_header(b"@HD\tVN:1.6\n", [(b"chr\t1", 1000)])
    records = bam_record(b"x", mtid=0, mpos=9) + HTSLIB_CHUNK
    path.write_bytes(bam(records, header))
    for rows in both_paths(path):
        assert [row["rname"] for row in rows] == ["chr\t1", "chr\t1"]
        assert rows[0]["rnext"] == "=" and rows[0]["pnext"] == 10


def test_a_quality_byte_printed_as_a_tab_keeps_the_qual_and_the_tags(tmp_path: Path):
    """Byte 232 prints as chr((232 + 33) & 0xff), a TAB."""
    path = tmp_path / "qual_tab.bam"
    path.write_bytes(bam(bam_record(b"q", qual=bytes([30, 232, 30, 30]), tags=tag_int(b"NM", 1))))
    for rows in both_paths(path):
        assert rows[0]["qual"] == "?\t??" and rows[0]["tags"] == "NM:i:1"
        assert rows[0]["qual_sum"] == 30 + 232 + 30 + 30


def test_a_nul_inside_a_read_name_is_printed_whole(tmp_path: Path):
    path = tmp_path / "nul.bam"
    path.write_bytes(bam(bam_record(raw_qname=b"ab\x00cd\x00") + HTSLIB_CHUNK))
    for rows in both_paths(path):
        assert rows[0]["qname"] == "ab\x00cd"


@pytest.mark.parametrize("in_htslib_chunk", [False, True])
def test_quality_sums_are_the_bytes_samtools_stats_sums(tmp_path: Path, in_htslib_chunk: bool):
    """A one-base QUAL of Phred 9 prints '*' (chr(9 + 33)) and is no missing QUAL; 0xff after
    the first base prints ' ' (chr((255 + 33) & 0xff))."""
    records = [
        bam_record(b"phred9", seq="A", cigar="1M", qual=bytes([9])),
        bam_record(b"none", seq="A", cigar="1M", qual=b"\xff"),
        bam_record(b"later", qual=bytes([30, 0xFF, 30, 30])),
    ]
    path = tmp_path / "quals.bam"
    path.write_bytes(bam(b"".join(records) + (HTSLIB_CHUNK if in_htslib_chunk else b"")))
    for rows in both_paths(path):
        assert [row["qual"] for row in rows[:3]] == ["*", "*", "? ??"]
        assert [row["qual_sum"] for row in rows[:3]] == [9, None, 345]


def test_a_qual_whose_first_byte_only_is_0xff_keeps_its_sum_on_the_bulk_path(tmp_path: Path):
    """htslib prints '*' as soon as the first byte is 0xff; samtools stats sums every byte
    (average quality 86.2 here). The bulk decoder sums them.

    Decision: on htslib's path (a chunk htslib formats, CRAM, SAM) pysam hides every quality of
    such a record, so it reads as a missing QUAL (NULL, 255 per base in the statistics). htslib's
    own writers store a missing QUAL as all 0xff, and CRAM and SAM cannot hold this one, so only a
    hand-made BAM that also needs htslib for another record of the same chunk on shows it."""
    path = tmp_path / "ff_first.bam"
    path.write_bytes(bam(bam_record(b"q", qual=bytes([0xFF, 30, 30, 30]))))
    bulk, htslib = both_paths(path)
    assert bulk[0]["qual_sum"] == 255 + 90
    assert htslib[0]["qual_sum"] is None


@pytest.mark.parametrize(
    ("tags", "nm"),
    [
        (tag_int(b"NM", 1) + tag_int(b"NM", 5), 1),  # the first NM tag
        (tag_text(b"NM", b"abc") + tag_int(b"NM", 5), 0),  # first NM not an integer: 0
        (tag_text(b"XZ", b"a\tNM:i:99"), None),  # a Z tag's text is no tag
        (tag_text(b"RG", b"g\tNM:i:99") + tag_int(b"NM", 2, "C"), 2),  # behind a Z tag
        (tag_int(b"NM", -3, "c"), -3),
        (tag_int(b"NM", 4_000_000_000, "I"), 4_000_000_000),
        (tag_array(b"NM", "C", [1, 2]), 0),
        (tag_int(b"XS", 5) + tag_char(b"XA", b"\t") + tag_int(b"NM", 7), 7),
        (b"", None),
    ],
)
def test_nm_is_the_first_nm_tag_as_samtools_stats_reads_it(tmp_path: Path, tags: bytes, nm):
    """bam_aux_get finds the first NM tag; bam_aux2i gives its integer, or 0 for another type."""
    path = tmp_path / "nm.bam"
    path.write_bytes(bam(bam_record(b"n", tags=tags) + HTSLIB_CHUNK))
    for rows in both_paths(path):
        assert rows[0]["nm"] == nm


def test_reference_ids_are_the_records_whatever_the_names(tmp_path: Path):
    """Contigs named '*' and '=' print like 'unplaced' and 'same contig'; two share a name."""
    references = [(b"*", 1000), (b"=", 1000), (b"chr1", 1000), (b"chr1", 500)]
    records = [
        bam_record(b"a", flag=1, tid=0, pos=5, mtid=1, mpos=9),
        bam_record(b"b", flag=1, tid=1, pos=9, mtid=1, mpos=5),
        bam_record(b"c", tid=3, pos=1, mtid=2, mpos=1),
        bam_record(b"d", flag=4, tid=-1, pos=-1, cigar=[]),
    ]
    path = tmp_path / "names.bam"
    header = bam_header(b"@HD\tVN:1.6\n", references)
    path.write_bytes(bam(b"".join(records) + HTSLIB_CHUNK, header))
    for rows in both_paths(path):
        ids = [(row["ref_id"], row["next_ref_id"]) for row in rows[:4]]
        assert ids == [(0, 1), (1, 1), (3, 2), (-1, -1)]
        assert [row["rnext"] for row in rows[:3]] == ["=", "=", "chr1"]
