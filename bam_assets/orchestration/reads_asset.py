"""The ``reads`` asset: one alignment file per partition, handed as a lazy Arrow stream to the
streaming IO manager. It wires the reader to the store; it parses nothing and runs no SQL."""

import dagster as dg
import pyarrow as pa

from bam_assets.orchestration.resources import AlignmentSources
from bam_assets.orchestration.settings import IngestSettings
from bam_assets.reading.errors import AlignmentReadError
from bam_assets.reading.files import SourceNotFoundError


def build_reads_asset(settings: IngestSettings) -> dg.AssetsDefinition:
    sources_key = settings.sources_key

    @dg.asset(
        key=settings.reads_key,
        partitions_def=settings.partitions_def(),
        io_manager_key=settings.io_manager_key,
        required_resource_keys={sources_key},
        kinds={"pysam", "duckdb"},
        group_name="alignments",
        pool=settings.writer_pool,
    )
    def reads(context: dg.AssetExecutionContext) -> pa.RecordBatchReader:
        """Every record of one BAM/CRAM/SAM file, streamed chunk by chunk into DuckDB."""
        sources: AlignmentSources = getattr(context.resources, sources_key)
        try:
            return sources.open_stream(context.partition_key)
        except (AlignmentReadError, SourceNotFoundError) as error:
            raise dg.Failure(description=str(error)) from error

    return reads
