"""Reading BAM, CRAM and SAM files into Arrow record batches of the reads schema.

CRAM and SAM records are rendered by htslib's own SAM formatter (``AlignedSegment.to_string``,
the code ``samtools view`` runs) and the text of a whole chunk is split into typed columns
(``sam_text``). Going through the SAM text keeps the ingest lossless by construction: every tag
keeps its type, its order and the exact text samtools prints for it (float formatting, ``B``
arrays), and the only per-record Python work is one call. BAM records are decoded a chunk at a
time by ``bam.decoder`` into the same text, with htslib taking over wherever it stops.
"""

import errno
import logging
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pysam

from bam_assets.model.sam_bytes import text_from_bytes, text_from_htslib
from bam_assets.model.source_stream import with_bytes_read
from bam_assets.reading.bam.decoder import NeedsHtslib, decode_chunk, iter_record_chunks
from bam_assets.reading.errors import AlignmentReadError
from bam_assets.reading.failures import (
    decode_failure_cause,
    open_failure_cause,
    plain_gzip_cause,
)
from bam_assets.reading.htslib_records import UnsplittableRecord, records_batch
from bam_assets.reading.options import ReaderOptions
from bam_assets.reading.references import forbid_reference_downloads
from bam_assets.reading.sam_text import reads_batch

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AlignmentHeader:
    """What is known after opening a file: its format, its header as samtools prints it, and its
    references as htslib holds them (for BAM the binary list, which can differ from the text's
    @SQ lines; names escaped as ``model.sam_bytes`` escapes them)."""

    path: Path
    format: str
    text: str
    reference_names: tuple[str, ...]
    reference_lengths: tuple[int, ...]


_CRAM_ONLY_FORMAT_OPTIONS = {"decode_md", "reference", "required_fields", "ignore_md5"}


def _check_path(path: Path) -> None:
    """Refuses, in plain words, what is not a readable, non-empty regular file."""
    try:
        status = path.stat()
    except OSError as error:
        if error.errno == errno.ELOOP:
            cause = "it is a symlink loop (the link leads back to itself)"
        elif error.errno == errno.ENOENT and path.is_symlink():
            cause = f"it is a dangling symlink to {os.readlink(path)}"
        elif error.errno == errno.ENOENT:
            cause = "no such file"
        elif error.errno == errno.EACCES:
            cause = "permission denied"
        else:
            cause = error.strerror or type(error).__name__
        raise AlignmentReadError(path, cause) from error
    if stat.S_ISDIR(status.st_mode):
        raise AlignmentReadError(path, "it is a directory, not an alignment file")
    if not stat.S_ISREG(status.st_mode):
        raise AlignmentReadError(path, "it is not a regular file")
    if status.st_size == 0:
        raise AlignmentReadError(path, "the file is empty (0 bytes), not a BAM/CRAM/SAM file")


def _open(path: Path, options: ReaderOptions) -> pysam.AlignmentFile:
    """Opens any of BAM, CRAM or SAM; the reference only applies to CRAM (as ``samtools -T``
    would otherwise add its contigs to a SAM header without @SQ lines).

    Never with htslib decompression threads (pysam's ``threads=``). pysam can only attach them
    when it opens a file, before the header is read, and htslib's threaded BGZF reader (bgzf.c,
    ``bgzf_mt_reader``, 1.24) exits on a damaged block header, a block size below 18 or a short
    block without telling the main thread: ``bgzf_check_EOF`` (which pysam's open and
    ``bam_hdr_read`` call) and ``bgzf_seek`` then wait on a condition variable forever. The
    reader thread gets to a bad block in the first few before the main thread asks, so a damaged
    100 KB BAM hung 3 opens in 8, and the process ignored SIGTERM: its main thread was inside
    htslib, where no Python signal handler runs. samtools reads the header single-threaded and
    attaches its pool afterwards; BAM blocks are inflated by the bulk decoder anyway.
    """
    forbid_reference_downloads()
    _check_path(path)
    # Text that is not UTF-8 (samtools prints it as it is) reaches Python as lone surrogates,
    # which text_from_htslib turns into the store's escapes; pysam's default raises.
    pysam.set_encoding_error_handler("surrogateescape")
    handle = _open_with(path, options)
    if handle.is_cram and options.reference:
        handle.close()
        if not Path(options.reference).is_file():
            raise AlignmentReadError(
                path, f"the configured CRAM reference {options.reference} does not exist"
            )
        handle = _open_with(path, options, reference_filename=options.reference)
    return handle


