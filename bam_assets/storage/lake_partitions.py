"""Writing a DuckLake: a partition's reads staged as one Parquet file, then one short transaction
that swaps them in, retried while other writers commit.

Why staged, not one INSERT as in the embedded file: DuckLake checks conflicts per table, so a
transaction that deleted a key's rows fails at COMMIT if any other writer inserted into the same
table meanwhile. Holding that transaction open for the whole file would make every re-ingest lose
to every concurrent ingest, and the failure would come after the one-shot stream was consumed.
Staged first, the transaction is metadata only (0.15-0.4 s measured), and a retry repeats that,
never the reading of the file. Writing the file with ``COPY … TO`` also keeps memory flat, where an
INSERT into the lake grew with the row count (714 MB at 1M reads).
"""

import hashlib
import logging
import os
import random
import re
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import duckdb

from bam_assets.model.tables import TableNames, TableSpec
from bam_assets.storage.connection import duckdb_config
from bam_assets.storage.lake_catalog import ALIAS, LakeLocation
from bam_assets.storage.lake_extensions import OFFLINE
from bam_assets.storage.partitions import ProgressStream, create_keyed_table
from bam_assets.storage.schema import reads_select_sql, table_exists
from bam_assets.storage.store import StoreBusyError

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Rows per Parquet row group of a staged partition, which DuckDB's writer buffers and compresses
# at once. A whole `bam-assets ingest` of 0.5M 150-bp reads into a lake peaked at 514 MB with
# pyarrow's writer and 65,536 rows, 431 MB with 16,384 rows, and 393 MB with DuckDB's writer and
# 16,384 rows (its file 6% smaller than pyarrow's); smaller groups also let readers skip more.
ROW_GROUP_ROWS = 16_384
# zstd halves the size against DuckLake's default snappy for about 3 s of CPU per million reads.
PARQUET_COMPRESSION = "zstd"
PARQUET_COMPRESSION_LEVEL = 3
# Rows of the small tables (files, cycle sums, summaries) up to this many per insert are kept in
# the catalog database ("data inlining") instead of one tiny Parquet file each.
INLINED_ROWS = 2_000
# A staged file is written under this suffix and renamed just before its transaction: DuckLake's
# orphan cleanup only considers *.parquet, so it can never delete a file still being written.
PARTIAL_SUFFIX = ".tmp"

# DuckLake's words when another snapshot committed a conflicting change after this transaction
# began, or when its own retries of a commit lost the race for the next snapshot id to other
# writers every time (ducklake_max_retry_count, 10: seen with 16 writers committing at once, as
# duckdb/ducklake#1283 reports). Either way the catalog's transaction was rolled back and left
# nothing behind, so the whole transaction is tried again.
_CONFLICT = re.compile(
    r"Transaction conflict|Exceeded the maximum retry count|"
    r"duplicate key value violates unique constraint \"ducklake_",
    re.IGNORECASE,
)


def is_conflict(error: BaseException) -> bool:
    return isinstance(error, duckdb.TransactionException) and bool(_CONFLICT.search(str(error)))


class RetriedTransactions:
    """BEGIN; body; COMMIT on one connection, retried with jittered backoff while it conflicts
    with other writers, for at most ``timeout_seconds`` (then StoreBusyError).

    Other errors are not retried. After a COMMIT that failed any other way (a lost catalog
    connection) nobody knows whether the snapshot was written: ``commit_outcome_unknown`` says so,
    and the caller must not delete what the transaction registered.
    """

    def __init__(
        self, connection: duckdb.DuckDBPyConnection, timeout_seconds: float, log: logging.Logger
    ) -> None:
        self.connection = connection
        self.timeout_seconds = timeout_seconds
        self.log = log
        self.attempts = 0
        self.commit_outcome_unknown = False

    def run(self, what: str, body: Callable[[], T]) -> T:
        deadline = time.monotonic() + self.timeout_seconds
        delay = 0.05
        while True:
            self.attempts += 1
            try:
                self.connection.execute("BEGIN TRANSACTION")
                result = body()
            except BaseException as error:
                self._rollback()
                if not is_conflict(error):
                    raise
            else:
                try:
                    self.connection.execute("COMMIT")
                    return result
                except BaseException as error:
                    self._rollback()
                    if not is_conflict(error):
                        self.commit_outcome_unknown = True
                        raise
            if time.monotonic() > deadline:
                raise StoreBusyError(
                    f"{what}: other writers kept committing conflicting changes for "
                    f"{self.timeout_seconds:.0f} s ({self.attempts} attempts)"
                )
            pause = random.uniform(0, delay)
            self.log.info("%s conflicted with another writer; retrying in %.2f s", what, pause)
            time.sleep(pause)
            delay = min(delay * 2, 2.0)

    def _rollback(self) -> None:
        try:
            self.connection.execute("ROLLBACK")
        except duckdb.Error:
            pass  # a failed COMMIT has ended the transaction already ("no transaction is active")


