"""The two resources of an ingest instance: where alignment files are and how to read them
(``AlignmentSources``), and the store every reader and writer of the reads goes through
(``StoreResource``)."""

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
import pyarrow as pa
from pydantic import Field

from bam_assets.model.tables import TableNames
from bam_assets.orchestration.settings import IngestSettings, ReadingSettings, StoreSettings
from bam_assets.reading.files import (
    DEFAULT_PATTERNS,
    AlignmentFile,
    find_alignment_files,
    resolve_partition_key,
)
from bam_assets.reading.options import ReaderOptions
from bam_assets.reading.reader import count_records
from bam_assets.reading.stream import open_reads_stream
from bam_assets.storage.config import open_store
from bam_assets.storage.lake import Lake, LakeSession
from bam_assets.util.cpus import available_cpus


class AlignmentSources(dg.ConfigurableResource):
    """Folders of BAM/CRAM/SAM files, one dynamic partition per file."""

    roots: list[str] = Field(description="Folders to look for alignment files in.")
    patterns: list[str] = Field(
        default=list(DEFAULT_PATTERNS), description="File name patterns that count as alignments."
    )
    reading: ReadingSettings = Field(default_factory=ReadingSettings)

    def reader_options(self) -> ReaderOptions:
        return self.reading.reader_options()

    def find(self) -> Iterator[AlignmentFile]:
        """Every alignment file under the roots, with its partition key."""
        return find_alignment_files(self.roots, self.patterns)

    def resolve(self, key: str) -> AlignmentFile:
        """The file under the roots whose partition key is ``key``."""
        return resolve_partition_key(key, self.roots, self.patterns)

    def open_stream(self, key: str) -> pa.RecordBatchReader:
        """The partition's records as a lazy Arrow stream (see ``reading.stream``); with a second
        CPU the next batch is decoded while the current one is stored."""
        return open_reads_stream(
            self.resolve(key).path, key, self.reader_options(), read_ahead=available_cpus() > 1
        )

    def count_records(self, key: str) -> int:
        """``samtools view -c`` of the partition's file."""
        return count_records(self.resolve(key).path, self.reader_options())


class StoreResource(dg.ConfigurableResource):
    """The store of an ingest instance: the IO manager, the summaries, the checks, the purge job
    and the CLI all read and write through it."""

    settings: StoreSettings = Field(default_factory=StoreSettings)
    table_prefix: str = Field(default="", description="Prefix of a named instance's tables.")

    @property
    def tables(self) -> TableNames:
        return TableNames(self.table_prefix)

    def store(self, all_cpus: bool = False) -> Lake:
        """The configured store; ``all_cpus`` lets DuckDB use every CPU (queries that
        parallelise, such as the summaries) instead of the ingest's ``threads``."""
        threads = None if all_cpus else self.settings.threads
        return open_store(
            self.settings.store_config(threads), self.tables, log=dg.get_dagster_logger()
        )

    @property
    def location(self) -> str:
        """Where the store is, in words (for metadata and messages)."""
        return self.store().location

    @contextmanager
    def session(self, read_only: bool = False, all_cpus: bool = False) -> Iterator[LakeSession]:
        with self.store(all_cpus).session(read_only) as session:
            yield session


def sources_resource(settings: IngestSettings) -> AlignmentSources:
    return AlignmentSources(
        roots=settings.roots, patterns=settings.patterns, reading=settings.reading
    )


def store_resource(settings: IngestSettings) -> StoreResource:
    return StoreResource(settings=settings.store, table_prefix=settings.prefix)
