"""Reading BAM, CRAM and SAM files into Arrow record batches. The only module that uses pysam.

Each record is rendered by htslib's own SAM formatter (``AlignedSegment.to_string``, the code
``samtools view`` runs) and the text of a whole chunk is split into typed columns with Arrow
compute kernels. Going through the SAM text keeps the ingest lossless by construction: every tag
keeps its type, its order and the exact text samtools prints for it (float formatting, ``B``
arrays), and the only per-record Python work is one call.

Coordinates are stored as SAM prints them: ``pos`` and ``pnext`` are 1-based, 0 meaning none.
"""

import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pysam

SAM_COLUMNS = ("qname", "flag", "rname", "pos", "mapq", "cigar", "rnext", "pnext", "tlen", "seq", "qual")
TAG_TYPE = pa.struct([("tag", pa.string()), ("type", pa.string()), ("value", pa.string())])
READS_SCHEMA = pa.schema(
    [
        ("rec_no", pa.int64()),
        ("qname", pa.string()),
        ("flag", pa.int32()),
        ("rname", pa.string()),
        ("pos", pa.int64()),
        ("mapq", pa.int32()),
        ("cigar", pa.string()),
        ("rnext", pa.string()),
        ("pnext", pa.int64()),
        ("tlen", pa.int64()),
        ("seq", pa.string()),
        ("qual", pa.string()),
        ("tags", pa.list_(TAG_TYPE)),
    ]
)
_TAG_PREFIX_LENGTH = len("NM:i:")
logger = logging.getLogger(__name__)


class AlignmentReadError(RuntimeError):
    """An alignment file that pysam/htslib cannot read, with the file named in the message."""

    def __init__(self, path: Path, cause: str):
        super().__init__(f"Cannot read alignment file {path}: {cause}")
        self.path = path
        self.cause = cause


@dataclass(frozen=True)
class ReaderOptions:
    """How to open files: CRAM reference, htslib format options, records per Arrow batch."""

    reference: str | None = None
    format_options: Sequence[str] = ()
    chunk_size: int = 10_000


@dataclass(frozen=True)
class AlignmentHeader:
    """What is known after opening a file: its format and its header as samtools prints it."""

    path: Path
    format: str
    text: str


def _forbid_reference_downloads() -> None:
    """htslib fetches unknown CRAM references from the EBI server unless REF_PATH says otherwise.

    Runs must never touch the network, so a missing reference fails fast instead.
    """
    os.environ.setdefault("REF_PATH", "/nonexistent-bam-assets-ref-path/%s")


def _open(path: Path, options: ReaderOptions) -> pysam.AlignmentFile:
    """Opens any of BAM, CRAM or SAM; the reference only applies to CRAM (as ``samtools -T``
    would otherwise add its contigs to a SAM header without @SQ lines)."""
    _forbid_reference_downloads()
    if path.is_dir():
        raise AlignmentReadError(path, "it is a directory, not an alignment file")
    if not path.exists():
        raise AlignmentReadError(path, "no such file")
    if path.stat().st_size == 0:
        raise AlignmentReadError(path, "the file is empty (0 bytes)")
    format_options = [option.encode() for option in options.format_options]
    try:
        handle = pysam.AlignmentFile(str(path), "r", check_sq=False, format_options=format_options)
        if handle.is_cram and options.reference:
            handle.close()
            handle = pysam.AlignmentFile(
                str(path),
                "r",
                check_sq=False,
                reference_filename=options.reference,
                format_options=format_options,
            )
        return handle
    except (OSError, ValueError) as error:
        raise AlignmentReadError(path, str(error) or type(error).__name__) from error


def _header_text(path: Path, file_format: str) -> str:
    """The header exactly as ``samtools view -H --no-PG`` prints it (htslib normalises the text).

    No reference is passed: the header never needs one.
    """
    try:
        return pysam.view("-H", "--no-PG", str(path))
    except pysam.SamtoolsError as error:
        raise AlignmentReadError(
            path, f"samtools cannot read the {file_format} header: {error}"
        ) from error


def _format_of(handle: pysam.AlignmentFile) -> str:
    if handle.is_cram:
        return "CRAM"
    if handle.is_bam:
        return "BAM"
    return "SAM"


def read_header(path: Path, options: ReaderOptions) -> AlignmentHeader:
    """Opens ``path`` far enough to know its format and header; raises AlignmentReadError."""
    with _open(path, options) as handle:
        file_format = _format_of(handle)
    return AlignmentHeader(path=path, format=file_format, text=_header_text(path, file_format))


def sam_lines_to_batch(lines: list[str], first_rec_no: int) -> pa.RecordBatch:
    """Turns SAM record lines (no trailing newline) into a batch of ``READS_SCHEMA``."""
    fields = pc.split_pattern(pa.array(lines, pa.string()), "\t")
    columns: list[pa.Array] = [pa.array(range(first_rec_no, first_rec_no + len(lines)), pa.int64())]
    for index, name in enumerate(SAM_COLUMNS):
        column = pc.list_element(fields, index)
        target = READS_SCHEMA.field(name).type
        columns.append(column if target == pa.string() else pc.cast(column, target))
    tag_lists = pc.list_slice(fields, len(SAM_COLUMNS))
    tag_texts = tag_lists.flatten()
    tags = pa.StructArray.from_arrays(
        [
            pc.utf8_slice_codeunits(tag_texts, 0, 2),
            pc.utf8_slice_codeunits(tag_texts, 3, 4),
            pc.utf8_slice_codeunits(tag_texts, _TAG_PREFIX_LENGTH, 1 << 62),
        ],
        fields=list(TAG_TYPE),
    )
    offsets = pc.subtract(tag_lists.offsets, tag_lists.offsets[0])
    columns.append(pa.ListArray.from_arrays(offsets, tags, type=READS_SCHEMA.field("tags").type))
    return pa.RecordBatch.from_arrays(columns, schema=READS_SCHEMA)


def iter_read_batches(path: Path, options: ReaderOptions) -> Iterator[pa.RecordBatch]:
    """Yields the records of ``path`` in file order, ``options.chunk_size`` at a time.

    Only one chunk of records exists in memory at once. Decoding errors (truncated or corrupt
    blocks, malformed SAM lines, invalid tags) raise AlignmentReadError naming the file and the
    record number reached.
    """
    rec_no = 0
    lines: list[str] = []
    handle = _open(path, options)
    try:
        records = handle.fetch(until_eof=True)
        while True:
            try:
                for record in records:
                    lines.append(record.to_string())
                    if len(lines) == options.chunk_size:
                        break
                else:
                    break
            except (OSError, ValueError) as error:
                raise AlignmentReadError(
                    path, f"{error or type(error).__name__} (after record {rec_no + len(lines)})"
                ) from error
            yield sam_lines_to_batch(lines, rec_no)
            rec_no += len(lines)
            lines = []
        if lines:
            yield sam_lines_to_batch(lines, rec_no)
    finally:
        _close_quietly(handle)


def _close_quietly(handle: pysam.AlignmentFile) -> None:
    """Closes ``handle``; after a decoding error htslib's close reports a stale errno, which must
    not hide the error that is already being raised."""
    try:
        handle.close()
    except OSError:
        logger.debug("Ignoring an error while closing %s", handle.filename, exc_info=True)
