"""The Dagster definitions of one ingest instance: partitions, assets, jobs, checks, the file
sensor, the overview schedule and the resources they share."""

import dagster as dg

from bam_assets.orchestration.io_manager import ReadsIOManager
from bam_assets.orchestration.lake_maintenance import build_maintenance_definitions
from bam_assets.orchestration.purge import build_purge_job
from bam_assets.orchestration.reads_asset import build_reads_asset
from bam_assets.orchestration.reads_checks import build_reads_checks
from bam_assets.orchestration.resources import sources_resource, store_resource
from bam_assets.orchestration.sensors import build_file_sensor
from bam_assets.orchestration.settings import IngestSettings
from bam_assets.orchestration.summary_assets import build_overview_asset, build_summary_assets


def ingest_resources(settings: IngestSettings) -> dict[str, object]:
    """The resources of an instance, under its keys: the sources, the store and the IO manager
    that writes ``reads`` through the same store."""
    store = store_resource(settings)
    return {
        settings.sources_key: sources_resource(settings),
        settings.store_key: store,
        settings.io_manager_key: ReadsIOManager(store=store),
    }


def build_ingest_definitions(settings: IngestSettings) -> dg.Definitions:
    """``reads``, the ``ingest_reads`` and ``purge_removed_files`` jobs and the file sensor."""
    reads = build_reads_asset(settings)
    ingest_job = dg.define_asset_job(
        f"{settings.prefix}ingest_reads",
        selection=[reads],
        description="Ingest one alignment file into the store.",
    )
    purge_job = build_purge_job(settings)
    return dg.Definitions(
        assets=[reads],
        jobs=[ingest_job, purge_job],
        sensors=[build_file_sensor(settings, ingest_job, purge_job)],
    )


def build_summary_definitions(settings: IngestSettings) -> dg.Definitions:
    """Summary assets, checks on ``reads``, the overview and its schedule."""
    summaries = build_summary_assets(settings)
    overview = build_overview_asset(settings)
    summary_job = dg.define_asset_job(
        f"{settings.prefix}summarize_reads",
        selection=summaries,
        description="Compute the read statistics of one ingested file.",
    )
    overview_job = dg.define_asset_job(
        f"{settings.prefix}refresh_read_stats_overview",
        selection=[overview],
        description="Rebuild the cross-file overview from whatever partitions exist.",
    )
    # Runs the reads checks alone against what is stored (no re-ingest). Dagster 1.13 cannot take
    # a partition key for a checks-only job, so launch it with the ``dagster/partition`` tag.
    check_job = dg.define_asset_job(
        f"{settings.prefix}check_reads",
        selection=dg.AssetSelection.checks_for_assets(settings.reads_key),
        description="Re-run the checks of one stored partition of reads (tag dagster/partition).",
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
    return dg.Definitions(
        assets=[*summaries, overview],
        asset_checks=build_reads_checks(settings),
        jobs=[summary_job, overview_job, check_job],
        schedules=schedules,
    )


def build_instance_definitions(settings: IngestSettings) -> dg.Definitions:
    """Everything of one instance: the ingest, the summaries, a lake's maintenance and their
    resources."""
    return dg.Definitions.merge(
        build_ingest_definitions(settings),
        build_summary_definitions(settings),
        build_maintenance_definitions(settings),
        dg.Definitions(resources=ingest_resources(settings)),
    )
