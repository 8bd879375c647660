"""The local store: opened in one step from Python, its tag macros reach one tag, or all of them;
a partition is deleted from every table of its instance."""

import pysam
import pytest

import bam_assets
from bam_assets.orchestration.resources import StoreResource
from bam_assets_tests.helpers import (
    REAL_DATA,
    materialize_partition,
    read_session,
    settings_for,
    write_distributions,
)

BTAG = "pysam_example_btag.sam"


@pytest.fixture
def connection(database, instance):
    """What docs/schema.md tells a Python user to type: ``bam_assets.connect(PATH)``."""
    materialize_partition(settings_for(REAL_DATA, database), BTAG, instance)
    connection = bam_assets.connect(str(database))
    yield connection
    connection.close()


def pysam_tags(name: str) -> list[list[tuple[str, str, str]]]:
    """Each record's tags as (tag, type, value text), split from pysam's SAM text."""
    with pysam.AlignmentFile(str(REAL_DATA / name), check_sq=False) as handle:
        return [
            [tuple(field.split(":", 2)) for field in record.to_string().split("\t")[11:]]
            for record in handle.fetch(until_eof=True)
        ]


def test_sam_tags_lists_every_tag_in_order(connection):
    stored = connection.execute(
        "SELECT sam_tags(tags) FROM reads WHERE key = ? ORDER BY rec_no", [BTAG]
    ).fetchall()
    assert [[(t["tag"], t["type"], t["value"]) for t in row[0]] for row in stored] == pysam_tags(
        BTAG
    )


def test_one_tag_by_name_with_its_type(connection):
    expected = pysam_tags(BTAG)
    rows = connection.execute(
        "SELECT sam_tag(tags, 'RG'), sam_tag(tags, 'ZZ') FROM reads ORDER BY rec_no"
    ).fetchall()
    assert [row[0] for row in rows] == [
        next((value for tag, _, value in tags if tag == "RG"), None) for tags in expected
    ]
    assert {row[1] for row in rows} == {None}
    integers = connection.execute(
        "SELECT list(sam_tag_int(tags, 'NM') ORDER BY rec_no) FROM reads"
    ).fetchall()[0][0]
    assert integers == [
        next((int(value) for tag, kind, value in tags if tag == "NM" and kind == "i"), None)
        for tags in expected
    ]


def test_float_tags_and_empty_tag_lists(tmp_path, instance):
    sam = tmp_path / "tags.sam"
    sam.write_text(
        "@HD\tVN:1.6\n"
        "r1\t4\t*\t0\t0\t*\t*\t0\t0\tACGT\tIIII\tXF:f:2.5\tXZ:Z:\tXI:i:-3\n"
        "r2\t4\t*\t0\t0\t*\t*\t0\t0\tACGT\tIIII\n"
    )
    database = tmp_path / "tags.sqlite"
    materialize_partition(settings_for(tmp_path, database), "tags.sam", instance)
    with read_session(database) as session:
        rows = session.connection.execute(
            "SELECT sam_tag_float(tags, 'XF'), sam_tag(tags, 'XZ'), sam_tag_int(tags, 'XI'), "
            "len(sam_tags(tags)) FROM reads ORDER BY rec_no"
        ).fetchall()
        lines = [line for array in session.iter_sam_lines("tags.sam") for line in array.to_pylist()]
    assert rows == [(2.5, "", -3, 3), (None, None, None, 0)]
    assert lines == sam.read_text().splitlines()[1:]


def test_deleting_a_partition_empties_every_keyed_table_of_its_instance_only(tmp_path, instance):
    """Reads, files, side tables and summaries lose the key; another key and another instance's
    tables sharing the database keep every row."""
    database = tmp_path / "shared.sqlite"
    default = settings_for(REAL_DATA, database)
    named = settings_for(REAL_DATA, database, name="nanopore")
    keys = ["umitools_paired.bam", "mosdepth_nanopore.bam"]
    for settings in (default, named):
        for key in keys:
            materialize_partition(settings, key, instance)
    store = StoreResource(settings=default.store)
    with store.session() as session:
        for key in keys:
            write_distributions(session, key, coverage_window=1_000)

    def rows_per_table() -> dict[str, int]:
        with read_session(database) as session:
            tables = session.connection.execute(
                "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() "
                "ORDER BY table_name"
            ).fetchall()
            return {
                table: session.connection.execute(
                    f"SELECT count(*) FROM {table} WHERE key = ?", [keys[0]]
                ).fetchone()[0]
                for (table,) in tables
            }

    before = rows_per_table()
    with store.session() as session:
        session.delete_partition(keys[0])
    after = rows_per_table()

    own = {t for t in before if not t.startswith("nanopore_")}
    assert {"reads", "files", "reads_cycle_quality", "read_stats_mapq"} <= own
    assert all(before[t] > 0 for t in ("reads", "files", "reads_cycle_quality", "read_stats_mapq"))
    assert {t: after[t] for t in own} == {t: 0 for t in own}
    assert {t: after[t] for t in before if t not in own} == {
        t: before[t] for t in before if t not in own
    }
    with read_session(database) as session:
        assert [f.key for f in session.list_files()] == [keys[1]]