def _open_with(path: Path, options: ReaderOptions, **arguments) -> pysam.AlignmentFile:
    try:
        return pysam.AlignmentFile(
            str(path),
            "r",
            check_sq=False,
            format_options=[option.encode() for option in options.format_options],
            ignore_truncation=options.allow_missing_eof,
            **arguments,
        )
    except (OSError, ValueError) as error:
        raise AlignmentReadError(path, open_failure_cause(path, error)) from error
    except NotImplementedError as error:  # pysam tell()s a BAM while opening it
        raise AlignmentReadError(path, plain_gzip_cause(error)) from error


def _header_text(path: Path, file_format: str) -> str:
    """The header exactly as ``samtools view -H --no-PG`` prints it (htslib normalises the text),
    bytes that are not UTF-8 escaped (``model.sam_bytes``).

    No reference is passed: the header never needs one.
    """
    try:
        text = pysam.view("-H", "--no-PG", str(path))
    except pysam.SamtoolsError as error:
        raise AlignmentReadError(
            path, f"samtools cannot read the {file_format} header: {error}"
        ) from error
    # pysam hands back bytes when samtools printed something that is not UTF-8
    return text_from_bytes(text if isinstance(text, bytes) else text.encode())


def _format_of(handle: pysam.AlignmentFile) -> str:
    if handle.is_cram:
        return "CRAM"
    if handle.is_bam:
        return "BAM"
    return "SAM"


def read_header(path: Path, options: ReaderOptions) -> AlignmentHeader:
    """Opens ``path`` far enough to know its format and header; raises AlignmentReadError.

    For CRAM the first record is decoded too, so a missing reference fails now, before any
    transaction starts, rather than in the middle of the stream.
    """
    handle = _open(path, options)
    try:
        file_format = _format_of(handle)
        names = tuple(text_from_htslib(name) for name in handle.references)
        lengths = tuple(handle.lengths)
        if file_format == "CRAM":
            try:
                next(iter(handle.fetch(until_eof=True)), None)
            except (OSError, ValueError) as error:
                raise AlignmentReadError(
                    path, decode_failure_cause(path, handle, options, error, 0, None, None)
                ) from error
    finally:
        _close_quietly(handle)
    return AlignmentHeader(path, file_format, _header_text(path, file_format), names, lengths)


def count_records(path: Path, options: ReaderOptions) -> int:
    """Number of records in ``path`` as ``samtools view -c`` counts them (no filters).

    The ``reads`` row-count check compares the stored partition with this number, so it runs
    samtools itself rather than the record loop the ingest uses.
    """
    forbid_reference_downloads()
    arguments = ["-c"]
    if options.reference:
        arguments += ["-T", options.reference]
    for option in options.format_options:
        arguments += ["--input-fmt-option", option]
    try:
        return int(pysam.view(*arguments, str(path)).strip())
    except pysam.SamtoolsError as error:
        raise AlignmentReadError(path, f"samtools view -c failed: {error}") from error


def iter_read_batches(path: Path, options: ReaderOptions) -> Iterator[pa.RecordBatch]:
    """Yields the records of ``path`` in file order, ``options.chunk_size`` at a time.

    Only one chunk of records exists in memory at once. Decoding errors (truncated or corrupt
    blocks, malformed SAM lines, invalid tags, a missing CRAM reference) raise AlignmentReadError
    naming the file, the cause in words and the record number reached.

    BAM files (unless a format option applies to BAM) are decoded in bulk by ``bam.decoder`` until
    it meets something it leaves to htslib; from that chunk on, htslib's formatter takes over.
    """
    # Every Arrow buffer of a chunk (the bulk decoder's kernels, the SAM split, the batch itself)
    # comes from jemalloc, process-wide. Measured over 2.9M reads on one CPU, the default
    # (mimalloc) pool kept freed chunks mapped (+40 MB of peak RSS) and glibc's heap fragmented
    # between chunks (+55 MB, and 1 s slower); jemalloc's size classes reuse the same memory chunk
    # after chunk.
    pa.set_memory_pool(pa.jemalloc_memory_pool())
    handle = _open(path, options)
    if not handle.is_bam or not options.bulk_bam_decoding or _options_for_bam(options):
        yield from _formatted_batches(path, options, handle)
        return
    _close_quietly(handle)
    try:
        for voffset, rec_no, raw, count, names in iter_record_chunks(path, options.chunk_size):
            decoded = decode_chunk(voffset, rec_no, raw, count, names)
            batch = reads_batch(rec_no, decoded.columns, decoded.end_positions)
            yield with_bytes_read(batch, voffset >> 16)  # where the chunk starts
    except NeedsHtslib as stop:
        logger.info("htslib takes over %s from record %d: %s", path, stop.rec_no + 1, stop.reason)
        handle = _open(path, options)
        if stop.virtual_offset:
            handle.seek(stop.virtual_offset)
        yield from _formatted_batches(path, options, handle, stop.rec_no)


