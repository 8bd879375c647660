"""Reading a BED file of target intervals (``samtools view -L``), plain or gzip-compressed."""

import gzip
import os
from pathlib import Path

from bam_assets.model.regions import Region, RegionError, parse_bed

_GZIP_MAGIC = b"\x1f\x8b"


def read_bed(path: str | os.PathLike) -> tuple[Region, ...]:
    """The intervals of the BED file at ``path`` (gzip and bgzip files too, as samtools reads
    them); raises ``RegionError`` for a file that cannot be read or a malformed line."""
    try:
        data = Path(path).read_bytes()
        if data[:2] == _GZIP_MAGIC:
            data = gzip.decompress(data)
        text = data.decode()
    except (OSError, UnicodeDecodeError, EOFError) as error:
        raise RegionError(f"cannot read BED file {path}: {error}") from error
    return parse_bed(text, str(path))
