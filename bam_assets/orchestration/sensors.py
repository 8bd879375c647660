"""The sensor that turns files in the watched folders into partitions and runs (and removed
files into purges)."""

import dagster as dg

from bam_assets.orchestration.file_watch import decide, decode_cursor, encode_cursor
from bam_assets.orchestration.purge import purge_op_name
from bam_assets.orchestration.settings import IngestSettings
from bam_assets.reading.files import find_alignment_files, stat_file

# Dagster's SQLite storage fails on one very large partition request; add keys in slices.
_PARTITION_REQUEST_SIZE = 500


def sensor_description(settings: IngestSettings) -> str:
    """What the UI says of the sensor: the folders and patterns it watches, and what it does."""
    removed = "purges removed ones" if settings.on_removed == "purge" else "keeps removed ones"
    return (
        f"Watches {', '.join(settings.roots)} ({' '.join(settings.patterns)}) every "
        f"{settings.sensor_interval_seconds} s: ingests new and changed alignment files once "
        f"they stop growing, with their summaries; {removed}."
    )


def build_file_sensor(
    settings: IngestSettings, ingest_job, purge_job: dg.JobDefinition
) -> dg.SensorDefinition:
    """The sensor for one ingest; ``ingest_job`` is the asset job (``dg.define_asset_job``)
    that materializes one partition of ``reads``."""
    partitions_def = settings.partitions_def()

    @dg.sensor(
        name=f"{settings.prefix}alignment_file_sensor",
        jobs=[ingest_job, purge_job],
        minimum_interval_seconds=settings.sensor_interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=sensor_description(settings),
    )
    def alignment_file_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        state = decode_cursor(context.cursor)
        decision = decide(
            state,
            find_alignment_files(settings.roots, settings.patterns),
            fingerprint=lambda path: stat_file(path).fingerprint,
            max_ingests=settings.max_runs_per_tick,
        )
        existing = set(context.instance.get_dynamic_partitions(settings.partitions_name))
        new_keys = sorted(key for key in decision.to_ingest if key not in existing)
        requests: list = [
            partitions_def.build_add_request(new_keys[start : start + _PARTITION_REQUEST_SIZE])
            for start in range(0, len(new_keys), _PARTITION_REQUEST_SIZE)
        ]
        runs = [
            dg.RunRequest(
                run_key=f"{key}@{fingerprint}",
                partition_key=key,
                job_name=ingest_job.name,
                tags={"bam_assets/fingerprint": fingerprint},
            )
            for key, fingerprint in sorted(decision.to_ingest.items())
        ]
        removed = [key for key in decision.removed_keys if key in existing]
        if removed and settings.on_removed == "purge":
            requests.append(partitions_def.build_delete_request(removed))
            runs.append(
                dg.RunRequest(
                    job_name=purge_job.name,
                    run_config={
                        "ops": {purge_op_name(settings): {"config": {"keys": removed}}},
                    },
                )
            )
        context.log.info(
            f"{len(runs)} run(s) requested, {len(new_keys)} new partition(s), "
            f"{len(removed)} removed, {decision.waiting} file(s) waiting to settle"
        )
        return dg.SensorResult(
            run_requests=runs, dynamic_partitions_requests=requests, cursor=encode_cursor(state)
        )

    return alignment_file_sensor
