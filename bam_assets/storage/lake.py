"""The store, whichever catalog it has: every table of an ingest instance in a DuckLake, written
by one code path.

Replacing a partition stages its reads as one Parquet file outside any transaction
(``staging``), then, holding the partition key's lock in the catalog, swaps it in by one short
transaction (retried while it conflicts with other writers): delete the key's reads, side rows
and files row, register the file, insert the side rows and the files row, commit. That is one
DuckLake snapshot: a reader sees the old partition or the new one. The key's lock makes two
writers of one partition take turns, so the second deletes what the first committed and one
whole copy remains, even on a first ingest (where the DELETE of a key with no rows would
conflict with nothing). A read-only session pins one snapshot for all its statements, so a
header and its records always belong together.
"""

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from bam_assets.model.source_stream import SourceFile
from bam_assets.model.tables import TableNames, TableSpec
from bam_assets.storage import maintenance
from bam_assets.storage.catalogs import Catalog, attach, check_data_path, client_statements
from bam_assets.storage.connection import in_memory, lake_connection
from bam_assets.storage.errors import StoreConfigError, StoreWriteError, is_disk_full
from bam_assets.storage.extensions import load_extensions
from bam_assets.storage.retry import RetriedTransactions
from bam_assets.storage.schema import (
    check_side_table,
    ensure_schema,
    keyed_table_sql,
    table_exists,
    table_names,
)
from bam_assets.storage.staging import stage_reads
from bam_assets.storage.store import SideTable, Store, StoreSession, WriteResult
from bam_assets.storage.writing import (
    FILES_COLUMNS,
    FILES_VALUES,
    ProgressStream,
    add_data_file,
    files_row,
    replace_side_rows,
)

logger = logging.getLogger(__name__)

# The rows of each side table of a partition: (table, rows after the key).
SideRows = Callable[[], list[tuple[str, pa.Table]]]


class LakeSession(StoreSession):
    def __init__(
        self,
        connection: duckdb.DuckDBPyConnection,
        tables: TableNames,
        lake: "Lake",
    ) -> None:
        self.connection = connection
        self.tables = tables
        self.location = lake.location
        self._lake = lake

    def _transactions(self) -> RetriedTransactions:
        return RetriedTransactions(self.connection, self._lake.retry_seconds, self._lake.log)

    def _key_lock(self, key: str) -> AbstractContextManager[None]:
        return self._lake.catalog.key_lock(
            self.connection, key, self._lake.retry_seconds, self._lake.log
        )

    def ensure_keyed_table(self, table: str, spec: TableSpec) -> None:
        """Creates a keyed table (a side table or a summary) unless it exists; a concurrent
        creation of the same table conflicts, and the retry finds it."""
        if not table_exists(self.connection, table):
            self._transactions().run(
                f"Creating {table}", lambda: self.connection.execute(keyed_table_sql(table, spec))
            )

    def replace_partition(
        self,
        source: SourceFile,
        batches: pa.RecordBatchReader,
        side_tables: Sequence[SideTable] = (),
        on_batch: Callable[[int, float], None] | None = None,
    ) -> WriteResult:
        for side_table in side_tables:
            table = self.tables.of(side_table.table)
            check_side_table(self.connection, self.tables, table, self.location)
            self.ensure_keyed_table(table, side_table.table)
        stream = ProgressStream(batches, side_tables, on_batch)
        return self.write_partition(
            source.key,
            stream,
            lambda: [(self.tables.of(s.table), s.rows()) for s in side_tables],
            lambda read_count, seconds: files_row(source, read_count, seconds),
        )

    def write_partition(
        self,
        key: str,
        stream: ProgressStream,
        side_rows: SideRows,
        files_row_of: Callable[[int, float], list[object]],
    ) -> WriteResult:
        """The one write path: stages the stream's reads as one Parquet file, then, holding the
        key's lock, in one retried transaction deletes the key's rows from the reads, side and
        files tables, registers the file and inserts the side rows and the files row
        (``files_row_of(read_count, seconds)``). The staged file is deleted on any failure unless
        a COMMIT failed in a way that leaves its outcome unknown (then the orphan cleanup takes
        it, if it was not committed)."""
        started = time.monotonic()
        try:
            staged = stage_reads(
                self._lake.data_dir, self.tables, key, stream, self._lake.memory_limit
            )
        except (OSError, duckdb.IOException) as error:
            if stream.error is not None:
                raise
            raise StoreWriteError(self.location, error) from error

        def swap() -> None:
            self.connection.execute(f"DELETE FROM {self.tables.reads} WHERE key = ?", [key])
            if staged is not None:
                add_data_file(self.connection, self.tables.reads, staged)
            for table, rows in side_rows():
                replace_side_rows(self.connection, table, key, rows)
            self.connection.execute(f"DELETE FROM {self.tables.files} WHERE key = ?", [key])
            self.connection.execute(
                f"INSERT INTO {self.tables.files} {FILES_COLUMNS} VALUES {FILES_VALUES}",
                files_row_of(stream.read_count, time.monotonic() - started),
            )

        transactions = self._transactions()
        try:
            with self._key_lock(key):
                transactions.run(f"Replacing partition {key}", swap)
        except BaseException as error:
            if staged is not None and not transactions.commit_outcome_unknown:
                staged.unlink(missing_ok=True)
            if isinstance(error, duckdb.Error) and is_disk_full(error):
                raise StoreWriteError(self.location, error) from error
            raise
        return WriteResult(read_count=stream.read_count, seconds=time.monotonic() - started)

    def delete_partition(self, key: str) -> None:
        keyed = [table for table in table_names(self.connection) if self.tables.keyed(table)]

        def delete() -> None:
            for table in keyed:
                self.connection.execute(f"DELETE FROM {table} WHERE key = ?", [key])

        with self._key_lock(key):
            self._transactions().run(f"Deleting partition {key}", delete)

    def replace_partition_rows(
        self, spec: TableSpec, key: str, select_sql: str, parameters: dict[str, Any]
    ) -> int:
        table = self.tables.of(spec)
        self.ensure_keyed_table(table, spec)

        def replace() -> int:
            self.connection.execute(f"DELETE FROM {table} WHERE key = ?", [key])
            self.connection.execute(f"INSERT INTO {table} {select_sql}", {"key": key, **parameters})
            count = self.connection.execute(
                f"SELECT count(*) FROM {table} WHERE key = ?", [key]
            ).fetchone()
            return int(count[0]) if count else 0

        with self._key_lock(key):
            return self._transactions().run(f"Replacing {table} rows of {key}", replace)

    def replace_table(self, spec: TableSpec, select_sql: str) -> None:
        table = self.tables.of(spec)
        self._transactions().run(
            f"Replacing {table}",
            lambda: self.connection.execute(f"CREATE OR REPLACE TABLE {table} AS {select_sql}"),
        )

    # Maintenance: DuckLake's own, with the margins of ``maintenance``.

    def compact(self) -> maintenance.MaintenanceResult:
        return maintenance.compact(self.connection, self.tables, self._transactions())

    def expire_snapshots(self, older_than: timedelta) -> maintenance.MaintenanceResult:
        return maintenance.expire_snapshots(self.connection, older_than)

    def delete_old_files(self, older_than: timedelta) -> maintenance.MaintenanceResult:
        return maintenance.delete_old_files(self.connection, older_than)

    def delete_orphans(self, older_than: timedelta) -> maintenance.MaintenanceResult:
        return maintenance.delete_orphans(
            self.connection, self._lake.data_dir, older_than, self._lake.retry_seconds
        )


