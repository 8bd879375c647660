"""The shared store: every table of an ingest instance in a DuckLake, a Postgres catalog and
Parquet files on a shared folder, written by many processes on many machines at once.

Same tables, columns and macros as the embedded file. Replacing a partition (its reads, side
table rows and files row) is one DuckLake snapshot: a reader sees the old partition or the new
one. Of two writers of one partition the last to commit wins, whole. A read-only session pins one
snapshot for all its statements, so a header and its records always belong together.
"""

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import duckdb
import pyarrow as pa

from bam_assets.model.source_stream import SourceFile
from bam_assets.model.tables import TableNames, TableSpec
from bam_assets.storage import lake_maintenance
from bam_assets.storage.lake_catalog import LakeLocation, connect
from bam_assets.storage.lake_partitions import (
    RetriedTransactions,
    add_data_file,
    ensure_keyed_table,
    set_lake_options,
    stage_reads,
)
from bam_assets.storage.partitions import (
    FILES_COLUMNS,
    FILES_VALUES,
    ProgressStream,
    files_row,
    replace_side_rows,
)
from bam_assets.storage.schema import (
    TAG_MACROS,
    check_side_table,
    check_stored_columns,
    comment_reads_columns,
    files_table_sql,
    reads_table_sql,
    table_exists,
    table_names,
)
from bam_assets.storage.store import (
    SideTable,
    Store,
    StoreSession,
    StoreWriteError,
    WriteResult,
)

logger = logging.getLogger(__name__)


class DuckLakeSession(StoreSession):
    def __init__(
        self,
        connection: duckdb.DuckDBPyConnection,
        tables: TableNames,
        lake: LakeLocation,
        memory_limit: str | None,
        retry_seconds: float,
        log: logging.Logger,
    ) -> None:
        self.connection = connection
        self.tables = tables
        self.lake = lake
        self.location = str(lake)
        self._memory_limit = memory_limit
        self._retry_seconds = retry_seconds
        self._log = log

    def _retrying(self) -> RetriedTransactions:
        return RetriedTransactions(self.connection, self._retry_seconds, self._log)

    def replace_partition(
        self,
        source: SourceFile,
        batches: pa.RecordBatchReader,
        side_tables: Sequence[SideTable] = (),
        on_batch: Callable[[int, float], None] | None = None,
    ) -> WriteResult:
        """Stages the reads as one Parquet file, then in one retried transaction deletes the
        key's rows from the reads, side and files tables, registers the file and inserts the
        side rows and the files row: one snapshot. The staged file is deleted on any failure
        unless a COMMIT failed in a way that leaves its outcome unknown (then orphan cleanup
        takes it, if it was not committed)."""
        started = time.monotonic()
        retrying = self._retrying()
        for side_table in side_tables:
            table = self.tables.of(side_table.table)
            check_side_table(self.connection, self.tables, table, self.location)
            ensure_keyed_table(self.connection, table, side_table.table, retrying)
        stream = ProgressStream(batches, side_tables, on_batch)
        try:
            staged = stage_reads(self.lake, self.tables, source.key, stream, self._memory_limit)
        except OSError as error:
            if stream.error is not None:
                raise
            raise StoreWriteError(self.location, error) from error
        key = source.key

        def swap() -> None:
            self.connection.execute(f"DELETE FROM {self.tables.reads} WHERE key = ?", [key])
            if staged is not None:
                add_data_file(self.connection, self.tables.reads, staged)
            for side_table in side_tables:
                replace_side_rows(
                    self.connection, self.tables.of(side_table.table), key, side_table
                )
            self.connection.execute(f"DELETE FROM {self.tables.files} WHERE key = ?", [key])
            self.connection.execute(
                f"INSERT INTO {self.tables.files} {FILES_COLUMNS} VALUES {FILES_VALUES}",
                files_row(source, stream.read_count, time.monotonic() - started),
            )

        try:
            retrying.run(f"Replacing partition {key}", swap)
        except BaseException:
            if staged is not None and not retrying.commit_outcome_unknown:
                staged.unlink(missing_ok=True)
            raise
        return WriteResult(read_count=stream.read_count, seconds=time.monotonic() - started)

    def delete_partition(self, key: str) -> None:
        keyed = [table for table in table_names(self.connection) if self.tables.keyed(table)]

        def delete() -> None:
            for table in keyed:
                self.connection.execute(f"DELETE FROM {table} WHERE key = ?", [key])

        self._retrying().run(f"Deleting partition {key}", delete)

    def replace_partition_rows(
        self, spec: TableSpec, key: str, select_sql: str, parameters: dict[str, Any]
    ) -> int:
        table = self.tables.of(spec)
        retrying = self._retrying()
        ensure_keyed_table(self.connection, table, spec, retrying)

        def replace() -> int:
            self.connection.execute(f"DELETE FROM {table} WHERE key = ?", [key])
            self.connection.execute(f"INSERT INTO {table} {select_sql}", {"key": key, **parameters})
            count = self.connection.execute(
                f"SELECT count(*) FROM {table} WHERE key = ?", [key]
            ).fetchone()
            return int(count[0]) if count else 0

        return retrying.run(f"Replacing {table} rows of {key}", replace)

    def replace_table(self, spec: TableSpec, select_sql: str) -> None:
        table = self.tables.of(spec)
        self._retrying().run(
            f"Replacing {table}",
            lambda: self.connection.execute(f"CREATE OR REPLACE TABLE {table} AS {select_sql}"),
        )

    # Maintenance: DuckLake's own, with the margins of ``lake_maintenance``.

    def compact(self) -> lake_maintenance.MaintenanceResult:
        return lake_maintenance.compact(self.connection, self.tables, self._retrying())

    def expire_snapshots(self, older_than: timedelta) -> lake_maintenance.MaintenanceResult:
        return lake_maintenance.expire_snapshots(self.connection, older_than)

    def delete_old_files(self, older_than: timedelta) -> lake_maintenance.MaintenanceResult:
        return lake_maintenance.delete_old_files(self.connection, older_than)

    def delete_orphans(self, older_than: timedelta) -> lake_maintenance.MaintenanceResult:
        return lake_maintenance.delete_orphans(
            self.connection, self.lake, older_than, self._retry_seconds
        )


