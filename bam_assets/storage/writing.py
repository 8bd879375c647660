"""What the one write path puts into a partition's transaction besides the staged reads: the
stream wrapper that counts, observes and keeps the first error; the side tables' rows; the files
row; the staged file's registration."""

import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pyarrow as pa

from bam_assets.model.source_stream import SourceFile
from bam_assets.storage.catalogs import current_lake
from bam_assets.storage.store import SideTable


class ProgressStream:
    """Wraps a record batch stream to count rows, feed the side tables, report progress and keep
    the first error.

    DuckDB consumes the stream inside one statement and turns a Python exception raised by the
    stream into its own error type; keeping the original lets the caller re-raise the real cause
    (for example the file that could not be decoded).
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


def replace_side_rows(
    connection: duckdb.DuckDBPyConnection, table: str, key: str, rows: pa.Table
) -> None:
    """Inside the partition's transaction: the rows of ``key`` in ``table`` become ``rows``
    (every column after the key)."""
    connection.execute(f"DELETE FROM {table} WHERE key = ?", [key])
    connection.register("side_rows", rows)
    try:
        connection.execute(f"INSERT INTO {table} SELECT $key, * FROM side_rows", {"key": key})
    finally:
        connection.unregister("side_rows")


FILES_COLUMNS = (
    "(key, path, format, size_bytes, mtime, fingerprint, header_text, reference_names, "
    "reference_lengths, read_count, ingested_at, ingest_seconds)"
)
FILES_VALUES = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"


def files_row(
    source: SourceFile, read_count: int, seconds: float, ingested_at: datetime | None = None
) -> list[object]:
    """The files table's row of a partition, in ``FILES_COLUMNS`` order (ingested now unless
    ``ingested_at`` says when)."""
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
        ingested_at or datetime.now(timezone.utc),
        seconds,
    ]


def add_data_file(connection: duckdb.DuckDBPyConnection, table: str, path: Path) -> None:
    """Registers a staged Parquet file as rows of ``table`` (inside the caller's transaction)."""
    connection.execute(
        "CALL ducklake_add_data_files(?, ?, ?)", [current_lake(connection), table, str(path)]
    )


def data_files(connection: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    """The Parquet files the current snapshot of ``table`` reads."""
    return [
        row[0]
        for row in connection.execute(
            "SELECT data_file FROM ducklake_list_files(?, ?)", [current_lake(connection), table]
        ).fetchall()
    ]
