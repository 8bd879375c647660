"""Builds the Dagster definitions of one ingest: partitions, the ``reads`` asset, its job and
resources, the file sensor, and the summaries.

The asset wires the reader (``AlignmentSources``) to the streaming IO manager; it parses nothing
and runs no SQL itself.
"""

import dagster as dg
import pyarrow as pa

from bam_assets.alignment_files import SourceNotFoundError
from bam_assets.alignment_reader import AlignmentReadError
from bam_assets.ingest_settings import DUCKDB_WRITER_POOL, IngestSettings
from bam_assets.resources import AlignmentSources
from bam_assets.sensors import build_file_sensor, build_purge_job
from bam_assets.summary_definitions import build_summary_definitions


def build_reads_asset(settings: IngestSettings) -> dg.AssetsDefinition:
    sources_key = settings.sources_key

    @dg.asset(
        key=settings.asset_key,
        partitions_def=settings.partitions_def(),
        io_manager_key=settings.io_manager_key,
        required_resource_keys={sources_key},
        kinds={"pysam", "duckdb"},
        group_name="alignments",
        pool=DUCKDB_WRITER_POOL,
    )
    def reads(context: dg.AssetExecutionContext) -> pa.RecordBatchReader:
        """Every record of one BAM/CRAM/SAM file, streamed chunk by chunk into DuckDB."""
        sources: AlignmentSources = getattr(context.resources, sources_key)
        try:
            return sources.open_stream(context.partition_key)
        except (AlignmentReadError, SourceNotFoundError) as error:
            raise dg.Failure(description=str(error)) from error

    return reads


def build_ingest_definitions(settings: IngestSettings) -> dg.Definitions:
    reads = build_reads_asset(settings)
    ingest_job = dg.define_asset_job(
        f"{settings.prefix}ingest_reads",
        selection=[reads],
        description="Ingest one alignment file into DuckDB.",
    )
    purge_job = build_purge_job(settings)
    ingest = dg.Definitions(
        assets=[reads],
        jobs=[ingest_job, purge_job],
        sensors=[build_file_sensor(settings, ingest_job, purge_job)],
        resources={
            settings.sources_key: settings.sources(),
            settings.io_manager_key: settings.io_manager(),
        },
    )
    return dg.Definitions.merge(ingest, build_summary_definitions(settings))
