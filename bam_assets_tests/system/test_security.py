"""Security: values never reach SQL as text, and partition keys never reach outside the roots."""

import shutil
from pathlib import Path

import dagster as dg
import pytest

from bam_assets.reading.partition_keys import partition_key_for
from bam_assets_tests.helpers import (
    REAL_DATA,
    materialize_partition,
    samtools_view,
    settings_for,
    store_connection,
)

HOSTILE_NAME = "x';DROP TABLE reads;--.bam"


def test_a_file_named_like_sql_injection_ingests_fine(tmp_path, database, instance):
    root = tmp_path / "in"
    root.mkdir()
    shutil.copy(REAL_DATA / "umitools_paired.bam", root / "other.bam")
    shutil.copy(REAL_DATA / "modkit_supplementary_secondary.bam", root / HOSTILE_NAME)
    settings = settings_for(root, database)
    materialize_partition(settings, "other.bam", instance)
    key = partition_key_for(HOSTILE_NAME)
    materialize_partition(settings, key, instance)

    expected = samtools_view(root / HOSTILE_NAME).count("\n")
    with store_connection(database) as connection:
        counts = dict(connection.execute("SELECT key, count(*) FROM reads GROUP BY key").fetchall())
        [(path,)] = connection.execute("SELECT path FROM files WHERE key = ?", [key]).fetchall()
    assert counts == {
        "other.bam": samtools_view(root / "other.bam").count("\n"),
        key: expected,
    }
    assert path == str(root / HOSTILE_NAME)


@pytest.mark.parametrize(
    "key",
    ["../outside.bam", "in/../../outside.bam", "OUTSIDE_ABSOLUTE", "link/outside.bam"],
)
def test_a_key_registered_by_hand_cannot_read_outside_the_roots(key, tmp_path, database, instance):
    root = tmp_path / "root" / "in"
    root.mkdir(parents=True)
    outside = tmp_path / "root" / "outside.bam"
    shutil.copy(REAL_DATA / "umitools_paired.bam", outside)
    shutil.copy(REAL_DATA / "umitools_paired.bam", tmp_path / "outside.bam")
    (root / "link").symlink_to(tmp_path / "root", target_is_directory=True)
    key = str(outside) if key == "OUTSIDE_ABSOLUTE" else key

    result = materialize_partition(
        settings_for(root, database), key, instance, raise_on_error=False
    )

    assert not result.success
    [failure] = instance.all_logs(result.run_id, of_type=dg.DagsterEventType.STEP_FAILURE)
    description = failure.dagster_event.step_failure_data.user_failure_data.description
    assert repr(key) in description and "never reach outside the roots" in description
    if Path(database).exists():
        with store_connection(database) as connection:
            assert connection.execute("SELECT count(*) FROM reads").fetchall() == [(0,)]


def test_materializing_the_same_partition_n_times_leaves_one_copy(tmp_path, database, instance):
    settings = settings_for(REAL_DATA, database)
    for _ in range(4):
        materialize_partition(settings, "umitools_paired.bam", instance)
    expected = samtools_view(REAL_DATA / "umitools_paired.bam").count("\n")
    with store_connection(database) as connection:
        assert connection.execute(
            "SELECT count(*), count(DISTINCT rec_no) FROM reads"
        ).fetchall() == [(expected, expected)]
        assert connection.execute("SELECT count(*) FROM files").fetchall() == [(1,)]
