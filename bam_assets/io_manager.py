"""A streaming IO manager: writes the ``reads`` asset's Arrow stream into DuckDB chunk by chunk."""

from dataclasses import dataclass

import dagster as dg
import pyarrow as pa
from pydantic import Field

from bam_assets import duckdb_store
from bam_assets.alignment_reader import AlignmentReadError
from bam_assets.source_stream import source_of

_DUCKDB_TYPES = {
    pa.int32(): "INTEGER",
    pa.int64(): "BIGINT",
    pa.string(): "VARCHAR",
}


@dataclass(frozen=True)
class PartitionHandle:
    """What downstream assets receive instead of rows: where one partition's reads are."""

    database: str
    reads_table: str
    files_table: str
    key: str


class StreamingDuckDBIOManager(dg.ConfigurableIOManager):
    """Stores each partition of ``reads`` in a DuckDB file, replacing it atomically.

    The stream is consumed one Arrow batch at a time inside a single transaction, so memory stays
    bounded by the chunk size and a failure anywhere leaves the previous rows in place.
    """

    database: str = Field(description="Path of the DuckDB file.")
    reads_table: str = Field(default="reads", description="Table of alignment records.")
    files_table: str = Field(default="files", description="Table of ingested files.")
    threads: int | None = Field(
        default=1,
        description="DuckDB threads while inserting. One stream is inserted sequentially, so more "
        "threads only contend (2 CPUs, 1M reads: 4.5 s with 2 threads, 3.3 s with 1 and the "
        "reader decoding ahead on the other CPU).",
    )
    memory_limit: str | None = Field(
        default="64MB", description="DuckDB memory_limit; DuckDB spills to disk beyond it."
    )
    lock_timeout_seconds: float = Field(
        default=300.0, description="How long to wait for another process's write lock."
    )
    progress_every_chunks: int = Field(
        default=50, description="Log progress every this many chunks.", gt=0
    )

    def store_config(self) -> duckdb_store.StoreConfig:
        return duckdb_store.StoreConfig(
            database=self.database,
            reads_table=self.reads_table,
            files_table=self.files_table,
            threads=self.threads,
            memory_limit=self.memory_limit,
            lock_timeout_seconds=self.lock_timeout_seconds,
        )

    def handle_output(self, context: dg.OutputContext, obj: pa.RecordBatchReader) -> None:
        source = source_of(obj)
        config = self.store_config()
        chunks = 0

        def log_progress(read_count: int, seconds: float) -> None:
            nonlocal chunks
            chunks += 1
            if chunks % self.progress_every_chunks == 0:
                context.log.info(
                    f"{source.key}: {read_count:,} reads so far, "
                    f"{read_count / max(seconds, 1e-9):,.0f} reads/s"
                )

        with duckdb_store.connect(config) as connection:
            try:
                duckdb_store.ensure_schema(connection, config)
            except duckdb_store.OutdatedSchemaError as error:
                raise dg.Failure(
                    description=str(error), metadata={"database": self.database}
                ) from error
            try:
                result = duckdb_store.replace_partition(
                    connection, config, source, obj, on_batch=log_progress
                )
            except AlignmentReadError as error:
                raise dg.Failure(
                    description=f"{error}. The partition's previous rows were kept.",
                    metadata={"path": source.path, "cause": error.cause},
                ) from error
            except duckdb_store.DatabaseWriteError as error:
                raise dg.Failure(
                    description=f"{error}. Nothing was committed for {source.path}: the "
                    "partition's previous rows were kept.",
                    metadata={"path": source.path, "database": self.database},
                ) from error
        context.add_output_metadata(
            {
                "dagster/partition_row_count": result.read_count,
                "dagster/column_schema": _column_schema(obj.schema),
                "path": dg.MetadataValue.path(source.path),
                "format": source.format,
                "bytes_read": source.size_bytes,
                "seconds": round(result.seconds, 3),
                "reads_per_second": round(result.read_count / max(result.seconds, 1e-9)),
                "fingerprint": source.fingerprint,
                "database": self.database,
            }
        )

    def load_input(self, context: dg.InputContext) -> PartitionHandle:
        return PartitionHandle(
            database=self.database,
            reads_table=self.reads_table,
            files_table=self.files_table,
            key=context.asset_partition_key,
        )


def _column_schema(schema: pa.Schema) -> dg.TableSchema:
    return dg.TableSchema(
        columns=[
            dg.TableColumn(name=field.name, type=_DUCKDB_TYPES.get(field.type, str(field.type)))
            for field in schema
        ]
    )
