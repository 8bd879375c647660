"""The settings of one ingest instance, declared once: every option with its default and its
description. The component's YAML attributes are this model; the CLI and the tests build it
directly; it produces the resources, the reader options and the store.

Relative paths are resolved against the project folder by ``resolved``.
"""

import os
from pathlib import Path
from typing import Literal

import dagster as dg
from pydantic import Field

from bam_assets.model.tables import TableNames
from bam_assets.orchestration.project_paths import (
    EXAMPLE_DATA_DIR,
    LAKE_CATALOG_ENV_VAR,
    LAKE_DATA_PATH_ENV_VAR,
    PROJECT_DIR,
    default_database,
)
from bam_assets.reading.files import DEFAULT_PATTERNS
from bam_assets.reading.options import DEFAULT_CHUNK_SIZE, ReaderOptions
from bam_assets.storage.config import StoreConfig

# Every op that writes runs in this pool, whichever the catalog. The store takes many writers at
# once (each holds its catalog only for its swap); the pool's limit is what the machine takes:
# each writer uses about one CPU and up to ~400 MB (dagster.yaml, deploy/pools.sh).
WRITER_POOL = "lake_writer"
# Maintenance of a lake, one run at a time.
MAINTENANCE_POOL = "lake_maintenance"
# The store's catalog: the earlier spellings first, as the component's YAML may still say them.
_CATALOGS = {"duckdb": "local", "ducklake": "postgres", "local": "local", "postgres": "postgres"}


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


class LakeSettings(dg.Config, dg.Resolvable):
    """Where a Postgres-catalogued lake is (backend ``postgres``), and how maintenance keeps any
    lake small."""

    catalog: str = Field(
        default="",
        description="libpq DSN of the Postgres catalog database, without the password (libpq "
        "reads PGPASSWORD or ~/.pgpass); empty: $BAM_ASSETS_LAKE_CATALOG.",
    )
    data_path: str = Field(
        default="",
        description="Folder of the Parquet files of a Postgres catalog, mounted at the same path "
        "on every machine; empty: $BAM_ASSETS_LAKE_DATA_PATH. (A local catalog keeps them in "
        "<database>.files beside it.)",
    )
    maintenance_cron: str = Field(
        default="0 3 * * *", description="Cron of the lake_maintenance schedule (daily)."
    )
    snapshot_retention_days: float = Field(
        default=7, gt=0, description="Snapshots older than this are expired (time travel ends)."
    )
    file_retention_hours: float = Field(
        default=24,
        gt=0,
        description="Files of expired snapshots are deleted this long after (readers on an old "
        "snapshot may still scan them).",
    )
    orphan_margin_hours: float = Field(
        default=24,
        gt=0,
        description="Leftovers of killed writers are deleted once this old; must exceed twice "
        "store.lock_timeout_seconds plus an hour, or a committing writer's file could go.",
    )


class StoreSettings(dg.Config, dg.Resolvable):
    """Where reads are stored and how the database may use the machine."""

    backend: Literal["local", "postgres", "duckdb", "ducklake"] = Field(
        default="local",
        description="Where the store's DuckLake catalog lives. local: a SQLite file (database) "
        "beside its data folder, for the processes of one machine; postgres: a Postgres database "
        "(lake.catalog) and a shared folder (lake.data_path), for many machines. duckdb and "
        "ducklake are the earlier names of the two.",
    )
    database: str = Field(
        default="",
        description="The local catalog file (its Parquet files go in <database>.files beside "
        "it); empty: $BAM_ASSETS_DB, else data/bam_assets.sqlite.",
    )
    lake: LakeSettings = Field(default_factory=LakeSettings)
    threads: int | None = Field(
        default=1,
        description="DuckDB threads of the ingest (null: every CPU). One stream is written "
        "sequentially, so more threads only contend; the reader decodes ahead on another CPU. "
        "The summaries use every CPU.",
    )
    memory_limit: str | None = Field(
        default="64MB", description="DuckDB memory_limit; DuckDB spills to disk beyond it."
    )
    lock_timeout_seconds: float = Field(
        default=300.0,
        description="How long a write waits for another writer of the same partition, and "
        "retries while other writers' commits conflict with its own.",
    )

    @property
    def catalog(self) -> str:
        """``local`` or ``postgres`` (the earlier names mapped to them)."""
        return _CATALOGS[self.backend]

    def store_config(self, threads: int | None) -> StoreConfig:
        """The plain configuration ``storage.config.open_store`` builds the store from, with
        ``threads`` DuckDB threads (None: every CPU)."""
        if self.catalog == "postgres":
            catalog, data_path = f"postgres:{self.lake.catalog}", self.lake.data_path
        else:
            catalog, data_path = self.database, ""
        return StoreConfig(
            catalog=catalog,
            data_path=data_path,
            threads=threads,
            memory_limit=self.memory_limit,
            retry_seconds=self.lock_timeout_seconds,
        )

    @property
    def writer_pool(self) -> str:
        return WRITER_POOL


def store_settings(backend: str, database: str, **overrides: object) -> StoreSettings:
    """The store of the command line: ``backend``, the local catalog file ``database`` or the
    Postgres catalog of the environment, and ``overrides`` of other fields."""
    store = StoreSettings.model_validate({"backend": backend, "database": database, **overrides})
    return IngestSettings(store=store).resolved(PROJECT_DIR).store


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
    run_executor: Literal["in_process", "celery_k8s"] = Field(
        default="in_process",
        description="How a run executes its steps: in its own process, or on Celery workers "
        "(celery_k8s_job_executor, with the CeleryK8sRunLauncher of deploy/helm/values-celery"
        ".yaml; needs the deploy extra).",
    )

    def resolved(self, project_root: Path) -> "IngestSettings":
        """A copy with absolute paths (relative ones are taken from ``project_root``) and the
        defaults filled in: the bundled examples, ``$BAM_ASSETS_DB`` or the project's store, the
        Postgres catalog's ``$BAM_ASSETS_LAKE_CATALOG`` and ``$BAM_ASSETS_LAKE_DATA_PATH``."""

        def absolute(path: str) -> str:
            return str((project_root / path).resolve())

        roots = [root for root in self.roots if root] or [str(EXAMPLE_DATA_DIR)]
        reference = self.reading.reference
        database = self.store.database
        lake = self.store.lake
        data_path = lake.data_path or os.environ.get(LAKE_DATA_PATH_ENV_VAR, "")
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
                    "lake": {
                        **lake.model_dump(),
                        "catalog": lake.catalog or os.environ.get(LAKE_CATALOG_ENV_VAR, ""),
                        "data_path": absolute(data_path) if data_path else "",
                    },
                },
            }
        )

    @property
    def prefix(self) -> str:
        return f"{self.name}_" if self.name else ""

    @property
    def tables(self) -> TableNames:
        """A named instance keeps its rows in its own tables (``<name>_reads``, …), so two
        instances can share one store without sharing partition keys."""
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
    def writer_pool(self) -> str:
        return self.store.writer_pool

    @property
    def reads_key(self) -> dg.AssetKey:
        return self.asset_key("reads")

    def partitions_def(self) -> dg.DynamicPartitionsDefinition:
        return dg.DynamicPartitionsDefinition(name=self.partitions_name)
