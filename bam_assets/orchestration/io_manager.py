"""A streaming IO manager: writes the ``reads`` stream into the store chunk by chunk."""

from dataclasses import dataclass

import dagster as dg
import pyarrow as pa
from pydantic import Field

from bam_assets.model.reads_schema import READS_COLUMNS
from bam_assets.model.source_stream import source_of
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

    The stream is consumed one Arrow batch at a time inside a single transaction, so memory stays
    bounded by the chunk size and a failure anywhere leaves the previous rows in place. The quality
    per cycle (``CycleQuality``) is summed from the same batches and stored with them.
    """

    store: StoreResource
    progress_every_chunks: int = Field(
        default=50, description="Log progress every this many chunks.", gt=0
    )

    def handle_output(self, context: dg.OutputContext, obj: pa.RecordBatchReader) -> None:
        source = source_of(obj)
        chunks = 0

        def log_progress(read_count: int, seconds: float) -> None:
            nonlocal chunks
            chunks += 1
            if chunks % self.progress_every_chunks == 0:
                context.log.info(
                    f"{source.key}: {read_count:,} reads so far, "
                    f"{read_count / max(seconds, 1e-9):,.0f} reads/s"
                )

        location = self.store.location
        try:
            with self.store.session() as session:
                result = session.replace_partition(
                    source, obj, side_tables=[CycleQuality()], on_batch=log_progress
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


READS_TABLE_SCHEMA = dg.TableSchema(
    columns=[
        dg.TableColumn(name=column.name, type=column.sql_type, description=column.description)
        for column in READS_COLUMNS
    ]
)
