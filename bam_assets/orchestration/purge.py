"""The job that deletes the stored rows of files removed from the watched folders."""

import dagster as dg
from pydantic import Field

from bam_assets.orchestration.resources import StoreResource
from bam_assets.orchestration.settings import IngestSettings


class PurgeConfig(dg.Config):
    keys: list[str] = Field(description="Partition keys whose rows and files row to delete.")


def purge_op_name(settings: IngestSettings) -> str:
    return f"{settings.prefix}delete_removed_partitions"


def build_purge_job(settings: IngestSettings) -> dg.JobDefinition:
    store_key = settings.store_key

    @dg.op(
        name=purge_op_name(settings),
        required_resource_keys={store_key},
        pool=settings.writer_pool,
    )
    def purge_removed_files(context: dg.OpExecutionContext, config: PurgeConfig) -> None:
        """Deletes the stored reads of alignment files that disappeared from the watched folders."""
        store: StoreResource = getattr(context.resources, store_key)
        with store.session() as session:
            for key in config.keys:
                session.delete_partition(key)
                context.log.info(f"Removed the rows of {key}: its file is gone")

    @dg.job(name=f"{settings.prefix}purge_removed_files")
    def purge_job() -> None:
        purge_removed_files()

    return purge_job
