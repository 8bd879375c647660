"""Counts the records of an alignment file with samtools itself, independently of the ingest.

The ``reads`` row-count check compares the DuckDB partition with this number, so it must not
share the reader's code path: it runs ``samtools view -c`` (bundled with pysam) on the file.
"""

import os
from collections.abc import Sequence
from pathlib import Path

import pysam


def count_records(
    path: str | Path, reference: str | None = None, format_options: Sequence[str] = ()
) -> int:
    """Number of records in ``path`` as ``samtools view -c`` counts them (no filters)."""
    # Never let htslib download a CRAM reference; a missing one fails fast instead.
    os.environ.setdefault("REF_PATH", "/nonexistent-bam-assets-ref-path/%s")
    arguments = ["-c"]
    if reference:
        arguments += ["-T", reference]
    for option in format_options:
        arguments += ["--input-fmt-option", option]
    return int(pysam.view(*arguments, str(path)).strip())
