"""BED files as samtools -L reads them: plain or gzip-compressed; unreadable ones in words."""

import gzip
from pathlib import Path

import pytest

from bam_assets.model.regions import Region, RegionError
from bam_assets.reading.bed import read_bed


def test_plain_and_gzipped_bed_files_read_the_same(tmp_path: Path):
    text = "chr1\t0\t100\nchr2\t5\t6\n"
    (tmp_path / "t.bed").write_text(text)
    (tmp_path / "t.bed.gz").write_bytes(gzip.compress(text.encode()))
    expected = (Region("chr1", 1, 100), Region("chr2", 6, 6))
    assert read_bed(tmp_path / "t.bed") == read_bed(tmp_path / "t.bed.gz") == expected


def test_a_missing_or_binary_file_is_refused_in_words(tmp_path: Path):
    with pytest.raises(RegionError, match="cannot read BED file .*missing.bed"):
        read_bed(tmp_path / "missing.bed")
    (tmp_path / "binary.bed").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(RegionError, match="cannot read BED file"):
        read_bed(tmp_path / "binary.bed")
