"""The value the ``reads`` asset returns: a lazy Arrow stream that also says which file it reads,
and how far into the file each batch is.

The description of the source file travels in the stream's schema metadata, and the file bytes
read so far in each batch's, so the asset hands the IO manager a plain
``pyarrow.RecordBatchReader`` and nothing else, and the store needs to know of neither.
"""

import json
from dataclasses import asdict, dataclass
from datetime import datetime

import pyarrow as pa

_METADATA_KEY = b"bam_assets.source"
_BYTES_READ_KEY = b"bam_assets.bytes_read"


@dataclass(frozen=True)
class SourceFile:
    """What the files table records about the file a stream reads."""

    key: str
    path: str
    format: str
    size_bytes: int
    mtime: datetime
    fingerprint: str
    header_text: str
    # the header's references (for BAM its binary list, which the records' ids index and which
    # samtools idxstats lists, whatever the @SQ text says)
    reference_names: tuple[str, ...]
    reference_lengths: tuple[int, ...]


def attach_source(schema: pa.Schema, source: SourceFile) -> pa.Schema:
    """Returns ``schema`` carrying ``source`` in its metadata."""
    fields = asdict(source) | {"mtime": source.mtime.isoformat()}
    return schema.with_metadata({_METADATA_KEY: json.dumps(fields).encode()})


def source_of(stream: pa.RecordBatchReader) -> SourceFile:
    """Reads back the SourceFile that ``attach_source`` put on the stream's schema."""
    metadata = stream.schema.metadata or {}
    if _METADATA_KEY not in metadata:
        raise ValueError("This stream does not say which alignment file it reads")
    fields = json.loads(metadata[_METADATA_KEY])
    return SourceFile(
        **fields
        | {
            "mtime": datetime.fromisoformat(fields["mtime"]),
            "reference_names": tuple(fields["reference_names"]),
            "reference_lengths": tuple(fields["reference_lengths"]),
        }
    )


def with_bytes_read(batch: pa.RecordBatch, bytes_read: int | None) -> pa.RecordBatch:
    """``batch`` saying that the reader had read ``bytes_read`` bytes of the file (compressed
    bytes for BGZF and CRAM) when it was made; None: unknown."""
    if bytes_read is None:
        return batch
    return batch.replace_schema_metadata({_BYTES_READ_KEY: str(bytes_read).encode()})


def bytes_read_of(batch: pa.RecordBatch) -> int | None:
    """What ``with_bytes_read`` put on ``batch``."""
    value = (batch.schema.metadata or {}).get(_BYTES_READ_KEY)
    return int(value) if value is not None else None
