"""The embedded store: every table of an ingest instance in one DuckDB file.

One process writes the file at a time (DuckDB's lock); a session waits for it with backoff
(``connection.connect``). Each write is one transaction, so a reader never sees half of one.
"""

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from bam_assets.model.source_stream import SourceFile
from bam_assets.model.tables import TableNames, TableSpec
from bam_assets.storage import partitions
from bam_assets.storage.connection import connect
from bam_assets.storage.schema import ensure_schema
from bam_assets.storage.store import (
    SideTable,
    Store,
    StoreMissingError,
    StoreSession,
    StoreWriteError,
    WriteResult,
)

logger = logging.getLogger(__name__)


class DuckDBSession(StoreSession):
    def __init__(
        self, connection: duckdb.DuckDBPyConnection, tables: TableNames, location: str
    ) -> None:
        self.connection = connection
        self.tables = tables
        self.location = location

    def replace_partition(
        self,
        source: SourceFile,
        batches: pa.RecordBatchReader,
        side_tables: Sequence[SideTable] = (),
        on_batch: Callable[[int, float], None] | None = None,
    ) -> WriteResult:
        try:
            return partitions.replace_partition(
                self.connection, self.tables, self.location, source, batches, side_tables, on_batch
            )
        except duckdb.IOException as error:
            raise StoreWriteError(self.location, error) from error

    def delete_partition(self, key: str) -> None:
        partitions.delete_partition(self.connection, self.tables, key)

    def replace_partition_rows(
        self, spec: TableSpec, key: str, select_sql: str, parameters: dict[str, Any]
    ) -> int:
        return partitions.replace_partition_rows(
            self.connection, self.tables.of(spec), spec, key, select_sql, parameters
        )

    def replace_table(self, spec: TableSpec, select_sql: str) -> None:
        partitions.replace_table(self.connection, self.tables.of(spec), select_sql)


class DuckDBStore(Store):
    """One DuckDB file. ``threads`` None means every CPU the process may use; ``memory_limit``
    None means DuckDB's default (80% of RAM)."""

    def __init__(
        self,
        database: str,
        tables: TableNames,
        threads: int | None,
        memory_limit: str | None,
        lock_timeout_seconds: float,
        log: logging.Logger = logger,
    ) -> None:
        self.location = database
        self.tables = tables
        self._threads = threads
        self._memory_limit = memory_limit
        self._lock_timeout_seconds = lock_timeout_seconds
        self._log = log

    @contextmanager
    def session(self, read_only: bool = False) -> Iterator[DuckDBSession]:
        if read_only and self.location != ":memory:" and not Path(self.location).exists():
            raise StoreMissingError(f"No database at {self.location}")
        connection = connect(
            self.location,
            read_only=read_only,
            threads=self._threads,
            memory_limit=self._memory_limit,
            lock_timeout_seconds=self._lock_timeout_seconds,
            log=self._log,
        )
        try:
            if not read_only:
                ensure_schema(connection, self.tables, self.location)
            yield DuckDBSession(connection, self.tables, self.location)
        finally:
            connection.close()
