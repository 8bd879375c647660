"""``BamIngestComponent``: one folder-to-DuckDB ingest, configured in a ``defs.yaml``."""

from pathlib import Path
from typing import Literal

import dagster as dg
from pydantic import Field

from bam_assets.alignment_files import DEFAULT_PATTERNS
from bam_assets.ingest_definitions import build_ingest_definitions
from bam_assets.ingest_settings import IngestSettings
from bam_assets.project_paths import EXAMPLE_DATA_DIR, default_database


class BamIngestComponent(dg.Component, dg.Model, dg.Resolvable):
    """Streams the BAM/CRAM/SAM files under ``roots`` into a DuckDB file, one partition per file.

    Relative paths are resolved against the project folder. An empty ``database`` means
    ``$BAM_ASSETS_DB`` or the project's default file; empty ``roots`` mean the bundled examples.
    """

    name: str = Field(
        default="", description="Prefix for asset keys and partition sets of a second instance."
    )
    roots: list[str] = Field(default=[], description="Folders to watch.")
    patterns: list[str] = Field(default=list(DEFAULT_PATTERNS))
    database: str = Field(default="", description="DuckDB file.")
    reference: str = Field(default="", description="FASTA reference for CRAM files.")
    format_options: list[str] = Field(default=[], description="htslib input format options.")
    chunk_size: int = Field(default=10_000, gt=0)
    threads: int | None = 1
    memory_limit: str | None = "64MB"
    summary_cron: str = Field(
        default="0 6 * * *", description="Cron of the read_stats_overview schedule (daily)."
    )
    coverage_window: int = Field(
        default=100_000, gt=0, description="Window size of the coverage-per-window table."
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
    summary_automation: bool = Field(
        default=False,
        description="Refresh the overview by declarative automation instead of the schedule.",
    )

    def settings(self, project_root: Path) -> IngestSettings:
        def absolute(path: str) -> str:
            return str((project_root / path).resolve())

        roots = [root for root in self.roots if root] or [str(EXAMPLE_DATA_DIR)]
        return IngestSettings(
            name=self.name,
            roots=[absolute(root) for root in roots],
            database=absolute(self.database) if self.database else default_database(),
            patterns=self.patterns,
            reference=absolute(self.reference) if self.reference else None,
            format_options=self.format_options,
            chunk_size=self.chunk_size,
            threads=self.threads,
            memory_limit=self.memory_limit,
            summary_cron=self.summary_cron,
            coverage_window=self.coverage_window,
            summary_automation=self.summary_automation,
            sensor_interval_seconds=self.sensor_interval_seconds,
            max_runs_per_tick=self.max_runs_per_tick,
            on_removed=self.on_removed,
        )

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        return build_ingest_definitions(self.settings(context.project_root))
