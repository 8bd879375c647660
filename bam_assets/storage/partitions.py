"""Writing the embedded store: one partition replaced or deleted in one transaction, and the
derived tables keyed by partition."""

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

import duckdb
import pyarrow as pa

from bam_assets.model.reads_schema import READS_SCHEMA
from bam_assets.model.source_stream import SourceFile
from bam_assets.model.tables import TableNames, TableSpec
from bam_assets.storage.schema import check_side_table, reads_select_sql, table_names
from bam_assets.storage.store import SideTable, WriteResult

logger = logging.getLogger(__name__)


@contextmanager
def transaction(connection: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """BEGIN … COMMIT, rolled back on any error.

    After a failed write (disk full) DuckDB may refuse even the ROLLBACK, which must not hide the
    error that is already being raised. The file itself stays consistent: DuckDB only makes a
    transaction visible at COMMIT.
    """
    connection.execute("BEGIN TRANSACTION")
    try:
        yield
        connection.execute("COMMIT")
    except BaseException:
        try:
            connection.execute("ROLLBACK")
        except duckdb.Error:
            logger.warning("ROLLBACK failed after a failed write", exc_info=True)
        raise


def _insert_sql(tables: TableNames) -> str:
    """Copies the stream and adds the key and ``read_length``."""
    columns = ", ".join(READS_SCHEMA.names)
    return f"INSERT INTO {tables.reads} (key, {columns}, read_length) {reads_select_sql('batch')}"


class ProgressStream:
    """Wraps a record batch stream to count rows, feed the side tables, report progress and keep
    the first error.

    DuckDB consumes the stream inside one INSERT statement and turns a Python exception raised by
    the stream into its own error type; keeping the original lets the caller re-raise the real
    cause (for example the file that could not be decoded).
    """

    def __init__(
        self,
        batches: pa.RecordBatchReader,
        side_tables: Sequence[SideTable],
        on_batch: Callable[[int, float], None] | None,
    ):
        self.read_count = 0
        self.error: BaseException | None = None
        self._side_tables = side_tables
        self._started = time.monotonic()
        self._on_batch = on_batch
        self.reader = pa.RecordBatchReader.from_batches(batches.schema, self._batches(batches))

    def _batches(self, batches: pa.RecordBatchReader) -> Iterator[pa.RecordBatch]:
        try:
            for batch in batches:
                yield batch
                for side_table in self._side_tables:
                    side_table.observe(batch)
                self.read_count += batch.num_rows
                if self._on_batch is not None:
                    self._on_batch(self.read_count, time.monotonic() - self._started)
        except BaseException as error:
            self.error = error
            raise


def replace_partition(
    connection: duckdb.DuckDBPyConnection,
    tables: TableNames,
    location: str,
    source: SourceFile,
    batches: pa.RecordBatchReader,
    side_tables: Sequence[SideTable],
    on_batch: Callable[[int, float], None] | None,
) -> WriteResult:
    """Replaces the partition's rows with ``batches`` in one transaction.

    The old rows are deleted, the stream is inserted by a single INSERT statement that pulls one
    batch at a time (so DuckDB writes full row groups to disk as it goes and memory stays within
    its memory_limit), the side tables' rows taken from the same batches on their way in replace
    the partition's rows there, the files row is upserted, and only then is the transaction
    committed. Any error rolls everything back, so the partition's previous rows and all other
    partitions are untouched.
    """
    started = time.monotonic()
    for side_table in side_tables:
        spec_table = tables.of(side_table.table)
        check_side_table(connection, tables, spec_table, location)
        create_keyed_table(connection, spec_table, side_table.table)
    stream = ProgressStream(batches, side_tables, on_batch)
    # A bare Arrow C stream is read one batch at a time on this thread. A RecordBatchReader is
    # wrapped by duckdb-python 1.5 in a pyarrow dataset scanner that pulls the generator on a
    # background thread and queues up to 1 GiB of batches ahead of the INSERT (peak RSS grew
    # with the file: 335 MB at 0.2M reads, 616 MB at 2.9M; flat at 310-317 MB this way).
    connection.register("batch", stream.reader.__arrow_c_stream__())
    try:
        with transaction(connection):
            connection.execute(f"DELETE FROM {tables.reads} WHERE key = ?", [source.key])
            try:
                connection.execute(_insert_sql(tables), {"key": source.key})
            except duckdb.Error:
                if stream.error is not None:
                    raise stream.error from None
                raise
            for side_table in side_tables:
                replace_side_rows(connection, tables.of(side_table.table), source.key, side_table)
            seconds = time.monotonic() - started
            connection.execute(
                f"INSERT OR REPLACE INTO {tables.files} {FILES_COLUMNS} VALUES {FILES_VALUES}",
                files_row(source, stream.read_count, seconds),
            )
    finally:
        try:
            connection.unregister("batch")
        except duckdb.Error:
            logger.debug("Could not unregister the batch stream", exc_info=True)
    return WriteResult(read_count=stream.read_count, seconds=seconds)


def replace_side_rows(
    connection: duckdb.DuckDBPyConnection, table: str, key: str, side_table: SideTable
) -> None:
    """Inside the partition's transaction: the side table's rows of ``key`` become those it
    took from the batches."""
    connection.execute(f"DELETE FROM {table} WHERE key = ?", [key])
    connection.register("side_rows", side_table.rows())
    try:
        connection.execute(f"INSERT INTO {table} SELECT $key, * FROM side_rows", {"key": key})
    finally:
        connection.unregister("side_rows")


FILES_COLUMNS = (
    "(key, path, format, size_bytes, mtime, fingerprint, header_text, reference_names, "
    "reference_lengths, read_count, ingested_at, ingest_seconds)"
)
FILES_VALUES = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"


def files_row(source: SourceFile, read_count: int, seconds: float) -> list[object]:
    """The files table's row of a partition, in ``FILES_COLUMNS`` order."""
    return [
        source.key,
        source.path,
        source.format,
        source.size_bytes,
        source.mtime,
        source.fingerprint,
        source.header_text,
        list(source.reference_names),
        list(source.reference_lengths),
        read_count,
        datetime.now(timezone.utc),
        seconds,
    ]


def delete_partition(connection: duckdb.DuckDBPyConnection, tables: TableNames, key: str) -> None:
    """Removes a partition's rows from every keyed table of the instance, in one transaction."""
    keyed = [table for table in table_names(connection) if tables.keyed(table)]
    with transaction(connection):
        for table in keyed:
            connection.execute(f"DELETE FROM {table} WHERE key = ?", [key])


def create_keyed_table(connection: duckdb.DuckDBPyConnection, table: str, spec: TableSpec) -> None:
    connection.execute(
        f"CREATE TABLE IF NOT EXISTS {table} (\n    key VARCHAR NOT NULL,\n    {spec.columns}\n)"
    )


def replace_partition_rows(
    connection: duckdb.DuckDBPyConnection,
    table: str,
    spec: TableSpec,
    key: str,
    select_sql: str,
    parameters: dict[str, Any],
) -> int:
    """Creates ``table`` if needed and replaces the rows of ``key`` with ``select_sql``'s."""
    with transaction(connection):
        create_keyed_table(connection, table, spec)
        connection.execute(f"DELETE FROM {table} WHERE key = ?", [key])
        connection.execute(f"INSERT INTO {table} {select_sql}", {"key": key, **parameters})
        count = connection.execute(f"SELECT count(*) FROM {table} WHERE key = ?", [key]).fetchone()
    return int(count[0]) if count else 0


def replace_table(connection: duckdb.DuckDBPyConnection, table: str, select_sql: str) -> None:
    """Replaces ``table`` with the rows of ``select_sql``, in one transaction."""
    with transaction(connection):
        connection.execute(f"CREATE OR REPLACE TABLE {table} AS {select_sql}")
