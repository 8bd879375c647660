"""The reader on its own: lossless SAM fields and tags, chunking, and errors naming the file.

SAM coordinates are 1-based (``pos``, ``pnext``), as ``samtools view`` prints them.
"""

import re
from pathlib import Path

import pyarrow as pa
import pysam
import pytest

from bam_assets.model.reads_schema import SAM_COLUMNS
from bam_assets.model.sam_bytes import bytes_from_text, text_from_bytes
from bam_assets.reading.errors import AlignmentReadError
from bam_assets.reading.options import ReaderOptions
from bam_assets.reading.reader import iter_read_batches, read_header
from bam_assets.reading.sam_text import first_nm, reads_batch, split_sam_lines
from bam_assets_tests.bam_bytes import (
    DEFAULT_TEXT,
    bam,
    bam_header,
    bam_record,
    tag_char,
    tag_text,
)
from bam_assets_tests.helpers import (
    CRAM_FORMAT_OPTIONS,
    CRAM_REFERENCE,
    REAL_DATA,
    REAL_FILES,
    samtools_view,
)

OPTIONS = ReaderOptions(reference=str(CRAM_REFERENCE), format_options=CRAM_FORMAT_OPTIONS)


def sam_lines_to_batch(
    lines: list[str], first_rec_no: int, end_positions: list[int | None]
) -> pa.RecordBatch:
    """A batch of SAM text lines, on references 0 and -1 (the ids come from records)."""
    columns = split_sam_lines(lines)
    ids = pa.array([-1 if row == "*" else 0 for row in columns["rname"].to_pylist()], pa.int32())
    columns |= {"ref_id": ids, "next_ref_id": ids, "nm": first_nm(columns["tags"])}
    return reads_batch(first_rec_no, columns, pa.array(end_positions, pa.int64()))


def test_sam_line_becomes_typed_columns_and_the_tags_text():
    line = (
        "r1\t99\tchr1\t100\t60\t5M\t=\t300\t205\tACGTA\tIIIII"
        "\tNM:i:1\tXF:f:0.5\tZB:B:s,-1,2\tMD:Z:2A:2"
    )
    batch = sam_lines_to_batch(
        [line, "r2\t4\t*\t0\t0\t*\t*\t0\t0\t*\t*"], first_rec_no=7, end_positions=[104, None]
    )
    rows = batch.to_pylist()
    assert rows[0]["nm"] == 1 and rows[1]["nm"] is None
    assert rows[0]["rec_no"] == 7 and rows[1]["rec_no"] == 8
    assert rows[0]["end_pos"] == 104 and rows[1]["end_pos"] is None
    assert (rows[0]["flag"], rows[0]["pos"], rows[0]["pnext"], rows[0]["tlen"]) == (
        99,
        100,
        300,
        205,
    )
    assert rows[0]["tags"] == "NM:i:1\tXF:f:0.5\tZB:B:s,-1,2\tMD:Z:2A:2"
    assert rows[1]["rname"] == "*" and rows[1]["seq"] == "*" and rows[1]["tags"] == ""


@pytest.mark.parametrize("name", REAL_FILES)
def test_real_file_batches_match_samtools_view(name: str):
    path = REAL_DATA / name
    options = ReaderOptions(
        reference=OPTIONS.reference, format_options=OPTIONS.format_options, chunk_size=1000
    )
    lines = []
    for batch in iter_read_batches(path, options):
        assert batch.num_rows <= 1000
        for row in batch.to_pylist():
            lines.append("\t".join(_sam_fields(row)) + "\n")
            assert row["end_pos"] == _end_from_cigar(row)
            assert row["qual_sum"] == (
                None if row["qual"] == "*" else sum(ord(c) - 33 for c in row["qual"])
            )
            assert row["gc_count"] == (
                None if row["seq"] == "*" else row["seq"].count("C") + row["seq"].count("G")
            )
    expected = samtools_view(path)
    assert "".join(lines) == expected
    assert read_header(path, OPTIONS).text == samtools_view(path, "-H")


