"""CRAM references: never downloaded, and when missing, named.

htslib fetches unknown CRAM references from the EBI server unless REF_PATH says otherwise; runs must
never touch the network, so REF_PATH is restricted to local directories, and a failure names the
contigs whose sequence is nowhere to be found locally.
"""

import os
import re
from pathlib import Path

import pysam

from bam_assets.reading.options import ReaderOptions

_URL_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*$")
_NO_REF_PATH = "/nonexistent-bam-assets-ref-path/%s"


def local_ref_path(value: str) -> str:
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


def forbid_reference_downloads() -> None:
    """htslib fetches unknown CRAM references from the EBI server unless REF_PATH says otherwise.

    Runs must never touch the network, so a missing reference fails fast instead: REF_PATH is set
    to a local path when unset and stripped of URL entries when set (htslib 1.24 already refuses
    remote ``UR:`` tags, and REF_CACHE is only ever a local directory).
    """
    current = os.environ.get("REF_PATH")
    local = _NO_REF_PATH if current is None else local_ref_path(current) or _NO_REF_PATH
    if local != current:
        os.environ["REF_PATH"] = local


def missing_cram_references(handle: pysam.AlignmentFile, options: ReaderOptions) -> list[str]:
    """@SQ names whose sequence is neither in the configured FASTA, nor found by MD5 in the local
    REF_PATH/REF_CACHE directories, nor at a local ``UR:`` path."""
    configured: set[str] = set()
    if options.reference and Path(options.reference).is_file():
        with pysam.FastaFile(options.reference) as fasta:
            configured = set(fasta.references)
    search = [
        entry
        for variable in ("REF_CACHE", "REF_PATH")
        for entry in local_ref_path(os.environ.get(variable, "")).split(":")
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