def ensure_keyed_table(
    connection: duckdb.DuckDBPyConnection,
    table: str,
    spec: TableSpec,
    retrying: RetriedTransactions,
) -> None:
    """Creates a keyed table (a side table or a summary) unless it exists; a concurrent creation
    of the same table conflicts, and the retry finds it."""
    if not table_exists(connection, table):
        retrying.run(f"create {table}", lambda: create_keyed_table(connection, table, spec))


def _sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def stage_reads(
    lake: LakeLocation,
    tables: TableNames,
    key: str,
    stream: ProgressStream,
    memory_limit: str | None,
) -> Path | None:
    """Writes the partition's rows (every stored column: the stream's, the key, ``read_length``
    and the flag columns, by the same SQL as the embedded store) into one zstd Parquet file in
    the reads table's folder of the data path, outside any transaction. Returns the file, or None
    for a file without records. Errors remove the partial file; the stream's own error (the
    alignment file that could not be read) is re-raised as itself."""
    folder = lake.data_dir / "main" / tables.reads
    folder.mkdir(parents=True, exist_ok=True)
    digest = hashlib.blake2b(key.encode(), digest_size=6).hexdigest()
    staged = folder / f"bam-{digest}-{uuid.uuid4().hex}.parquet"
    partial = staged.with_name(staged.name + PARTIAL_SUFFIX)
    # DuckDB computes the derived columns one batch at a time on this thread (a bare Arrow C
    # stream, as in the embedded store) and writes them as Parquet, a row group at a time.
    connection = duckdb.connect(":memory:", config={**OFFLINE, **duckdb_config(1, memory_limit)})
    try:
        connection.register("batch", stream.reader.__arrow_c_stream__())
        connection.execute(
            f"COPY ({reads_select_sql('batch', lake=True)}) TO {_sql_literal(str(partial))} "
            f"(FORMAT parquet, "
            f"COMPRESSION {PARQUET_COMPRESSION}, COMPRESSION_LEVEL {PARQUET_COMPRESSION_LEVEL}, "
            f"ROW_GROUP_SIZE {ROW_GROUP_ROWS})",
            {"key": key},
        )
    except BaseException as error:
        partial.unlink(missing_ok=True)
        if isinstance(error, duckdb.Error) and stream.error is not None:
            raise stream.error from None
        raise
    finally:
        connection.close()
    if stream.read_count == 0:
        partial.unlink()
        return None
    os.replace(partial, staged)
    return staged


def add_data_file(connection: duckdb.DuckDBPyConnection, table: str, path: Path) -> None:
    """Registers a staged Parquet file as rows of ``table`` (inside the caller's transaction)."""
    connection.execute("CALL ducklake_add_data_files(?, ?, ?)", [ALIAS, table, str(path)])


def set_lake_options(connection: duckdb.DuckDBPyConnection) -> None:
    """Options of the whole lake, kept in its catalog so that every writer uses them: zstd for
    what DuckLake itself writes (compaction, inserts), and small inserts inlined."""
    connection.execute(f"CALL {ALIAS}.set_option('parquet_compression', ?)", [PARQUET_COMPRESSION])
    connection.execute(f"CALL {ALIAS}.set_option('data_inlining_row_limit', ?)", [INLINED_ROWS])


def data_files(connection: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    """The Parquet files the current snapshot of ``table`` reads."""
    return [
        row[0]
        for row in connection.execute(
            "SELECT data_file FROM ducklake_list_files(?, ?)", [ALIAS, table]
        ).fetchall()
    ]