def _sam_fields(row: dict) -> list[str]:
    """The SAM fields of a stored row, the tags text last when there is one."""
    return [str(row[column]) for column in SAM_COLUMNS] + ([row["tags"]] if row["tags"] else [])


def test_an_unplaced_record_has_no_end_even_if_htslib_computes_one():
    line = "r1\t0\t*\t0\t0\t5M\t*\t0\t0\tACGTA\tIIIII"
    batch = sam_lines_to_batch([line], first_rec_no=0, end_positions=[4])
    assert batch.column("end_pos").to_pylist() == [None]


def _end_from_cigar(row: dict) -> int | None:
    """1-based inclusive end from the CIGAR text, as samtools computes it (span 0 counts as 1)."""
    if row["flag"] & 0x4 or row["cigar"] == "*":
        return None
    span = sum(int(n) for n, op in re.findall(r"(\d+)([MIDNSHP=X])", row["cigar"]) if op in "MDN=X")
    return row["pos"] + max(span, 1) - 1


def test_chunks_number_records_consecutively(synthetic_bam: Path):
    batches = list(iter_read_batches(synthetic_bam, ReaderOptions(chunk_size=3000)))
    record_numbers = pa.concat_arrays([batch.column("rec_no") for batch in batches])
    assert record_numbers.to_pylist() == list(range(len(record_numbers)))
    assert [batch.num_rows for batch in batches[:-1]] == [3000] * (len(batches) - 1)


@pytest.mark.parametrize(
    ("content", "cause"),
    [
        (b"", "empty"),
        (None, "no such file"),
    ],
)
def test_unreadable_files_name_the_file_and_the_cause(tmp_path: Path, content, cause: str):
    path = tmp_path / "broken.bam"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(AlignmentReadError, match=cause) as raised:
        read_header(path, ReaderOptions())
    assert str(path) in str(raised.value)


def test_truncated_bam_fails_mid_stream_naming_the_file(tmp_path: Path, synthetic_bam: Path):
    truncated = tmp_path / "truncated.bam"
    data = synthetic_bam.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(AlignmentReadError) as raised:
        for _ in iter_read_batches(truncated, ReaderOptions(chunk_size=1000)):
            pass
    assert str(truncated) in str(raised.value)


def test_text_that_is_not_utf8_is_kept_byte_for_byte(tmp_path: Path):
    """samtools prints these bytes as they are; they are stored escaped (model.sam_bytes) and
    the quality sums count the bytes, as samtools stats does."""
    header = bam_header(DEFAULT_TEXT + b"@CO\tcaf\xe9\n")
    records = [
        bam_record(b"caf\xe9"),
        bam_record(b"z", tags=tag_text(b"XZ", b"caf\xe9") + tag_char(b"XA", b"\xe9")),
        bam_record(b"k", tags=tag_text(b"\xe9Z", b"v")),
        bam_record(b"q", seq="ACGTACGT", cigar="8M", qual=bytes(range(93, 101))),
        bam_record(b"u", tags=tag_text(b"XU", "\uf7e9 café".encode())),
    ]
    path = tmp_path / "latin1.bam"
    path.write_bytes(bam(b"".join(records), header))
    expected = pysam.view(str(path))
    assert isinstance(expected, bytes)  # samtools printed bytes that are not UTF-8
    assert read_header(path, ReaderOptions()).text == text_from_bytes(
        pysam.view("-H", "--no-PG", str(path))
    )
    for bulk in (True, False):
        rows = [
            row
            for batch in iter_read_batches(path, ReaderOptions(bulk_bam_decoding=bulk))
            for row in batch.to_pylist()
        ]
        lines = ["\t".join(_sam_fields(row)) for row in rows]
        assert b"".join(bytes_from_text(line) + b"\n" for line in lines) == expected
        assert rows[3]["qual_sum"] == sum(range(93, 101))