class Lake(Store):
    """A DuckLake: its ``catalog`` and its data folder ``data_dir``. ``threads`` None means every
    CPU the process may use; ``retry_seconds`` bounds how long a write waits for the key's lock
    and retries while other writers' commits conflict."""

    def __init__(
        self,
        catalog: Catalog,
        data_dir: Path | None,
        tables: TableNames,
        threads: int | None,
        memory_limit: str | None,
        retry_seconds: float,
        log: logging.Logger = logger,
    ) -> None:
        self.catalog = catalog
        self._data_dir = data_dir
        self.tables = tables
        self.threads = threads
        self.memory_limit = memory_limit
        self.retry_seconds = retry_seconds
        self.log = log
        self.location = str(catalog) if data_dir is None else _location(catalog, data_dir)

    @property
    def data_dir(self) -> Path:
        if self._data_dir is None:
            raise StoreConfigError(
                f"The store {self.catalog} needs a data path: set BAM_ASSETS_LAKE_DATA_PATH (or "
                "store.lake.data_path), a folder every machine mounts at the same path"
            )
        return self._data_dir

    def connect(self) -> duckdb.DuckDBPyConnection:
        """A DuckDB connection of the caller's own, with the lake checked and attached read-only
        as ``lake`` and in use; each statement sees the latest snapshot. The caller closes it."""
        connection = in_memory(self.threads, self.memory_limit)
        try:
            load_extensions(connection, self.catalog.extensions)
            attach(connection, self.catalog, self.data_dir, read_only=True, log=self.log)
        except BaseException:
            connection.close()
            raise
        return connection

    def client_statements(self) -> list[str]:
        """The statements a plain DuckDB client types to read this lake (``catalogs``)."""
        return client_statements(self.catalog, self.data_dir)

    @contextmanager
    def session(self, read_only: bool = False) -> Iterator[LakeSession]:
        """Checks the configuration (``catalogs.preflight``) and attaches the lake, once per
        process (the data path's marker again for every session: a share unmounted meanwhile
        is refused); a writable session creates the tables, a read-only one begins the
        transaction that pins its snapshot."""
        data_dir = self.data_dir
        with lake_connection(
            (self.catalog.ducklake_uri, data_dir, read_only),
            self.threads,
            self.memory_limit,
            self.catalog.extensions,
            lambda connection, alias: attach(
                connection, self.catalog, data_dir, read_only, self.log, alias
            ),
            lambda lake_id: check_data_path(data_dir, lake_id),
        ) as connection:
            session = LakeSession(connection, self.tables, self)
            if read_only:
                connection.execute("BEGIN TRANSACTION")
            else:
                ensure_schema(connection, self.tables, self.location, session._transactions().run)
            yield session


def _location(catalog: Catalog, data_dir: Path) -> str:
    if catalog.default_data_path() == data_dir:
        return str(catalog)
    return f"{catalog} (data {data_dir})"
