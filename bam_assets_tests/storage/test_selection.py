"""The selection SQL: a ``--where`` reaches the query only as one expression, re-rendered by
DuckDB, and only over the partition asked for; records come in file order however many windows
they are read in. Their agreement with samtools is tested in orchestration/test_export.py."""

import re

import duckdb
import pytest

from bam_assets.model.selection import ReadFilters, Selection, SelectionError
from bam_assets.storage import selection
from bam_assets.storage.selection import predicate_sql
from bam_assets_tests.helpers import REAL_DATA, read_session, samtools_view

PAIRED = "umitools_paired.bam"


@pytest.mark.parametrize(
    ("where", "rendered"),
    [
        ("mapq >= 30 AND NOT is_reverse", "((mapq >= 30) AND (NOT is_reverse))"),
        ("(flag & 2304) = 0 -- primary only", "((flag & 2304) = 0)"),
        ("sam_tag(tags, 'RG') IN ('a', 'b')", "(sam_tag(tags, 'RG') IN ('a', 'b'))"),
    ],
)
def test_a_predicate_is_rendered_back_by_duckdb(where, rendered):
    assert predicate_sql(duckdb.connect(), where) == rendered


@pytest.mark.parametrize(
    ("where", "reason"),
    [
        ("true; DROP TABLE reads", "more than one SQL statement"),
        ("DROP TABLE reads", "is not one SQL expression"),
        ("true) OR (true", "is not one SQL expression"),
        ("x IN (DELETE FROM reads RETURNING 1)", "is not one SQL expression"),
        ("", "is not one SQL expression"),
        ("mapq, flag", "is not one SQL expression"),
        ("mapq AS m", "is not one SQL expression"),
        ("true FROM files", "is not one SQL expression"),
        ("true WHERE false", "is not one SQL expression"),
        ("mapq > 0 ORDER BY qname", "is not one SQL expression"),
        ("mapq > 0 LIMIT 1", "is not one SQL expression"),
        ("*", "is not one SQL expression"),
    ],
)
def test_anything_but_one_expression_is_refused(where, reason):
    with pytest.raises(SelectionError, match=reason):
        predicate_sql(duckdb.connect(), where)


@pytest.mark.parametrize(
    ("where", "reason"),
    [
        ("nosuch > 1", 'Referenced column "nosuch" not found'),
        ("count(*) > 1", "WHERE clause cannot contain aggregates"),
        ("CAST(qname AS INTEGER) > 0", "Could not convert string"),
        ("nextval('reads_seq') > 0", "Sequence with name reads_seq does not exist"),
    ],
)
def test_a_predicate_that_cannot_run_fails_before_any_record(real_database, where, reason):
    with read_session(real_database) as session:
        with pytest.raises(SelectionError, match=re.escape(f"--where {where!r}: ") + ".*" + reason):
            session.iter_sam_lines(PAIRED, Selection(filters=ReadFilters(where=where)))


def test_a_predicate_sees_only_its_partition(real_database):
    with read_session(real_database) as session:
        other = Selection(filters=ReadFilters(where=f"key <> '{PAIRED}' OR rec_no < 0"))
        assert session.count_reads(PAIRED, other) == 0
        assert session.count_reads(PAIRED, Selection(filters=ReadFilters(where="true"))) == 8451


def test_windows_of_any_size_give_the_records_in_file_order(real_database, monkeypatch):
    def lines() -> str:
        with read_session(real_database) as session:
            arrays = session.iter_sam_lines(PAIRED, batch_rows=777)
            return "".join(f"{line}\n" for array in arrays for line in array.to_pylist())

    expected = samtools_view(REAL_DATA / PAIRED)
    assert lines() == expected
    monkeypatch.setattr(selection, "_WINDOW_BYTES", 1)  # 1,000 records a window: 9 windows
    assert lines() == expected
    # an uneven selection, dense at the start and sparse after: windows of unequal counts
    where = ReadFilters(where="rec_no < 3000 OR rec_no % 100 = 0")
    with read_session(real_database) as session:
        arrays = session.iter_sam_lines(PAIRED, Selection(filters=where))
        chosen = [line for array in arrays for line in array.to_pylist()]
    assert chosen == [
        line
        for number, line in enumerate(expected.splitlines())
        if number < 3000 or number % 100 == 0
    ]
