"""Reading BAM, CRAM and SAM files into Arrow record batches. The only module that uses pysam.

CRAM and SAM records are rendered by htslib's own SAM formatter (``AlignedSegment.to_string``,
the code ``samtools view`` runs) and the text of a whole chunk is split into typed columns with
Arrow compute kernels. Going through the SAM text keeps the ingest lossless by construction: every
tag keeps its type, its order and the exact text samtools prints for it (float formatting, ``B``
arrays), and the only per-record Python work is one call. BAM records are decoded a chunk at a
time by ``bam_decoder`` into the same text, with this path taking over wherever it stops.

Coordinates are stored as SAM prints them: ``pos`` and ``pnext`` are 1-based, 0 meaning none.
"""

import errno
import logging
import os
import re
import stat
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from queue import Full, Queue

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pysam

from bam_assets.arrow_numpy import int64_values, numpy_array
from bam_assets.bam_decoder import (
    BgzfBlockError,
    NeedsHtslib,
    decode_chunk,
    iter_record_chunks,
    read_bgzf_block,
)
from bam_assets.base_sums import gc_counts, quality_sums

SAM_COLUMNS = (
    "qname",
    "flag",
    "rname",
    "pos",
    "mapq",
    "cigar",
    "rnext",
    "pnext",
    "tlen",
    "seq",
    "qual",
)
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
        ("tags", pa.string()),
        ("end_pos", pa.int64()),
        ("qual_sum", pa.int64()),
        ("gc_count", pa.int64()),
    ]
)
# Every Arrow buffer of a chunk (the bulk decoder's kernels, the SAM split, the batch itself) comes
# from jemalloc. Measured over 2.9M reads on one CPU, the default (mimalloc) pool kept freed
# chunks mapped (+40 MB of peak RSS) and glibc's heap fragmented between chunks (+55 MB, and 1 s
# slower); jemalloc's size classes reuse the same memory chunk after chunk.
pa.set_memory_pool(pa.jemalloc_memory_pool())
logger = logging.getLogger(__name__)


class AlignmentReadError(RuntimeError):
    """An alignment file that pysam/htslib cannot read, with the file named in the message."""

    def __init__(self, path: Path, cause: str):
        super().__init__(f"Cannot read alignment file {path}: {cause}")
        self.path = path
        self.cause = cause


@dataclass(frozen=True)
class ReaderOptions:
    """How to open files: CRAM reference, htslib format options, records per Arrow batch and
    extra htslib threads inflating BGZF blocks (worth it with a second CPU).

    ``bulk_bam_decoding=False`` renders every BAM record with htslib's formatter, as SAM and CRAM
    are: slower, and what the bulk decoder is tested against.
    """

    reference: str | None = None
    format_options: Sequence[str] = ()
    chunk_size: int = 10_000
    decompression_threads: int = 0
    bulk_bam_decoding: bool = True


@dataclass(frozen=True)
class AlignmentHeader:
    """What is known after opening a file: its format and its header as samtools prints it."""

    path: Path
    format: str
    text: str


_CRAM_ONLY_FORMAT_OPTIONS = {"decode_md", "reference", "required_fields", "ignore_md5"}
_URL_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*$")
_NO_REF_PATH = "/nonexistent-bam-assets-ref-path/%s"


def _local_ref_path(value: str) -> str:
    """``REF_PATH`` without its URL entries (``http://…``, ``ftp://…``): local directories only.

    htslib splits REF_PATH on ``:`` but keeps ``scheme://host:port/…`` together; this does the
    same and drops those entries.
    """
    tokens = value.split(":")
    kept: list[str] = []
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if (
            index + 1 < len(tokens)
            and _URL_SCHEME.match(token)
            and tokens[index + 1].startswith("//")
        ):
            index += 2
            while index < len(tokens) and re.match(r"^\d+(/|$)", tokens[index]):
                index += 1
            continue
        if token:
            kept.append(token)
        index += 1
    return ":".join(kept)