def _options_for_bam(options: ReaderOptions) -> list[str]:
    """The htslib format options that could change how a BAM file reads (a ``filter``
    expression, say); CRAM-only ones such as ``decode_md`` do not."""
    return [
        option
        for option in options.format_options
        if option.partition("=")[0] not in _CRAM_ONLY_FORMAT_OPTIONS
    ]


def _formatted_batches(
    path: Path, options: ReaderOptions, handle: pysam.AlignmentFile, rec_no: int = 0
) -> Iterator[pa.RecordBatch]:
    """Batches of the records from ``handle``'s position on, each rendered by htslib's SAM
    formatter; ``rec_no`` is the number of the first one. Closes ``handle``."""
    lines: list[str] = []
    records: list[pysam.AlignedSegment] = []
    try:
        # the text of BAM and CRAM records can be ambiguous (htslib_records); SAM's is not
        reference_names = None
        if handle.is_bam or handle.is_cram:
            reference_names = [n.encode("utf-8", "surrogateescape") for n in handle.references]
        # htslib cannot tell() the position in CRAM, nor in plain gzip (a gzipped SAM file)
        seekable = not handle.is_cram and handle.compression != "GZIP"
        iterator = handle.fetch(until_eof=True)
        while True:
            chunk_offset = handle.tell() if seekable else None
            record = None
            try:
                for record in iterator:
                    lines.append(text_from_htslib(record.to_string()))
                    records.append(record)
                    if len(lines) == options.chunk_size:
                        break
                else:
                    break
            except (OSError, ValueError) as error:
                cause = decode_failure_cause(
                    path,
                    handle,
                    options,
                    error,
                    rec_no + len(lines),
                    chunk_offset,
                    record,
                    len(lines),
                )
                raise AlignmentReadError(path, cause) from error
            yield with_bytes_read(
                _chunk_batch(path, lines, records, rec_no, reference_names), _bytes_read(handle)
            )
            rec_no += len(lines)
            lines = []
            records = []
        if lines:
            yield with_bytes_read(
                _chunk_batch(path, lines, records, rec_no, reference_names), _bytes_read(handle)
            )
    finally:
        _close_quietly(handle)


def _bytes_read(handle: pysam.AlignmentFile) -> int | None:
    """How far into the file ``handle`` has read, in file bytes: the compressed offset of a BGZF
    virtual offset (BAM, bgzipped SAM), the container offset of a CRAM, the byte of a SAM."""
    try:
        position = handle.tell()
    except (OSError, ValueError, NotImplementedError):
        return None
    return position >> 16 if handle.compression == "BGZF" else position


def _chunk_batch(
    path: Path,
    lines: list[str],
    records: list[pysam.AlignedSegment],
    rec_no: int,
    reference_names: list[bytes] | None,
) -> pa.RecordBatch:
    """``records_batch`` of one chunk, a refusal named with the file."""
    try:
        return records_batch(lines, records, rec_no, reference_names)
    except UnsplittableRecord as error:
        raise AlignmentReadError(path, str(error)) from error


def _close_quietly(handle: pysam.AlignmentFile) -> None:
    """Closes ``handle``; after a decoding error htslib's close reports a stale errno, which must
    not hide the error that is already being raised."""
    try:
        handle.close()
    except OSError:
        logger.debug("Ignoring an error while closing %s", handle.filename, exc_info=True)
