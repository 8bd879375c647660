"""The ``maintain_lake`` job: small files merged, old snapshots expired, the files they alone
needed deleted, and a killed writer's leftover deleted once older than its margin; what the
current snapshot reads is never touched."""

import os
import shutil
import time
from pathlib import Path

from bam_assets.orchestration.definitions import build_instance_definitions
from bam_assets.orchestration.resources import StoreResource
from bam_assets_tests.helpers import REAL_DATA, materialize_partition, read_session, settings_for

# Long nanopore reads: their cycle rows are too many to be inlined, so each is a small file.
SOURCES = {"a.bam": "mosdepth_nanopore.bam", "b.bam": "mosdepth_nanopore.bam"}
SOURCES["c.bam"] = "umitools_paired.bam"
KEYS = list(SOURCES)


def parquet_files(data: Path) -> set[Path]:
    return set(data.rglob("*.parquet"))


def cycle_files(settings) -> list[str]:
    with read_session(settings) as session:
        return session.connection.execute(
            "SELECT data_file FROM ducklake_list_files(current_database(), 'reads_cycle_quality')"
        ).fetchall()


def test_maintenance_removes_only_what_no_snapshot_reads(lake, tmp_path, instance):
    root = tmp_path / "in"
    root.mkdir()
    for key, source in SOURCES.items():
        shutil.copy(REAL_DATA / source, root / key)
    settings = settings_for(
        root,
        tmp_path / "x.sqlite",
        store={
            **lake,
            "lock_timeout_seconds": 60,
            "lake": {**lake["lake"], "snapshot_retention_days": 1e-9, "file_retention_hours": 1e-9},
        },
    )
    data = Path(settings.store.lake.data_path)
    for key in [*KEYS, KEYS[0]]:  # the re-ingest leaves the first file to an old snapshot only
        materialize_partition(settings, key, instance)
    # A writer killed between staging and COMMIT leaves an unregistered Parquet file behind.
    leftover = data / "main" / "reads" / "bam-killed-writer.parquet"
    leftover.write_bytes((next(iter(parquet_files(data / "main" / "reads")))).read_bytes())
    day_ago = time.time() - 2 * 24 * 3600
    os.utime(leftover, (day_ago, day_ago))
    with read_session(settings) as session:
        before = session.connection.execute(
            "SELECT key, count(*), sum(hash(rec_no, qname, seq, qual, tags)) FROM reads "
            "GROUP BY key ORDER BY key"
        ).fetchall()
        current = {
            Path(row[0])
            for table in ("reads", "reads_cycle_quality")
            for row in session.connection.execute(
                "SELECT data_file FROM ducklake_list_files(current_database(), ?)", [table]
            ).fetchall()
        }
    on_disk = parquet_files(data)
    assert len(cycle_files(settings)) >= 2
    assert leftover in on_disk and len(on_disk - current) >= 2

    job = build_instance_definitions(settings).resolve_job_def("maintain_lake")
    time.sleep(0.1)
    result = job.execute_in_process(
        instance=instance, resources={settings.store_key: StoreResource(settings=settings.store)}
    )

    assert result.success
    counts = {
        step: result.output_for_node(step)
        for step in (
            "compact_lake",
            "expire_snapshots",
            "delete_old_files",
            "delete_orphaned_files",
        )
    }
    assert counts["expire_snapshots"] >= 3 and counts["delete_old_files"] >= 1
    assert counts["delete_orphaned_files"] == 1
    with read_session(settings) as session:
        after = session.connection.execute(
            "SELECT key, count(*), sum(hash(rec_no, qname, seq, qual, tags)) FROM reads "
            "GROUP BY key ORDER BY key"
        ).fetchall()
        referenced = {
            Path(row[0])
            for table in ("reads", "reads_cycle_quality")
            for row in session.connection.execute(
                "SELECT data_file FROM ducklake_list_files(current_database(), ?)", [table]
            ).fetchall()
        }
    assert after == before
    assert parquet_files(data) == referenced and leftover not in referenced
    assert counts["compact_lake"] >= 1
    assert len(cycle_files(settings)) == 1
