"""The store's maintenance as a scheduled job, whichever its catalog: merge small files, expire
old snapshots, delete the files they no longer need, delete killed writers' leftovers.

The steps run in this order, one after the other, in the ``lake_maintenance`` pool (one run at a
time). Writers keep writing meanwhile: the merge is retried when it conflicts with them, and the
deletions only touch files older than their margins (``store.lake``), which a live writer's file
never is (``storage/lake_maintenance.py`` says why).
"""

from collections.abc import Callable
from datetime import timedelta

import dagster as dg

from bam_assets.orchestration.resources import StoreResource
from bam_assets.orchestration.settings import MAINTENANCE_POOL, IngestSettings
from bam_assets.storage.lake import LakeSession
from bam_assets.storage.maintenance import MaintenanceResult


def build_maintenance_definitions(settings: IngestSettings) -> dg.Definitions:
    """The ``maintain_lake`` job and its schedule."""
    store_key = settings.store_key
    lake = settings.store.lake

    def step(
        name: str, description: str, work: Callable[[LakeSession], MaintenanceResult]
    ) -> dg.OpDefinition:
        @dg.op(
            name=f"{settings.prefix}{name}",
            description=description,
            ins={"after": dg.In(dg.Nothing)},
            required_resource_keys={store_key},
            pool=MAINTENANCE_POOL,
        )
        def maintenance_step(context: dg.OpExecutionContext) -> dg.Output[int]:
            store: StoreResource = getattr(context.resources, store_key)
            with store.session() as session:
                result = work(session)
            context.log.info(f"{result.step}: {result.count} in {result.seconds:.2f} s")
            return dg.Output(
                result.count, metadata={"count": result.count, "seconds": round(result.seconds, 3)}
            )

        return maintenance_step

    compact = step(
        "compact_lake", "Merges small files of the summary tables.", lambda s: s.compact()
    )
    expire = step(
        "expire_snapshots",
        "Expires snapshots older than snapshot_retention_days.",
        lambda s: s.expire_snapshots(timedelta(days=lake.snapshot_retention_days)),
    )
    old_files = step(
        "delete_old_files",
        "Deletes files of expired snapshots older than file_retention_hours.",
        lambda s: s.delete_old_files(timedelta(hours=lake.file_retention_hours)),
    )
    orphans = step(
        "delete_orphaned_files",
        "Deletes files of killed writers older than orphan_margin_hours.",
        lambda s: s.delete_orphans(timedelta(hours=lake.orphan_margin_hours)),
    )

    @dg.job(
        name=f"{settings.prefix}maintain_lake",
        description="Compacts the lake and removes what no snapshot needs any more.",
    )
    def maintain_lake() -> None:
        orphans(old_files(expire(compact())))

    schedule = dg.ScheduleDefinition(
        name=f"{settings.prefix}maintain_lake_schedule",
        cron_schedule=lake.maintenance_cron,
        job=maintain_lake,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Runs maintain_lake (cron from store.lake.maintenance_cron).",
    )
    return dg.Definitions(jobs=[maintain_lake], schedules=[schedule])
