"""One alignment file as a lazy Arrow stream of the reads schema, saying which file it reads."""

from pathlib import Path

import pyarrow as pa

from bam_assets.model.reads_schema import READS_SCHEMA
from bam_assets.model.source_stream import SourceFile, attach_source
from bam_assets.reading.files import stat_file
from bam_assets.reading.options import ReaderOptions
from bam_assets.reading.prefetch import prefetch_batches
from bam_assets.reading.reader import iter_read_batches, read_header


def open_reads_stream(
    path: Path, key: str, options: ReaderOptions, read_ahead: bool = False
) -> pa.RecordBatchReader:
    """Opens ``path`` and returns its records as a lazy Arrow stream that carries its
    ``SourceFile`` (see ``source_stream``).

    The header is read and checked now, so an unreadable file fails here; records are only decoded
    while the stream is consumed. ``read_ahead`` decodes the next batch in a thread while the
    consumer handles the current one (worth it with a second CPU).
    """
    header = read_header(path, options)
    stat = stat_file(path)
    source = SourceFile(
        key=key,
        path=str(path),
        format=header.format,
        size_bytes=stat.size_bytes,
        mtime=stat.mtime,
        fingerprint=stat.fingerprint,
        header_text=header.text,
        reference_names=header.reference_names,
        reference_lengths=header.reference_lengths,
    )
    batches = iter_read_batches(path, options)
    if read_ahead:
        batches = prefetch_batches(batches)
    return pa.RecordBatchReader.from_batches(attach_source(READS_SCHEMA, source), batches)
