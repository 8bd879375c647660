"""The file sensor: new files after they settle, changed files again, removed files purged."""

import os
import shutil
import time
from pathlib import Path

import dagster as dg
import pytest

from bam_assets.orchestration.definitions import build_instance_definitions
from bam_assets.orchestration.settings import IngestSettings
from bam_assets_tests.helpers import (
    REAL_DATA,
    materialize_partition,
    settings_for,
    store_connection,
)


def sensor_and_defs(settings: IngestSettings) -> tuple[dg.SensorDefinition, dg.Definitions]:
    definitions = build_instance_definitions(settings)
    return definitions.resolve_sensor_def("alignment_file_sensor"), definitions


def tick(sensor: dg.SensorDefinition, instance: dg.DagsterInstance, cursor: str | None):
    context = dg.build_sensor_context(cursor=cursor, instance=instance)
    result = sensor(context)
    assert isinstance(result, dg.SensorResult)
    return result


def apply_partition_requests(instance: dg.DagsterInstance, result: dg.SensorResult) -> None:
    for request in result.dynamic_partitions_requests or []:
        if isinstance(request, dg.AddDynamicPartitionsRequest):
            instance.add_dynamic_partitions(request.partitions_def_name, request.partition_keys)
        else:
            for key in request.partition_keys:
                instance.delete_dynamic_partition(request.partitions_def_name, key)


def bump_mtime(path: Path, seconds: int = 10) -> None:
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + seconds * 1_000_000_000))


@pytest.fixture
def watched(tmp_path: Path, database: Path) -> tuple[Path, IngestSettings]:
    root = tmp_path / "watched"
    root.mkdir()
    return root, settings_for(root, database)


def test_default_status_is_running(watched):
    sensor, _ = sensor_and_defs(watched[1])
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING


def test_new_file_is_ingested_once_its_size_and_mtime_hold_still(watched, instance):
    root, settings = watched
    sensor, _ = sensor_and_defs(settings)
    growing = root / "run1" / "sample.bam"
    growing.parent.mkdir()
    growing.write_bytes((REAL_DATA / "umitools_paired.bam").read_bytes()[:50_000])

    first = tick(sensor, instance, None)
    assert first.run_requests == [] and not first.dynamic_partitions_requests

    shutil.copy(REAL_DATA / "umitools_paired.bam", growing)  # still being written: it grew
    second = tick(sensor, instance, first.cursor)
    assert second.run_requests == []

    third = tick(sensor, instance, second.cursor)
    [request] = third.run_requests
    assert request.partition_key == "run1/sample.bam"
    assert request.job_name == "ingest_reads"
    assert request.run_key.startswith("run1/sample.bam@")
    [add] = third.dynamic_partitions_requests
    assert add.partition_keys == ["run1/sample.bam"]
    apply_partition_requests(instance, third)

    fourth = tick(sensor, instance, third.cursor)
    assert fourth.run_requests == [] and not fourth.dynamic_partitions_requests


def test_changed_file_is_ingested_again_and_a_touched_file_is_not(watched, instance):
    root, settings = watched
    sensor, _ = sensor_and_defs(settings)
    sample = root / "sample.bam"
    shutil.copy(REAL_DATA / "umitools_paired.bam", sample)
    cursor = tick(sensor, instance, None).cursor
    ingested = tick(sensor, instance, cursor)
    apply_partition_requests(instance, ingested)
    first_run_key = ingested.run_requests[0].run_key

    bump_mtime(sample)  # touched, same bytes
    cursor = tick(sensor, instance, ingested.cursor).cursor
    touched = tick(sensor, instance, cursor)
    assert touched.run_requests == []

    shutil.copy(REAL_DATA / "umitools_unmapped.bam", sample)
    bump_mtime(sample, 20)
    cursor = tick(sensor, instance, touched.cursor).cursor
    changed = tick(sensor, instance, cursor)
    [rerun] = changed.run_requests
    assert rerun.partition_key == "sample.bam" and rerun.run_key != first_run_key
    assert not changed.dynamic_partitions_requests  # the partition exists already


def test_removed_file_deletes_its_partition_and_purges_its_rows(watched, instance):
    root, settings = watched
    sensor, definitions = sensor_and_defs(settings)
    for name in ("keep.bam", "gone.bam"):
        shutil.copy(REAL_DATA / "umitools_paired.bam", root / name)
    cursor = tick(sensor, instance, None).cursor
    ingested = tick(sensor, instance, cursor)
    apply_partition_requests(instance, ingested)
    for key in ("keep.bam", "gone.bam"):
        materialize_partition(settings, key, instance)

    (root / "gone.bam").unlink()
    removed = tick(sensor, instance, ingested.cursor)

    [delete] = removed.dynamic_partitions_requests
    assert isinstance(delete, dg.DeleteDynamicPartitionsRequest)
    assert delete.partition_keys == ["gone.bam"]
    [purge] = removed.run_requests
    assert purge.job_name == "purge_removed_files"

    result = definitions.resolve_job_def("purge_removed_files").execute_in_process(
        run_config=purge.run_config, instance=instance
    )
    assert result.success
    with store_connection(settings) as connection:
        assert connection.execute("SELECT DISTINCT key FROM reads").fetchall() == [("keep.bam",)]
        assert connection.execute("SELECT key FROM files").fetchall() == [("keep.bam",)]


def test_keep_mode_leaves_removed_partitions_alone(tmp_path, database, instance):
    root = tmp_path / "watched"
    root.mkdir()
    settings = settings_for(root, database, on_removed="keep")
    sensor, _ = sensor_and_defs(settings)
    shutil.copy(REAL_DATA / "umitools_paired.bam", root / "gone.bam")
    cursor = tick(sensor, instance, None).cursor
    ingested = tick(sensor, instance, cursor)
    apply_partition_requests(instance, ingested)
    (root / "gone.bam").unlink()
    removed = tick(sensor, instance, ingested.cursor)
    assert removed.run_requests == [] and not removed.dynamic_partitions_requests


def test_ten_thousand_files_cost_one_walk_and_batched_requests(tmp_path, database, instance):
    root = tmp_path / "watched"
    for index in range(10_000):
        folder = root / f"lane{index % 20:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"s{index:05d}.bam").write_bytes(b"x")
    settings = settings_for(root, database, max_runs_per_tick=1_000)
    sensor, _ = sensor_and_defs(settings)

    started = time.monotonic()
    first = tick(sensor, instance, None)
    second = tick(sensor, instance, first.cursor)
    two_ticks = time.monotonic() - started

    assert len(second.run_requests) == 1_000
    assert [len(r.partition_keys) for r in second.dynamic_partitions_requests] == [500, 500]
    apply_partition_requests(instance, second)
    third = tick(sensor, instance, second.cursor)
    assert len(third.run_requests) == 1_000
    assert len(set(r.partition_key for r in second.run_requests + third.run_requests)) == 2_000
    assert len(third.cursor) < 1_000_000
    assert two_ticks < 30, two_ticks  # a sanity bound, not a benchmark
