"""A streaming IO manager: writes the ``reads`` stream into the store chunk by chunk."""

from dataclasses import dataclass

import dagster as dg
import pyarrow as pa
from pydantic import Field

from bam_assets.model.reads_schema import READS_COLUMNS
from bam_assets.model.source_stream import SourceFile, bytes_read_of, source_of
from bam_assets.orchestration.resources import StoreResource
from bam_assets.reading.errors import AlignmentReadError
from bam_assets.stats.cycle_quality import CycleQuality
from bam_assets.storage.store import OutdatedSchemaError, StoreConfigError, StoreWriteError


@dataclass(frozen=True)
class PartitionHandle:
    """What downstream assets receive instead of rows: the store and the partition's key.

    ``with handle.store.session(read_only=True) as session`` gives a connection on which
    ``session.tables.reads`` holds the partition's rows (``WHERE key = handle.key``).
    """

    store: StoreResource
    key: str


class ReadsIOManager(dg.ConfigurableIOManager):
    """Stores each partition of ``reads``, replacing it atomically.

    The stream is consumed one Arrow batch at a time into one staged Parquet file, which one short
    transaction then swaps in, so memory stays bounded by the chunk size and a failure anywhere
    leaves the previous rows in place. The quality per cycle (``CycleQuality``) is summed from the
    same batches and stored with them, in the same transaction.
    """

    store: StoreResource
    progress_every_seconds: float = Field(
        default=10.0, description="Log progress (reads, % of the file, time left) this often.", gt=0
    )

    def handle_output(self, context: dg.OutputContext, obj: pa.RecordBatchReader) -> None:
        source = source_of(obj)
        bytes_read = 0
        next_log = self.progress_every_seconds

        def track(batches: pa.RecordBatchReader):
            nonlocal bytes_read
            for batch in batches:
                bytes_read = bytes_read_of(batch) or bytes_read
                yield batch

        def log_progress(read_count: int, seconds: float) -> None:
            nonlocal next_log
            if seconds < next_log:
                return
            next_log = seconds + self.progress_every_seconds
            context.log.info(progress_line(source, read_count, bytes_read, seconds))

        location = self.store.location
        try:
            with self.store.session() as session:
                result = session.replace_partition(
                    source,
                    pa.RecordBatchReader.from_batches(obj.schema, track(obj)),
                    side_tables=[CycleQuality()],
                    on_batch=log_progress,
                )
        except (OutdatedSchemaError, StoreConfigError) as error:
            raise dg.Failure(description=str(error), metadata={"database": location}) from error
        except AlignmentReadError as error:
            raise dg.Failure(
                description=f"{error}. The partition's previous rows were kept.",
                metadata={"path": source.path, "cause": error.cause},
            ) from error
        except StoreWriteError as error:
            raise dg.Failure(
                description=f"{error}. Nothing was committed for {source.path}: the "
                "partition's previous rows were kept.",
                metadata={"path": source.path, "database": location},
            ) from error
        context.add_output_metadata(
            {
                "dagster/partition_row_count": result.read_count,
                "dagster/column_schema": READS_TABLE_SCHEMA,
                "path": dg.MetadataValue.path(source.path),
                "format": source.format,
                "bytes_read": source.size_bytes,
                "seconds": round(result.seconds, 3),
                "reads_per_second": round(result.read_count / max(result.seconds, 1e-9)),
                "fingerprint": source.fingerprint,
                "database": location,
            }
        )

    def load_input(self, context: dg.InputContext) -> PartitionHandle:
        return PartitionHandle(store=self.store, key=context.asset_partition_key)


def progress_line(source: SourceFile, read_count: int, bytes_read: int, seconds: float) -> str:
    """``key: 1,200,000 reads, 42% of 310.5 MB read, about 35 s left (80,000 reads/s)``; without
    a position (0), ``key: 1,200,000 reads so far (80,000 reads/s)``."""
    key = source.key
    rate = f"{read_count / max(seconds, 1e-9):,.0f} reads/s"
    if not bytes_read or not source.size_bytes:
        return f"{key}: {read_count:,} reads so far ({rate})"
    share = min(bytes_read / source.size_bytes, 1.0)
    left = seconds * (1 - share) / share
    return (
        f"{key}: {read_count:,} reads, {100 * share:.0f}% of {source.size_bytes / 1e6:,.1f} MB "
        f"read, about {left:,.0f} s left ({rate})"
    )


READS_TABLE_SCHEMA = dg.TableSchema(
    columns=[
        dg.TableColumn(name=column.name, type=column.sql_type, description=column.description)
        for column in READS_COLUMNS
    ]
)