def _ensure_schema(
    connection: duckdb.DuckDBPyConnection,
    tables: TableNames,
    location: str,
    retrying: RetriedTransactions,
) -> None:
    """Creates the reads and files tables, the tag macros and the lake's options unless they
    exist (no snapshot then); processes creating them at once conflict, and the retry finds
    them. Tables made by an earlier bam-assets are refused in words."""
    check_stored_columns(connection, tables, location)
    if table_exists(connection, tables.reads) and table_exists(connection, tables.files):
        return

    def create() -> None:
        connection.execute(reads_table_sql(tables.reads, lake=True))
        comment_reads_columns(connection, tables.reads)
        connection.execute(files_table_sql(tables.files, lake=True))
        for macro in TAG_MACROS:
            connection.execute(macro)

    retrying.run(f"Creating the tables of {location}", create)
    retrying.run(f"Setting the options of {location}", lambda: set_lake_options(connection))


class DuckLakeStore(Store):
    """A DuckLake on a Postgres catalog. ``threads`` None means every CPU the process may use;
    ``retry_seconds`` bounds how long a write retries while other writers' commits conflict."""

    def __init__(
        self,
        lake: LakeLocation,
        tables: TableNames,
        threads: int | None,
        memory_limit: str | None,
        retry_seconds: float,
        log: logging.Logger = logger,
    ) -> None:
        self.lake = lake
        self.location = str(lake)
        self.tables = tables
        self._threads = threads
        self._memory_limit = memory_limit
        self._retry_seconds = retry_seconds
        self._log = log

    @contextmanager
    def session(self, read_only: bool = False) -> Iterator[DuckLakeSession]:
        """Checks the configuration (``lake_catalog.preflight``) and attaches the lake; a writable
        session creates the tables, a read-only one begins the transaction that pins its
        snapshot."""
        with connect(self.lake, read_only, self._threads, self._memory_limit) as connection:
            session = DuckLakeSession(
                connection,
                self.tables,
                self.lake,
                self._memory_limit,
                self._retry_seconds,
                self._log,
            )
            if read_only:
                connection.execute("BEGIN TRANSACTION")
            else:
                _ensure_schema(connection, self.tables, self.location, session._retrying())
            yield session
