"""How files are opened and read: options given by the ingest's settings."""

from collections.abc import Sequence
from dataclasses import dataclass

# Records per Arrow batch: at 10,000 a batch of 150-bp reads is about 5 MB; 20,000 was no faster
# and cost 50 MB more peak memory.
DEFAULT_CHUNK_SIZE = 10_000


@dataclass(frozen=True)
class ReaderOptions:
    """How to open files: CRAM reference, htslib format options and records per Arrow batch.

    ``bulk_bam_decoding=False`` renders every BAM record with htslib's formatter, as SAM and CRAM
    are: slower, and what the bulk decoder is tested against. ``allow_missing_eof`` reads a BGZF
    or CRAM file that lacks its end-of-file marker, as samtools does (it warns), instead of
    refusing it as truncated.
    """

    reference: str | None = None
    format_options: Sequence[str] = ()
    chunk_size: int = DEFAULT_CHUNK_SIZE
    bulk_bam_decoding: bool = True
    allow_missing_eof: bool = False
