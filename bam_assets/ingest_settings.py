"""The settings of one ingest (one component instance): folders, database, reading, schedules."""

from dataclasses import dataclass, field
from typing import Literal

import dagster as dg

from bam_assets.alignment_files import DEFAULT_PATTERNS
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
    threads: int | None = 1
    memory_limit: str | None = "64MB"
    summary_cron: str = "0 6 * * *"
    coverage_window: int = 100_000
    summary_automation: bool = False
    sensor_interval_seconds: int = 30
    max_runs_per_tick: int = 500
    on_removed: Literal["purge", "keep"] = "purge"

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
        """A named instance keeps its rows in its own tables (``<name>_reads``, ``<name>_files``),
        so two instances can share one database file without sharing partition keys."""
        return StreamingDuckDBIOManager(
            database=self.database,
            reads_table=f"{self.prefix}reads",
            files_table=f"{self.prefix}files",
            threads=self.threads,
            memory_limit=self.memory_limit,
        )
