"""The ``alignment_sources`` resource: where alignment files live and how to read them."""

from collections.abc import Iterator

import dagster as dg
import pyarrow as pa
from pydantic import Field

from bam_assets.alignment_files import (
    DEFAULT_PATTERNS,
    AlignmentFile,
    find_alignment_files,
    resolve_partition_key,
    stat_file,
)
from bam_assets.alignment_reader import (
    READS_SCHEMA,
    ReaderOptions,
    iter_read_batches,
    prefetch_batches,
    read_header,
)
from bam_assets.available_cpus import available_cpus
from bam_assets.source_stream import SourceFile, attach_source


class AlignmentSources(dg.ConfigurableResource):
    """Folders of BAM/CRAM/SAM files, one dynamic partition per file."""

    roots: list[str] = Field(description="Folders to look for alignment files in.")
    patterns: list[str] = Field(
        default=list(DEFAULT_PATTERNS), description="File name patterns that count as alignments."
    )
    reference: str | None = Field(
        default=None, description="FASTA reference for CRAM files (never downloaded)."
    )
    format_options: list[str] = Field(
        default=[],
        description="htslib input format options, e.g. 'decode_md=0' (as samtools' "
        "--input-fmt-option).",
    )
    chunk_size: int = Field(default=10_000, description="Records per Arrow batch.", gt=0)

    def reader_options(self) -> ReaderOptions:
        return ReaderOptions(
            reference=self.reference,
            format_options=tuple(self.format_options),
            chunk_size=self.chunk_size,
            # With a second CPU, htslib inflates BGZF blocks in its own thread.
            decompression_threads=1 if available_cpus() > 1 else 0,
        )

    def find(self) -> Iterator[AlignmentFile]:
        """Every alignment file under the roots, with its partition key."""
        return find_alignment_files(self.roots, self.patterns)

    def resolve(self, key: str) -> AlignmentFile:
        """The file under the roots whose partition key is ``key``."""
        return resolve_partition_key(key, self.roots, self.patterns)

    def open_stream(self, key: str) -> pa.RecordBatchReader:
        """Opens the partition's file and returns its records as a lazy Arrow stream.

        The header is read and checked now, so an unreadable file fails here; records are only
        decoded while the stream is consumed.
        """
        found = self.resolve(key)
        options = self.reader_options()
        header = read_header(found.path, options)
        stat = stat_file(found.path)
        source = SourceFile(
            key=key,
            path=str(found.path),
            format=header.format,
            size_bytes=stat.size_bytes,
            mtime=stat.mtime,
            fingerprint=stat.fingerprint,
            header_text=header.text,
        )
        batches = iter_read_batches(found.path, options)
        if available_cpus() > 1:
            batches = prefetch_batches(batches)
        return pa.RecordBatchReader.from_batches(attach_source(READS_SCHEMA, source), batches)
