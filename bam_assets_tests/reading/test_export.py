"""Writing records out: SAM as stored, BAM and CRAM by htslib from the same text; a file appears
only whole, and an output that cannot be written is refused before anything is."""

from pathlib import Path

import pytest

from bam_assets.reading.export import OutputError, output_format, write_alignments
from bam_assets_tests.helpers import REAL_DATA, samtools_view

BTAG = REAL_DATA / "pysam_example_btag.sam"


def records() -> tuple[str, list[str]]:
    return samtools_view(BTAG, "-H"), samtools_view(BTAG).splitlines()


@pytest.mark.parametrize(
    ("path", "requested", "expected"),
    [
        ("out.bam", None, "bam"),
        ("OUT.CRAM", None, "cram"),
        ("out.sam", None, "sam"),
        ("out.txt", None, "sam"),
        (None, None, "sam"),
        ("out.sam", "BAM", "bam"),
        (None, "cram", "cram"),
    ],
)
def test_the_format_is_asked_for_or_named_by_the_extension(path, requested, expected):
    assert output_format(path, requested) == expected


def test_an_unknown_format_is_refused():
    with pytest.raises(OutputError, match="unknown output format 'vcf'"):
        output_format("out.bam", "vcf")


@pytest.mark.parametrize("file_format", ["sam", "bam"])
def test_records_and_header_are_written(tmp_path: Path, file_format: str):
    header, lines = records()
    out = tmp_path / f"out.{file_format}"
    assert write_alignments(out, file_format, header, [lines[:2], lines[2:]], True) == len(lines)
    assert samtools_view(out, "-h") == samtools_view(BTAG, "-h")
    assert [path.name for path in tmp_path.iterdir()] == [out.name]


@pytest.mark.parametrize("file_format", ["sam", "bam"])
def test_a_failure_half_way_leaves_no_file_and_an_old_one_untouched(tmp_path, file_format):
    header, lines = records()

    def failing():
        yield lines[:2]
        raise RuntimeError("the store went away")

    fresh, existing = tmp_path / f"fresh.{file_format}", tmp_path / f"old.{file_format}"
    existing.write_text("previous contents")
    for out in (fresh, existing):
        with pytest.raises(RuntimeError, match="the store went away"):
            write_alignments(out, file_format, header, failing())
    assert sorted(path.name for path in tmp_path.iterdir()) == [existing.name]
    assert existing.read_text() == "previous contents"


def test_cram_without_a_reference_and_a_missing_folder_are_refused(tmp_path: Path):
    header, lines = records()
    with pytest.raises(OutputError, match="CRAM output needs the reference FASTA"):
        write_alignments(tmp_path / "out.cram", "cram", header, [lines])
    with pytest.raises(OutputError, match="CRAM reference .*nope.fa does not exist"):
        write_alignments(tmp_path / "out.cram", "cram", header, [lines], reference="nope.fa")
    with pytest.raises(OutputError, match="no such folder"):
        write_alignments(tmp_path / "no" / "out.bam", "bam", header, [lines])
    assert list(tmp_path.iterdir()) == []
