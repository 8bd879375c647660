"""The Dagster definitions of one ingest instance: partitions, assets, jobs, checks, the file
sensor, the automation sensor, the overview schedule and the resources they share.

Every run executes in one process (``in_process_executor``): the steps of a run are short (a
second or two for a small file) and one after the other, so a process per step only added its
start-up, 11-18 s per step with eight runs queued.

Unattended by default: the file sensor's run for a new file materializes ``reads`` and then its
per-file summaries, in that one process, so a dropped file ends with its summaries without a click
and without waiting for another tick. The automation sensor (running by default) makes the
summaries follow ``reads`` partitions materialized any other way (a backfill from the UI,
``bam-assets ingest`` against the same instance); after a sensor run it has nothing left to do.
"""

import dagster as dg

from bam_assets.orchestration.io_manager import ReadsIOManager
from bam_assets.orchestration.lake_maintenance import build_maintenance_definitions
from bam_assets.orchestration.purge import build_purge_job
from bam_assets.orchestration.reads_asset import build_reads_asset
from bam_assets.orchestration.reads_checks import build_reads_checks
from bam_assets.orchestration.resources import sources_resource, store_resource
from bam_assets.orchestration.sensors import build_file_sensor
from bam_assets.orchestration.settings import IngestSettings
from bam_assets.orchestration.summary_assets import (
    build_multiqc_asset,
    build_overview_asset,
    build_summary_assets,
)


def run_executor(settings: IngestSettings) -> dg.ExecutorDefinition:
    """The executor of every job of the instance (``settings.run_executor``)."""
    if settings.run_executor == "celery_k8s":
        # The deploy extra: imported only by a Celery deployment.
        from dagster_celery_k8s import celery_k8s_job_executor

        return celery_k8s_job_executor
    return dg.in_process_executor


def ingest_resources(settings: IngestSettings) -> dict[str, object]:
    """The resources of an instance, under its keys: the sources, the store and the IO manager
    that writes ``reads`` through the same store."""
    store = store_resource(settings)
    return {
        settings.sources_key: sources_resource(settings),
        settings.store_key: store,
        settings.io_manager_key: ReadsIOManager(store=store),
    }


def build_ingest_definitions(
    settings: IngestSettings, summaries: list[dg.AssetsDefinition]
) -> dg.Definitions:
    """``reads``, the ``ingest_reads`` job (a file's reads, then its ``summaries``), the
    ``purge_removed_files`` job and the file sensor."""
    reads = build_reads_asset(settings)
    executor = run_executor(settings)
    ingest_job = dg.define_asset_job(
        f"{settings.prefix}ingest_reads",
        selection=[reads, *summaries],
        description="Ingest one alignment file into the store and compute its read statistics.",
        executor_def=executor,
    )
    purge_job = build_purge_job(settings)
    return dg.Definitions(
        assets=[reads],
        jobs=[ingest_job, purge_job],
        sensors=[build_file_sensor(settings, ingest_job, purge_job)],
    )


def build_summary_definitions(
    settings: IngestSettings, summaries: list[dg.AssetsDefinition]
) -> dg.Definitions:
    """Summary assets, checks on ``reads``, the overview and its schedule, the MultiQC folder
    and the automation sensor."""
    overview = build_overview_asset(settings)
    multiqc = build_multiqc_asset(settings)
    executor = run_executor(settings)
    summary_job = dg.define_asset_job(
        f"{settings.prefix}summarize_reads",
        selection=summaries,
        description="Compute the read statistics of one ingested file.",
        executor_def=executor,
    )
    overview_job = dg.define_asset_job(
        f"{settings.prefix}refresh_read_stats_overview",
        selection=[overview],
        description="Rebuild the cross-file overview from whatever partitions exist.",
        executor_def=executor,
    )
    multiqc_job = dg.define_asset_job(
        f"{settings.prefix}export_multiqc",
        selection=[multiqc],
        description="Write samtools stats/flagstat/idxstats files of every file for MultiQC.",
        executor_def=executor,
    )
    # Runs the reads checks alone against what is stored (no re-ingest). Dagster 1.13 cannot take
    # a partition key for a checks-only job, so launch it with the ``dagster/partition`` tag.
    check_job = dg.define_asset_job(
        f"{settings.prefix}check_reads",
        selection=dg.AssetSelection.checks_for_assets(settings.reads_key),
        description="Re-run the checks of one stored partition of reads (tag dagster/partition).",
        executor_def=executor,
    )
    schedules = []
    if not settings.summary_automation:
        schedules.append(
            dg.ScheduleDefinition(
                name=f"{settings.prefix}read_stats_overview_schedule",
                cron_schedule=settings.summary_cron,
                job=overview_job,
                default_status=dg.DefaultScheduleStatus.RUNNING,
                description="Refreshes read_stats_overview (cron from summary_cron).",
            )
        )
    automated = [*summaries, *([overview] if settings.summary_automation else [])]
    automation_sensor = dg.AutomationConditionSensorDefinition(
        f"{settings.prefix}summaries_automation_sensor",
        target=dg.AssetSelection.assets(*automated),
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Materializes the per-file summaries of reads partitions that have none "
        "or an older one (their eager automation condition).",
    )
    return dg.Definitions(
        assets=[*summaries, overview, multiqc],
        asset_checks=build_reads_checks(settings),
        jobs=[summary_job, overview_job, multiqc_job, check_job],
        schedules=schedules,
        sensors=[automation_sensor],
    )


def build_instance_definitions(settings: IngestSettings) -> dg.Definitions:
    """Everything of one instance: the ingest, the summaries, a lake's maintenance and their
    resources; every run in one process."""
    summaries = build_summary_assets(settings)
    return dg.Definitions.merge(
        build_ingest_definitions(settings, summaries),
        build_summary_definitions(settings, summaries),
        build_maintenance_definitions(settings),
        dg.Definitions(resources=ingest_resources(settings), executor=run_executor(settings)),
    )
