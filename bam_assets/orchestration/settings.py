"""The settings of one ingest instance, declared once: every option with its default and its
description. The component's YAML attributes are this model; the CLI and the tests build it
directly; it produces the resources, the reader options and the store.

Relative paths are resolved against the project folder by ``resolved``.
"""

from pathlib import Path
from typing import Literal

import dagster as dg
from pydantic import Field

from bam_assets.model.tables import TableNames
from bam_assets.orchestration.project_paths import EXAMPLE_DATA_DIR, default_database
from bam_assets.reading.files import DEFAULT_PATTERNS
from bam_assets.reading.options import DEFAULT_CHUNK_SIZE, ReaderOptions

# One writer at a time per DuckDB file: every op that writes runs in this pool.
WRITER_POOL = "duckdb_writer"


class ReadingSettings(dg.Config, dg.Resolvable):
    """How alignment files are read."""

    reference: str | None = Field(
        default=None, description="FASTA reference for CRAM files (never downloaded)."
    )
    format_options: list[str] = Field(
        default=[],
        description="htslib input format options, e.g. 'decode_md=0' (as samtools' "
        "--input-fmt-option).",
    )
    chunk_size: int = Field(default=DEFAULT_CHUNK_SIZE, gt=0, description="Records per batch.")
    allow_missing_eof: bool = Field(
        default=False,
        description="Read a BAM/CRAM file that lacks its end-of-file marker, as samtools does "
        "(it warns), instead of refusing it as truncated: a file cut at a block boundary then "
        "ingests without its missing records.",
    )

    def reader_options(self) -> ReaderOptions:
        return ReaderOptions(
            reference=self.reference,
            format_options=tuple(self.format_options),
            chunk_size=self.chunk_size,
            allow_missing_eof=self.allow_missing_eof,
        )


class StoreSettings(dg.Config, dg.Resolvable):
    """Where reads are stored and how the database may use the machine."""

    database: str = Field(
        default="", description="DuckDB file; empty: $BAM_ASSETS_DB, else data/bam_assets.duckdb."
    )
    threads: int | None = Field(
        default=1,
        description="DuckDB threads of the ingest (null: every CPU). One stream is inserted "
        "sequentially, so more threads only contend (2 CPUs, 1M reads: 4.5 s with 2 threads, "
        "3.3 s with 1 and the reader decoding ahead on the other). The summaries use every CPU.",
    )
    memory_limit: str | None = Field(
        default="64MB", description="DuckDB memory_limit; DuckDB spills to disk beyond it."
    )
    lock_timeout_seconds: float = Field(
        default=300.0,
        description="How long a writer or reader waits for another process's write lock.",
    )


class IngestSettings(dg.Model):
    """One folder-to-store ingest: the files, how to read them, where to store them, and when
    the sensor and the summaries run."""

    name: str = Field(
        default="",
        description="Prefix for the asset keys, partition set, tables and resources of a second "
        "instance.",
    )
    roots: list[str] = Field(
        default=[], description="Folders to watch; empty: the bundled example files."
    )
    patterns: list[str] = Field(
        default=list(DEFAULT_PATTERNS), description="File name patterns that count as alignments."
    )
    reading: ReadingSettings = Field(default_factory=ReadingSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)
    summary_cron: str = Field(
        default="0 6 * * *", description="Cron of the read_stats_overview schedule (daily)."
    )
    coverage_window: int = Field(
        default=100_000, gt=0, description="Window size of the coverage-per-window table."
    )
    summary_automation: bool = Field(
        default=False,
        description="Refresh the overview by declarative automation instead of the schedule.",
    )
    sensor_interval_seconds: int = Field(
        default=30, description="Seconds between two looks at the watched folders."
    )
    max_runs_per_tick: int = Field(
        default=500, gt=0, description="At most this many files start ingesting per tick."
    )
    on_removed: Literal["purge", "keep"] = Field(
        default="purge",
        description="When a file disappears: delete its partition and rows, or keep both.",
    )

    def resolved(self, project_root: Path) -> "IngestSettings":
        """A copy with absolute paths (relative ones are taken from ``project_root``) and the
        defaults filled in: the bundled examples, ``$BAM_ASSETS_DB`` or the project's file."""

        def absolute(path: str) -> str:
            return str((project_root / path).resolve())

        roots = [root for root in self.roots if root] or [str(EXAMPLE_DATA_DIR)]
        reference = self.reading.reference
        database = self.store.database
        return IngestSettings.model_validate(
            {
                **self.model_dump(),
                "roots": [absolute(root) for root in roots],
                "reading": {
                    **self.reading.model_dump(),
                    "reference": absolute(reference) if reference else None,
                },
                "store": {
                    **self.store.model_dump(),
                    "database": absolute(database) if database else default_database(),
                },
            }
        )

    @property
    def prefix(self) -> str:
        return f"{self.name}_" if self.name else ""

    @property
    def tables(self) -> TableNames:
        """A named instance keeps its rows in its own tables (``<name>_reads``, …), so two
        instances can share one database file without sharing partition keys."""
        return TableNames(self.prefix)

    @property
    def partitions_name(self) -> str:
        return f"{self.prefix}alignment_files"

    @property
    def sources_key(self) -> str:
        return f"{self.prefix}alignment_sources"

    @property
    def store_key(self) -> str:
        return f"{self.prefix}store"

    @property
    def io_manager_key(self) -> str:
        return f"{self.prefix}reads_io_manager"

    def asset_key(self, name: str) -> dg.AssetKey:
        return dg.AssetKey([self.name, name] if self.name else [name])

    @property
    def reads_key(self) -> dg.AssetKey:
        return self.asset_key("reads")

    def partitions_def(self) -> dg.DynamicPartitionsDefinition:
        return dg.DynamicPartitionsDefinition(name=self.partitions_name)
