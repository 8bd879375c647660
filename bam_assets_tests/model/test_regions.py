"""Regions read as htslib's hts_parse_region reads them (1-based, closed), and BED lines as
samtools' bed_read reads them (0-based, half-open in the file). Whether the records they select
are samtools' is tested against samtools itself in orchestration/test_export.py."""

import pytest

from bam_assets.model.regions import (
    POS_MAX,
    Region,
    RegionError,
    parse_bed,
    parse_decimal,
    parse_region,
    parse_regions,
)
from bam_assets.model.sam_header import reference_names

HEADER = (
    "@HD\tVN:1.6\n@SQ\tSN:chr1\tLN:1000\tAN:1,one\n@SQ\tSN:chrA\tLN:50\n"
    "@SQ\tSN:chrA:1-100\tLN:70\n@SQ\tSN:HLA-A*01:01\tLN:90\n"
)
NAMES = reference_names(HEADER)


def test_reference_names_include_alternative_names():
    assert NAMES == {
        "chr1": "chr1",
        "1": "chr1",
        "one": "chr1",
        "chrA": "chrA",
        "chrA:1-100": "chrA:1-100",
        "HLA-A*01:01": "HLA-A*01:01",
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("chr1", Region("chr1")),
        ("one", Region("chr1")),
        ("chr1:100", Region("chr1", 100)),
        ("chr1:100-", Region("chr1", 100)),
        ("chr1:100-200", Region("chr1", 100, 200)),
        ("chr1:100-100", Region("chr1", 100, 100)),
        ("chr1:-200", Region("chr1", 1, 200)),
        ("chr1:0-200", Region("chr1", 1, 200)),
        ("chr1:0", Region("chr1")),
        ("chr1:", Region("chr1")),
        ("chr1:1,000-2,000", Region("chr1", 1000, 2000)),
        ("chr1:1k-2.5k", Region("chr1", 1000, 2500)),
        ("chr1:1e3-2E3", Region("chr1", 1000, 2000)),
        ("chr1:100-,", Region("chr1", 100)),
        ("HLA-A*01:01", Region("HLA-A*01:01")),
        ("HLA-A*01:01:5-9", Region("HLA-A*01:01", 5, 9)),
        ("{chrA:1-100}", Region("chrA:1-100")),
        ("{chrA}:1-100", Region("chrA", 1, 100)),
        ("*", Region("*")),
    ],
)
def test_regions_parse_as_htslib_parses_them(text, expected):
    assert parse_region(text, NAMES) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("chrZ", "unknown reference name 'chrZ'"),
        ("chrZ:1-10", "unknown reference name 'chrZ'"),
        ("chr1:200-100", "the range ends before it starts"),
        ("chr1:-5-10", "coordinates must be > 0"),
        ("chr1:10-20x", "unexpected 'x' after the range"),
        ("chr1:abc", "unexpected 'abc' after the range"),
        ("chrA:1-100", "is ambiguous: write {chrA:1-100} for the reference, or {chrA}:1-100"),
        ("{chrA:1-100", "mismatching braces"),
    ],
)
def test_bad_regions_are_refused_in_words(text, message):
    with pytest.raises(RegionError, match=message.replace("{", r"\{").replace("}", r"\}")):
        parse_region(text, NAMES)


def test_a_file_without_references_only_has_unplaced_records():
    assert parse_region("*", {}) == Region("*")
    with pytest.raises(RegionError, match=r"no reference sequences \(no @SQ lines\)"):
        parse_region("chr1", {})


def test_dot_means_every_record():
    assert parse_regions(["chr1:5-6", "."], NAMES) == ()
    assert parse_regions(["chr1:5-6", "*"], NAMES) == (Region("chr1", 5, 6), Region("*"))


def test_decimals_follow_hts_parse_decimal():
    assert parse_decimal("1,234,567xyz") == (1234567, "xyz")
    assert parse_decimal(" 2.75k-") == (2750, "-")
    assert parse_decimal("-12") == (-12, "")
    assert parse_decimal("x") == (0, "x")
    assert Region("chr1", 5, POS_MAX).end == POS_MAX


def test_bed_lines_are_read_as_samtools_reads_them():
    text = (
        "# a comment\ntrack name=t\nbrowser position chr1\n\n"
        "chr1\t99\t200\textra fields\n  chr2 5 5\nchr3\t7\nchrX 10 20 30\n"
    )
    assert parse_bed(text, "t.bed") == (
        Region("chr1", 100, 200),
        Region("chr2", 6, 5),  # empty: matches a record spanning the point between 5 and 6
        Region("chr3", 7, 7),  # name and 1-based position, as in a VCF
        Region("chrX", 11, 20),
    )


@pytest.mark.parametrize("line", ["chr1\t200\t100", "chr1", "chr1 0", "chr1\tx\t5"])
def test_bad_bed_lines_name_their_line(line):
    with pytest.raises(RegionError, match="BED file t.bed, line 2"):
        parse_bed(f"chr1\t1\t2\n{line}\n", "t.bed")
