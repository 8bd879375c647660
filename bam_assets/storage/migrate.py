"""Moving a store of the previous release (one DuckDB file with a ``reads`` table) into a lake:
every partition through the one write path (its reads staged as a Parquet file, then its side
rows and its files row, as they were, in one transaction), the summary tables whole, and then
every table's rows per key counted on both sides. The old file is only read.

Running it again replaces what an interrupted run wrote: each partition is replaced whole.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

from bam_assets.model.reads_schema import READS_SCHEMA
from bam_assets.model.tables import TableNames, TableSpec
from bam_assets.storage.config import StoreConfig, open_store
from bam_assets.storage.errors import StoreConfigError
from bam_assets.storage.lake import LakeSession
from bam_assets.storage.previous_release import is_duckdb_file, reads_tables
from bam_assets.storage.schema import table_names
from bam_assets.storage.writing import ProgressStream

logger = logging.getLogger(__name__)

# Rows per batch read from the old file (its records go to the staged Parquet file a batch at a
# time, so memory stays flat whatever the partition's size).
_BATCH_ROWS = 16_384


@dataclass(frozen=True)
class MigratedTable:
    """One table of one instance: its rows in the old file and in the lake (equal)."""

    table: str
    rows: int


@dataclass(frozen=True)
class MigrationResult:
    partitions: int
    reads: int
    tables: tuple[MigratedTable, ...]


class MigrationError(RuntimeError):
    """The lake's rows differ from the old file's after the copy."""


def migrate(
    old: Path,
    config: StoreConfig,
    progress: Callable[[str], None],
    log: logging.Logger = logger,
) -> MigrationResult:
    """Copies every table of every instance of the DuckDB file ``old`` into the store of
    ``config`` and checks the row counts per table and key; ``progress`` gets a line per
    partition."""
    if not is_duckdb_file(old):
        raise StoreConfigError(f"{old} is not a DuckDB file of an earlier bam-assets")
    try:
        instances = reads_tables(old)
        source = duckdb.connect(str(old), read_only=True)
    except duckdb.Error as error:
        raise StoreConfigError(f"Cannot read {old}: {' '.join(str(error).split())}") from error
    if not instances:
        raise StoreConfigError(f"{old} holds no reads table: nothing to migrate")
    partitions = reads = 0
    copied: list[MigratedTable] = []
    try:
        for reads_table in instances:
            tables = TableNames(reads_table.removesuffix("reads"))
            with open_store(config, tables, log).session() as session:
                counts = _copy_instance(source, tables, session, progress)
            partitions += counts[0]
            reads += counts[1]
            copied += _verify(source, tables, config, log)
    finally:
        source.close()
    return MigrationResult(partitions, reads, tuple(copied))


def _old_tables(source: duckdb.DuckDBPyConnection) -> list[str]:
    return table_names(source)


def _columns_sql(source: duckdb.DuckDBPyConnection, table: str) -> str:
    """The column definitions of ``table`` after its key, as ``TableSpec.columns``."""
    rows = source.execute(
        "SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = ? "
        "AND column_name <> 'key' AND schema_name = 'main' ORDER BY column_index",
        [table],
    ).fetchall()
    return ", ".join(f"{name} {data_type}" for name, data_type in rows)


def _copy_instance(
    source: duckdb.DuckDBPyConnection,
    tables: TableNames,
    session: LakeSession,
    progress: Callable[[str], None],
) -> tuple[int, int]:
    old_tables = _old_tables(source)
    side_tables = sorted(t for t in old_tables if t.startswith(f"{tables.prefix}reads_"))
    for table in side_tables:
        spec = TableSpec(table.removeprefix(tables.prefix), _columns_sql(source, table))
        session.ensure_keyed_table(table, spec)
    files = source.execute(f"SELECT * FROM {tables.files} ORDER BY key").to_arrow_table()
    columns = ", ".join(READS_SCHEMA.names)
    reads = 0
    for row in files.to_pylist():
        key = row["key"]
        batches = source.execute(
            f"SELECT {columns} FROM {tables.reads} WHERE key = ? ORDER BY rec_no", [key]
        ).to_arrow_reader(_BATCH_ROWS)
        stream = ProgressStream(
            pa.RecordBatchReader.from_batches(READS_SCHEMA, _cast(batches)), (), None
        )

        def side_rows(key: str = key) -> list[tuple[str, pa.Table]]:
            return [
                (
                    table,
                    source.execute(
                        f"SELECT * EXCLUDE (key) FROM {table} WHERE key = ?", [key]
                    ).to_arrow_table(),
                )
                for table in side_tables
            ]

        def files_row(read_count: int, seconds: float, row: dict = row) -> list[object]:
            if read_count != row["read_count"]:
                raise MigrationError(
                    f"{row['key']}: {read_count} reads copied, its files row says "
                    f"{row['read_count']}"
                )
            return [row[name] for name in files.column_names]

        result = session.write_partition(key, stream, side_rows, files_row)
        reads += result.read_count
        progress(f"{key}\t{result.read_count} reads\t{result.seconds:.2f} s")
    for table in old_tables:
        if table.startswith(f"{tables.prefix}read_stats_"):
            rows = source.execute(f"SELECT * FROM {table}").to_arrow_table()
            session.connection.register("migrated_rows", rows)
            try:
                session.replace_table(
                    TableSpec(table.removeprefix(tables.prefix), ""), "SELECT * FROM migrated_rows"
                )
            finally:
                session.connection.unregister("migrated_rows")
    return files.num_rows, reads


def _cast(batches: pa.RecordBatchReader):
    for batch in batches:
        yield batch.cast(READS_SCHEMA) if batch.schema != READS_SCHEMA else batch


def _verify(
    source: duckdb.DuckDBPyConnection,
    tables: TableNames,
    config: StoreConfig,
    log: logging.Logger,
) -> list[MigratedTable]:
    """Rows per key of every table of the instance, old against new, in a fresh read session."""
    mine = [
        t
        for t in _old_tables(source)
        if t in (tables.reads, tables.files)
        or t.startswith((f"{tables.prefix}reads_", f"{tables.prefix}read_stats_"))
    ]
    verified = []
    with open_store(config, tables, log).session(read_only=True) as session:
        for table in mine:
            query = f"SELECT key, count(*) FROM {table} GROUP BY key ORDER BY key"
            old_rows = source.execute(query).fetchall()
            new_rows = session.connection.execute(query).fetchall()
            if old_rows != new_rows:
                raise MigrationError(
                    f"{table}: the lake's rows per key differ from the old file's "
                    f"({sum(n for _, n in new_rows)} against {sum(n for _, n in old_rows)})"
                )
            verified.append(MigratedTable(table, sum(n for _, n in old_rows)))
    return verified