def _forbid_reference_downloads() -> None:
    """htslib fetches unknown CRAM references from the EBI server unless REF_PATH says otherwise.

    Runs must never touch the network, so a missing reference fails fast instead: REF_PATH is set
    to a local path when unset and stripped of URL entries when set (htslib 1.24 already refuses
    remote ``UR:`` tags, and REF_CACHE is only ever a local directory).
    """
    current = os.environ.get("REF_PATH")
    local = _NO_REF_PATH if current is None else _local_ref_path(current) or _NO_REF_PATH
    if local != current:
        os.environ["REF_PATH"] = local


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

    Decompression threads only apply to BAM: htslib's threaded SAM and CRAM readers decode ahead
    of the record loop, so a failure could no longer be traced to its line or record.
    """
    _forbid_reference_downloads()
    _check_path(path)
    format_options = [option.encode() for option in options.format_options]
    handle = _open_with(path, format_options)
    if handle.is_cram and options.reference:
        handle.close()
        if not Path(options.reference).is_file():
            raise AlignmentReadError(
                path, f"the configured CRAM reference {options.reference} does not exist"
            )
        handle = _open_with(path, format_options, reference_filename=options.reference)
    elif handle.is_bam and options.decompression_threads:
        handle.close()
        handle = _open_with(path, format_options, threads=1 + options.decompression_threads)
    return handle


def _open_with(path: Path, format_options: list[bytes], **arguments) -> pysam.AlignmentFile:
    try:
        return pysam.AlignmentFile(
            str(path), "r", check_sq=False, format_options=format_options, **arguments
        )
    except (OSError, ValueError) as error:
        raise AlignmentReadError(path, _open_failure_cause(path, error)) from error


def _open_failure_cause(path: Path, error: Exception) -> str:
    """Why htslib refused to open ``path``, in words (its own message is kept at the end)."""
    message = str(error) or type(error).__name__
    if "EOF marker" in message:
        return (
            "the file is truncated: it ends without the BGZF end-of-file marker "
            "(an interrupted copy or write?)"
        )
    with path.open("rb") as handle:
        start = handle.read(4096)
    if start.startswith(b"CRAM"):
        return f"a damaged CRAM file that htslib cannot open ({message})"
    if start.startswith(b"\x1f\x8b"):
        return f"gzip-compressed, but not a BAM/CRAM/SAM file ({message})"
    try:
        start.decode("utf-8")
    except UnicodeDecodeError:
        return "not a BAM/CRAM/SAM file: its content is unrecognised binary data"
    return "not a BAM/CRAM/SAM file: it holds plain text that is not SAM"


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
    """Opens ``path`` far enough to know its format and header; raises AlignmentReadError.

    For CRAM the first record is decoded too, so a missing reference fails now, before any
    transaction starts, rather than in the middle of the stream.
    """
    handle = _open(path, options)
    try:
        file_format = _format_of(handle)
        if file_format == "CRAM":
            try:
                next(iter(handle.fetch(until_eof=True)), None)
            except (OSError, ValueError) as error:
                raise AlignmentReadError(
                    path, _decode_failure_cause(path, handle, options, error, 0, None, None)
                ) from error
    finally:
        _close_quietly(handle)
    return AlignmentHeader(path=path, format=file_format, text=_header_text(path, file_format))


def count_records(path: Path, options: ReaderOptions) -> int:
    """Number of records in ``path`` as ``samtools view -c`` counts them (no filters).

    The ``reads`` row-count check compares the stored partition with this number, so it runs
    samtools itself rather than the record loop the ingest uses.
    """
    _forbid_reference_downloads()
    arguments = ["-c"]
    if options.reference:
        arguments += ["-T", options.reference]
    for option in options.format_options:
        arguments += ["--input-fmt-option", option]
    try:
        return int(pysam.view(*arguments, str(path)).strip())
    except pysam.SamtoolsError as error:
        raise AlignmentReadError(path, f"samtools view -c failed: {error}") from error


def sam_lines_to_batch(
    lines: list[str], first_rec_no: int, end_positions: list[int | None]
) -> pa.RecordBatch:
    """Turns SAM record lines (no trailing newline) into a batch of ``READS_SCHEMA``.

    The optional fields stay one string, exactly as SAM prints them (``NM:i:0<TAB>MD:Z:100``, or
    ``''`` when there are none): every line gets a tab appended and is split into at most 12
    parts, so the 12th part is the tag text plus that tab, which is then cut off.
    ``end_positions`` are the records' ``reference_end`` (htslib's ``bam_endpos``), taken while
    decoding: computing them from the CIGAR text in SQL cost a third of a second per million reads.
    """
    text = pa.array(lines, pa.string())
    text = pc.binary_join_element_wise(text, "", "\t")
    fields = pc.split_pattern(text, "\t", max_splits=len(SAM_COLUMNS))
    columns = {name: pc.list_element(fields, index) for index, name in enumerate(SAM_COLUMNS)}
    tags_and_tab = pc.list_element(fields, len(SAM_COLUMNS))
    columns["tags"] = pc.binary_slice(tags_and_tab.view(pa.binary()), 0, -1).view(pa.string())
    return _reads_batch(first_rec_no, columns, pa.array(end_positions, pa.int64()))


def _reads_batch(
    first_rec_no: int, sam_columns: dict[str, pa.Array], end_positions: pa.Array
) -> pa.RecordBatch:
    """A batch of ``READS_SCHEMA`` from the SAM fields of consecutive records (text or typed).

    ``qual_sum`` and ``gc_count`` are summed over the chunk's buffers (``base_sums``) unless
    ``sam_columns`` has them."""
    count = len(end_positions)
    columns: list[pa.Array] = [numpy_array(np.arange(first_rec_no, first_rec_no + count))]
    for name in (*SAM_COLUMNS, "tags"):
        column = sam_columns[name]
        target = READS_SCHEMA.field(name).type
        if column.type != target:
            column = pc.cast(column, target)
        columns.append(column)
    # htslib computes an end for a record that claims to be mapped but has no position; SAM says
    # such a record is unplaced.
    unplaced = numpy_array(int64_values(columns[READS_SCHEMA.get_field_index("pos")]) == 0)
    columns.append(pc.if_else(unplaced, pa.nulls(count, pa.int64()), end_positions))
    if "qual_sum" in sam_columns:  # the bulk decoder sums while it decodes
        columns += [sam_columns["qual_sum"], sam_columns["gc_count"]]
    else:
        columns.append(quality_sums(columns[READS_SCHEMA.get_field_index("qual")]))
        columns.append(gc_counts(columns[READS_SCHEMA.get_field_index("seq")]))
    return pa.RecordBatch.from_arrays(columns, schema=READS_SCHEMA)


def iter_read_batches(path: Path, options: ReaderOptions) -> Iterator[pa.RecordBatch]:
    """Yields the records of ``path`` in file order, ``options.chunk_size`` at a time.

    Only one chunk of records exists in memory at once. Decoding errors (truncated or corrupt
    blocks, malformed SAM lines, invalid tags, a missing CRAM reference) raise AlignmentReadError
    naming the file, the cause in words and the record number reached.

    BAM files (unless a format option applies to BAM) are decoded in bulk by ``bam_decoder`` until
    it meets something it leaves to htslib; from that chunk on, htslib's formatter takes over.
    """
    handle = _open(path, options)
    if not handle.is_bam or not options.bulk_bam_decoding or _options_for_bam(options):
        yield from _formatted_batches(path, options, handle)
        return
    _close_quietly(handle)
    try:
        for voffset, rec_no, raw, count, names in iter_record_chunks(path, options.chunk_size):
            decoded = decode_chunk(voffset, rec_no, raw, count, names)
            yield _reads_batch(rec_no, decoded.columns, decoded.end_positions)
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
    ends: list[int | None] = []
    try:
        is_cram = handle.is_cram
        records = handle.fetch(until_eof=True)
        while True:
            chunk_offset = None if is_cram else handle.tell()
            record = None
            try:
                for record in records:
                    lines.append(record.to_string())
                    ends.append(record.reference_end)
                    if len(lines) == options.chunk_size:
                        break
                else:
                    break
            except (OSError, ValueError) as error:
                cause = _decode_failure_cause(
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
            yield sam_lines_to_batch(lines, rec_no, ends)
            rec_no += len(lines)
            lines = []
            ends = []
        if lines:
            yield sam_lines_to_batch(lines, rec_no, ends)
    finally:
        _close_quietly(handle)


def prefetch_batches(batches: Iterator[pa.RecordBatch], depth: int = 1) -> Iterator[pa.RecordBatch]:
    """Runs ``batches`` in a background thread, ``depth`` batches ahead of the consumer.

    With two CPUs this overlaps decoding (htslib and Arrow release the GIL for much of it) with
    DuckDB's insert of the previous batch, which runs without the GIL. Errors are re-raised in the
    consumer unchanged; when the consumer stops early the producer stops and closes the file.
    """
    queue: Queue = Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: tuple[str, object]) -> bool:
        while not stop.is_set():
            try:
                queue.put(item, timeout=0.1)
                return True
            except Full:
                continue
        return False

    def produce() -> None:
        try:
            for batch in batches:
                if not put(("batch", batch)):
                    return
            put(("end", None))
        except BaseException as error:
            put(("error", error))
        finally:
            close = getattr(batches, "close", None)
            if close is not None:
                close()

    producer = threading.Thread(target=produce, name="bam-assets-reader", daemon=True)
    producer.start()
    try:
        while True:
            kind, value = queue.get()
            if kind == "batch":
                yield value
            elif kind == "error":
                raise value
            else:
                return
    finally:
        stop.set()
        producer.join()


_MAX_BLOCKS_CHECKED = 4096
_SAM_INTEGER_FIELDS = {1: "FLAG", 3: "POS", 4: "MAPQ", 7: "PNEXT", 8: "TLEN"}
_SAM_TAG = re.compile(r"^[A-Za-z][A-Za-z0-9]:[AifZHB]:")


def _decode_failure_cause(
    path: Path,
    handle: pysam.AlignmentFile,
    options: ReaderOptions,
    error: Exception,
    records_read: int,
    chunk_offset: int | None,
    record: pysam.AlignedSegment | None,
    in_chunk: int = 0,
) -> str:
    """Turns htslib's terse errors ("truncated file", "sam_format failed"), whose details only go
    to stderr, into a cause in words by looking at the file itself."""
    message = str(error) or type(error).__name__
    where = f"after record {records_read}"
    if handle.is_cram:
        missing = _missing_cram_references(handle, options)
        if missing:
            shown = ", ".join(missing[:3]) + (
                f" and {len(missing) - 3} more" if len(missing) > 3 else ""
            )
            return (
                f"CRAM reference not found for {shown}: set the reference option (--reference) "
                f"to the FASTA the file was written against; references are never downloaded "
                f"({where})"
            )
    if "sam_format" in message and record is not None:
        return (
            f"record {records_read + 1} (read {record.query_name!r}) has invalid tag data that "
            f"cannot be written as SAM (corrupt record)"
        )
    if handle.is_cram:
        return f"the CRAM data cannot be decoded: {message} ({where})"
    if chunk_offset is not None and handle.is_bam:
        bad_block = _find_bad_bgzf_block(path, chunk_offset >> 16)
        if bad_block:
            return f"{bad_block} ({where})"
        return f"corrupt BAM record data ({message}, {where})"
    if chunk_offset is not None and not handle.is_bam:
        return _sam_failure_cause(path, handle, chunk_offset, records_read, in_chunk)
    return f"{message} ({where})"


def _find_bad_bgzf_block(path: Path, offset: int) -> str | None:
    """Checks BGZF blocks from byte ``offset`` on as htslib does and describes the first bad
    one."""
    with path.open("rb") as handle:
        handle.seek(offset)
        for _ in range(_MAX_BLOCKS_CHECKED):
            start = handle.tell()
            try:
                if read_bgzf_block(handle) is None:
                    return None
            except BgzfBlockError as error:
                return error.describe(start)
    return None


def _sam_failure_cause(
    path: Path, handle: pysam.AlignmentFile, chunk_offset: int, records_read: int, in_chunk: int
) -> str:
    """Names the SAM line htslib could not parse and, where it can tell, what is wrong with it."""
    line_number = str(handle.header).count("\n") + records_read + 1
    suffix = ""
    if path.suffix.lower() in {".bam", ".cram"}:
        suffix = f" (the file is named {path.suffix} but holds SAM text)"
    line = _sam_line_at(path, handle, chunk_offset, in_chunk)
    if line is None:
        return f"malformed SAM line {line_number}{suffix}"
    return f"malformed SAM line {line_number}: {_sam_line_problem(line)}{suffix}"


def _sam_line_at(
    path: Path, handle: pysam.AlignmentFile, chunk_offset: int, in_chunk: int
) -> str | None:
    """The failing line of an uncompressed SAM file: the first one after the ``in_chunk``
    records read since ``chunk_offset`` (None for compressed SAM)."""
    if handle.compression != "NONE":
        return None
    with path.open("rb") as source:
        source.seek(chunk_offset)
        skipped = 0
        for raw in source:
            if raw.startswith(b"@"):
                continue
            if skipped == in_chunk:
                return raw.decode("utf-8", "replace").rstrip("\r\n")
            skipped += 1
    return None


def _sam_line_problem(line: str) -> str:
    """What is wrong with one SAM record line, as far as the SAM specification tells."""
    fields = line.split("\t")
    if len(fields) < 11:
        return f"it has {len(fields)} tab-separated fields, a SAM record needs at least 11"
    for index, name in _SAM_INTEGER_FIELDS.items():
        if not re.fullmatch(r"-?\d+", fields[index]):
            return f"{name} is {fields[index][:40]!r}, not a number"
    for tag in fields[11:]:
        if not _SAM_TAG.match(tag):
            return f"invalid tag {tag[:40]!r} (tags are TAG:TYPE:VALUE, TYPE one of AifZHB)"
    return f"htslib cannot parse it: {line[:80]!r}"


def _missing_cram_references(handle: pysam.AlignmentFile, options: ReaderOptions) -> list[str]:
    """@SQ names whose sequence is neither in the configured FASTA, nor found by MD5 in the local
    REF_PATH/REF_CACHE directories, nor at a local ``UR:`` path."""
    configured: set[str] = set()
    if options.reference and Path(options.reference).is_file():
        with pysam.FastaFile(options.reference) as fasta:
            configured = set(fasta.references)
    search = [
        entry
        for variable in ("REF_CACHE", "REF_PATH")
        for entry in _local_ref_path(os.environ.get(variable, "")).split(":")
        if entry
    ]
    missing = []
    for sq in handle.header.to_dict().get("SQ", []):
        name = sq.get("SN", "?")
        if name in configured:
            continue
        md5 = sq.get("M5", "").lower()
        if md5 and any(Path(_expand_ref_path(entry, md5)).is_file() for entry in search):
            continue
        location = sq.get("UR", "").removeprefix("file:")
        if location and "://" not in location and Path(location).is_file():
            continue
        missing.append(name)
    return missing


def _expand_ref_path(entry: str, md5: str) -> str:
    """Expands an htslib REF_PATH entry (``%s`` is the MD5, ``%2s`` its next two characters)."""
    if "%" not in entry:
        return f"{entry.rstrip('/')}/{md5}"
    out, rest = "", md5
    for text, width in re.findall(r"([^%]*)(%\d*s|$)", entry):
        out += text
        if width:
            digits = width[1:-1]
            take = int(digits) if digits else len(rest)
            out, rest = out + rest[:take], rest[take:]
    return out


def _close_quietly(handle: pysam.AlignmentFile) -> None:
    """Closes ``handle``; after a decoding error htslib's close reports a stale errno, which must
    not hide the error that is already being raised."""
    try:
        handle.close()
    except OSError:
        logger.debug("Ignoring an error while closing %s", handle.filename, exc_info=True)
