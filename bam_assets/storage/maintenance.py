"""Keeping a DuckLake small: expire old snapshots, delete the files nothing references any more
and the leftovers of killed writers, merge small files. Each step says what it removed.

Margins, because DuckLake cannot tell a writer's file from a leftover:

- ``ducklake_delete_orphaned_files`` deletes every ``*.parquet`` of the data path that no
  committed snapshot references and whose mtime is older than ``older_than``. A file a writer
  has registered but not yet committed looks exactly like that, and deleting it leaves the lake
  pointing at nothing (reproduced). A staged file is renamed to ``*.parquet`` right before its
  transaction, which lasts at most the writers' retry budget, so the margin must exceed that
  budget by far: ``orphan_margin`` is checked against it.
- ``ducklake_cleanup_old_files`` deletes files of expired snapshots; a reader still on an old
  snapshot may scan them, hence a margin too.
- ``ducklake_merge_adjacent_files`` conflicts with concurrent deletes, so it is retried like a
  write. The reads table is never merged: each partition is one file there, which a re-ingest
  or a purge drops whole (its deletes are never inlined: ``schema``); merged, it would get
  delete files instead. A dropped file is deleted from disk by ``cleanup_old_files`` once the
  snapshots that read it have expired.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb

from bam_assets.model.tables import TableNames
from bam_assets.storage.catalogs import current_lake
from bam_assets.storage.retry import RetriedTransactions
from bam_assets.storage.schema import table_names
from bam_assets.storage.staging import PARTIAL_SUFFIX


@dataclass(frozen=True)
class MaintenanceResult:
    """What one step removed or rewrote."""

    step: str
    count: int
    seconds: float


def _timed(step: str, work: Callable[[], int]) -> MaintenanceResult:
    started = time.monotonic()
    count = work()
    return MaintenanceResult(step, count, time.monotonic() - started)


def compact(
    connection: duckdb.DuckDBPyConnection, tables: TableNames, retrying: RetriedTransactions
) -> MaintenanceResult:
    """Merges the small files of every keyed table but the reads (summaries, cycle sums, files)."""

    def merge() -> int:
        merged = 0
        for table in table_names(connection):
            if tables.keyed(table) and table != tables.reads:
                merged += len(
                    retrying.run(
                        f"merge {table}",
                        lambda table=table: connection.execute(
                            "CALL ducklake_merge_adjacent_files(?, ?)",
                            [current_lake(connection), table],
                        ).fetchall(),
                    )
                )
        return merged

    return _timed("merge_adjacent_files", merge)


def _older_than(
    connection: duckdb.DuckDBPyConnection, procedure: str, older_than: timedelta
) -> int:
    """Runs DuckLake's ``procedure`` on the lake for what is older than ``older_than``; returns
    how many rows (snapshots or files) it reports."""
    cutoff = datetime.now(timezone.utc) - older_than
    return len(
        connection.execute(
            f"CALL {procedure}(?, older_than => ?)", [current_lake(connection), cutoff]
        ).fetchall()
    )


def expire_snapshots(
    connection: duckdb.DuckDBPyConnection, older_than: timedelta
) -> MaintenanceResult:
    """Forgets snapshots older than ``older_than`` (time travel to them ends there)."""
    return _timed(
        "expire_snapshots",
        lambda: _older_than(connection, "ducklake_expire_snapshots", older_than),
    )


def delete_old_files(
    connection: duckdb.DuckDBPyConnection, older_than: timedelta
) -> MaintenanceResult:
    """Deletes the files of expired snapshots once they are older than ``older_than``."""
    return _timed(
        "cleanup_old_files",
        lambda: _older_than(connection, "ducklake_cleanup_old_files", older_than),
    )


def delete_orphans(
    connection: duckdb.DuckDBPyConnection,
    data_dir: Path,
    older_than: timedelta,
    writer_budget_seconds: float,
) -> MaintenanceResult:
    """Deletes what killed writers left: staged files never renamed (``*.parquet.tmp``, which
    DuckLake does not look at) and ``*.parquet`` files no snapshot references, both once their
    mtime is older than ``older_than``, which must exceed a writer's commit budget by far."""
    if older_than.total_seconds() < 2 * writer_budget_seconds + 3600:
        raise ValueError(
            f"An orphan margin of {older_than} could delete the file of a writer that is still "
            f"committing (they retry for up to {writer_budget_seconds:.0f} s): use at least "
            "twice that plus an hour"
        )

    def delete() -> int:
        cutoff = time.time() - older_than.total_seconds()
        partials = 0
        for path in data_dir.glob(f"**/*.parquet{PARTIAL_SUFFIX}"):
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    partials += 1
            except FileNotFoundError:
                pass  # another maintenance run took it
        return partials + _older_than(connection, "ducklake_delete_orphaned_files", older_than)

    return _timed("delete_orphaned_files", delete)
