"""Why htslib failed, in words: htslib's own errors are terse ("truncated file", "sam_format
failed") and their details only go to stderr, so the cause is found by looking at the file itself.
"""

import re
from pathlib import Path

import pysam

from bam_assets.model.sam_bytes import text_from_htslib
from bam_assets.reading.bam.bgzf import BGZF_EOF_MARKER, BgzfBlockError, read_bgzf_block
from bam_assets.reading.options import ReaderOptions
from bam_assets.reading.references import missing_cram_references

_MAX_BLOCKS_CHECKED = 4096
_SAM_INTEGER_FIELDS = {1: "FLAG", 3: "POS", 4: "MAPQ", 7: "PNEXT", 8: "TLEN"}
_SAM_TAG = re.compile(r"^[A-Za-z][A-Za-z0-9]:[AifZHB]:")


def open_failure_cause(path: Path, error: Exception) -> str:
    """Why htslib refused to open ``path``, in words (its own message is kept at the end)."""
    message = str(error) or type(error).__name__
    if "EOF marker" in message:
        return _missing_eof_cause(path)
    with path.open("rb") as handle:
        start = handle.read(4096)
    if start.startswith(b"CRAM"):
        return f"a damaged CRAM file that htslib cannot open ({message})"
    if start.startswith(b"\x1f\x8b"):
        if start[12:14] == b"BC":  # BGZF: a damaged block or binary header stops htslib early
            bad_block = _find_bad_bgzf_block(path, 0)
            if bad_block:
                return f"{bad_block} ({message})"
            with path.open("rb") as handle:
                if (read_bgzf_block(handle) or b"").startswith(b"BAM\x01"):
                    return f"a BAM file whose binary header is invalid or truncated ({message})"
        return f"gzip-compressed, but not a BAM/CRAM/SAM file ({message})"
    try:
        start.decode("utf-8")
    except UnicodeDecodeError:
        return "not a BAM/CRAM/SAM file: its content is unrecognised binary data"
    return "not a BAM/CRAM/SAM file: it holds plain text that is not SAM"


def plain_gzip_cause(error: Exception) -> str:
    """pysam asks for the position in a BAM file while opening it, which plain gzip (not BGZF)
    cannot tell: samtools streams such a file, htslib's seekable reader cannot."""
    return (
        "a BAM file compressed with plain gzip, not BGZF (the blocked gzip BAM files use): "
        "samtools can stream it, but it cannot be read here; recompress it with "
        f"'samtools view -b -o OUT.bam FILE' ({error})"
    )


def _missing_eof_cause(path: Path) -> str:
    """The last 28 bytes are not the BGZF end-of-file marker: the file was cut short, or
    something follows the marker."""
    with path.open("rb") as handle:
        handle.seek(max(0, path.stat().st_size - (1 << 16)))
        tail = handle.read()
    marker = tail.rfind(BGZF_EOF_MARKER)
    if marker >= 0:
        trailing = len(tail) - marker - len(BGZF_EOF_MARKER)
        return f"{trailing} bytes follow its BGZF end-of-file marker (a damaged copy?)"
    return (
        "the file is truncated: it ends without the BGZF end-of-file marker "
        "(an interrupted copy or write?). samtools warns and reads the records it holds; to do "
        "the same, set the reading option allow_missing_eof (bam-assets ingest "
        "--allow-missing-eof)"
    )


def decode_failure_cause(
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
        missing = missing_cram_references(handle, options)
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
            f"record {records_read + 1} (read {text_from_htslib(record.query_name)!r}) has "
            "invalid tag data that cannot be written as SAM (corrupt record)"
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
