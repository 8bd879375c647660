"""Writing records back out as SAM, BAM or CRAM, through htslib, with the stored header.

SAM is written as the stored text, which is what ``samtools view`` prints. For BAM and CRAM each
SAM line is parsed by htslib (``AlignedSegment.fromstring``: ``sam_parse1``) and written by its
BAM or CRAM writer, as ``samtools view -b``/``-C`` would write the same SAM; nothing here encodes
a record by hand. A file named by ``path`` only ever appears whole: records go to a temporary file
beside it, renamed into place once the last one is written and removed on any error.
"""

import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import pysam

from bam_assets.model.sam_bytes import bytes_from_text
from bam_assets.reading.references import forbid_reference_downloads

OUTPUT_FORMATS = ("sam", "bam", "cram")
_WRITE_MODES = {"bam": "wb", "cram": "wc"}


class OutputError(ValueError):
    """An output that cannot be written as asked (an unknown format, CRAM without a reference)."""


def output_format(path: str | os.PathLike | None, requested: str | None) -> str:
    """``requested`` (``sam``, ``bam`` or ``cram``, any case) or else the format the file name's
    extension names, else SAM, as samtools view chooses it."""
    if requested:
        if requested.lower() not in OUTPUT_FORMATS:
            raise OutputError(
                f"unknown output format {requested!r}: use one of {', '.join(OUTPUT_FORMATS)}"
            )
        return requested.lower()
    suffix = Path(path).suffix.lower().lstrip(".") if path else ""
    return suffix if suffix in OUTPUT_FORMATS else "sam"


@contextmanager
def _whole_file(path: Path) -> Iterator[Path]:
    """A temporary path beside ``path``, renamed to it when the block ends without error and
    removed otherwise."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        yield partial
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def _write_sam(
    out: IO[bytes], header_text: str, batches: Iterable[Sequence[str]], with_header: bool
) -> int:
    """The stored text as samtools printed it: escaped bytes are written back as the bytes."""
    if with_header:
        out.write(bytes_from_text(header_text))
    written = 0
    for lines in batches:
        if lines:
            out.write(bytes_from_text("\n".join(lines) + "\n"))
            written += len(lines)
    return written


def _htslib_text(text: str) -> str:
    """Stored text as pysam hands it to htslib: the escaped bytes as lone surrogates, which pysam
    encodes back to those bytes (``surrogateescape``)."""
    return bytes_from_text(text).decode("utf-8", "surrogateescape")


def _write_htslib(
    target: str,
    file_format: str,
    header_text: str,
    batches: Iterable[Sequence[str]],
    reference: str | None,
    threads: int,
) -> int:
    header = pysam.AlignmentHeader.from_text(_htslib_text(header_text))
    options = {"reference_filename": reference} if file_format == "cram" else {}
    written = 0
    try:
        with pysam.AlignmentFile(
            target, _WRITE_MODES[file_format], header=header, threads=1 + threads, **options
        ) as out:
            for lines in batches:
                for line in lines:
                    out.write(pysam.AlignedSegment.fromstring(_htslib_text(line), header))
                written += len(lines)
    except (OSError, ValueError) as error:
        # htslib has said why on standard error (a reference whose M5 differs from @SQ's, ...).
        raise OutputError(
            f"htslib could not write the {file_format.upper()} output ({error}); "
            "see its messages above"
        ) from error
    return written


def write_alignments(
    path: str | os.PathLike | None,
    file_format: str,
    header_text: str,
    batches: Iterable[Sequence[str]],
    with_header: bool = False,
    reference: str | None = None,
    threads: int = 0,
) -> int:
    """Writes the SAM lines of ``batches`` to ``path`` (standard output when None) as
    ``file_format``; returns how many. SAM gets ``header_text`` only ``with_header`` (samtools'
    ``-h``); BAM and CRAM always carry it. CRAM needs ``reference`` (a FASTA with its ``.fai``).
    ``threads`` are extra htslib compression threads."""
    if file_format not in OUTPUT_FORMATS:
        raise OutputError(f"unknown output format {file_format!r}")
    if file_format == "cram":
        if not reference:
            raise OutputError("CRAM output needs the reference FASTA: pass --reference")
        if not Path(reference).is_file():
            raise OutputError(f"CRAM reference {reference} does not exist")
        forbid_reference_downloads()
    if path is None:
        if file_format == "sam":
            sys.stdout.flush()
            return _write_sam(sys.stdout.buffer, header_text, batches, with_header)
        sys.stdout.flush()
        return _write_htslib("-", file_format, header_text, batches, reference, threads)
    target = Path(path)
    if not target.parent.is_dir():
        raise OutputError(f"cannot write {target}: no such folder {target.parent}")
    with _whole_file(target) as partial:
        if file_format == "sam":
            with partial.open("wb") as out:
                return _write_sam(out, header_text, batches, with_header)
        return _write_htslib(str(partial), file_format, header_text, batches, reference, threads)
