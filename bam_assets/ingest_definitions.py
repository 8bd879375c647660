"""Builds the Dagster definitions of one ingest: partitions, the ``reads`` asset, its resources.

The asset wires the reader (``AlignmentSources``) to the streaming IO manager; it parses nothing
and runs no SQL itself.
"""

from dataclasses import dataclass, field

import dagster as dg
import pyarrow as pa

from bam_assets.alignment_files import DEFAULT_PATTERNS, SourceNotFoundError
from bam_assets.alignment_reader import AlignmentReadError
from bam_assets.io_manager import StreamingDuckDBIOManager
from bam_assets.resources import AlignmentSources

# One writer at a time per DuckDB file: runs of the reads asset queue in this pool.
DUCKDB_WRITER_POOL = "duckdb_writer"


@dataclass(frozen=True)
class IngestSettings:
    """Everything one ingest needs: where files are, where the database is, how to read."""

    roots: list[str]
    database: str
    name: str = ""
    patterns: list[str] = field(default_factory=lambda: list(DEFAULT_PATTERNS))
    reference: str | None = None
    format_options: list[str] = field(default_factory=list)
    chunk_size: int = 10_000
    threads: int | None = None
    memory_limit: str | None = "128MB"
    summary_cron: str = "0 6 * * *"
    coverage_window: int = 100_000
    summary_automation: bool = False

    @property
    def prefix(self) -> str:
        return f"{self.name}_" if self.name else ""

    @property
    def partitions_name(self) -> str:
        return f"{self.prefix}alignment_files"

    @property
    def sources_key(self) -> str:
        return f"{self.prefix}alignment_sources"

    @property
    def io_manager_key(self) -> str:
        return f"{self.prefix}reads_io_manager"

    @property
    def asset_key(self) -> dg.AssetKey:
        return dg.AssetKey([self.name, "reads"] if self.name else ["reads"])

    def partitions_def(self) -> dg.DynamicPartitionsDefinition:
        return dg.DynamicPartitionsDefinition(name=self.partitions_name)

    def sources(self) -> AlignmentSources:
        return AlignmentSources(
            roots=self.roots,
            patterns=self.patterns,
            reference=self.reference,
            format_options=self.format_options,
            chunk_size=self.chunk_size,
        )

    def io_manager(self) -> StreamingDuckDBIOManager:
        return StreamingDuckDBIOManager(
            database=self.database, threads=self.threads, memory_limit=self.memory_limit
        )


def build_reads_asset(settings: IngestSettings) -> dg.AssetsDefinition:
    sources_key = settings.sources_key

    @dg.asset(
        key=settings.asset_key,
        partitions_def=settings.partitions_def(),
        io_manager_key=settings.io_manager_key,
        required_resource_keys={sources_key},
        kinds={"pysam", "duckdb"},
        group_name="alignments",
        pool=DUCKDB_WRITER_POOL,
    )
    def reads(context: dg.AssetExecutionContext) -> pa.RecordBatchReader:
        """Every record of one BAM/CRAM/SAM file, streamed chunk by chunk into DuckDB."""
        sources: AlignmentSources = getattr(context.resources, sources_key)
        try:
            return sources.open_stream(context.partition_key)
        except (AlignmentReadError, SourceNotFoundError) as error:
            raise dg.Failure(description=str(error)) from error

    return reads


def build_ingest_definitions(settings: IngestSettings) -> dg.Definitions:
    from bam_assets.summary_definitions import build_summary_definitions

    reads = build_reads_asset(settings)
    ingest = dg.Definitions(
        assets=[reads],
        jobs=[
            dg.define_asset_job(
                f"{settings.prefix}ingest_reads",
                selection=[reads],
                partitions_def=settings.partitions_def(),
                description="Ingest one alignment file into DuckDB.",
            )
        ],
        resources={
            settings.sources_key: settings.sources(),
            settings.io_manager_key: settings.io_manager(),
        },
    )
    return dg.Definitions.merge(ingest, build_summary_definitions(settings))
