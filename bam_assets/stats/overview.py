"""The cross-file overview (one row per stored file) and the bookkeeping checks of a
partition."""

from dataclasses import dataclass

import duckdb

from bam_assets.model.sam import NOT_PRIMARY
from bam_assets.model.tables import TableNames, TableSpec

OVERVIEW_TABLE = TableSpec("read_stats_overview", "")

OVERVIEW_COLUMNS = (
    "key",
    "format",
    "records",
    "primary",
    "primary_mapped",
    "properly_paired",
    "duplicates",
    "secondary",
    "supplementary",
    "qc_failed",
    "ingest_seconds",
)

# Per file, samtools flagstat's QC-passed + QC-failed counts of the same names.
_OVERVIEW_SQL = """
    SELECT f.key, f.format, count(r.key) AS records,
           count(*) FILTER (r.flag & {non_primary} = 0) AS "primary",
           count(*) FILTER (r.flag & {non_primary} = 0 AND NOT r.is_unmapped) AS primary_mapped,
           count(*) FILTER (r.flag & {non_primary} = 0 AND r.is_paired AND r.is_proper_pair
                            AND NOT r.is_unmapped) AS properly_paired,
           count(*) FILTER (r.is_duplicate) AS duplicates,
           count(*) FILTER (r.is_secondary) AS secondary,
           count(*) FILTER (NOT r.is_secondary AND r.is_supplementary) AS supplementary,
           count(*) FILTER (r.is_qcfail) AS qc_failed,
           f.ingest_seconds
    FROM {files} f LEFT JOIN {reads} r ON r.key = f.key
    GROUP BY f.key, f.format, f.ingest_seconds
    ORDER BY f.key
"""


def overview_sql(tables: TableNames) -> str:
    """One row per ingested file with samtools flagstat's QC-passed + QC-failed counts."""
    return _OVERVIEW_SQL.format(files=tables.files, reads=tables.reads, non_primary=NOT_PRIMARY)


def overview_rows(connection: duckdb.DuckDBPyConnection, tables: TableNames) -> list[tuple]:
    """The stored overview, ordered by key."""
    return connection.execute(f"SELECT * FROM {tables.of(OVERVIEW_TABLE)} ORDER BY key").fetchall()


@dataclass(frozen=True)
class PartitionIntegrity:
    """Row bookkeeping of one partition: rec_no must run 0..n-1 exactly once each."""

    rows: int
    distinct_rec_no: int
    min_rec_no: int | None
    max_rec_no: int | None
    files_read_count: int | None

    @property
    def duplicated_rows(self) -> int:
        return self.rows - self.distinct_rec_no

    @property
    def consistent(self) -> bool:
        contiguous = self.rows == 0 or (self.min_rec_no == 0 and self.max_rec_no == self.rows - 1)
        return self.duplicated_rows == 0 and contiguous and self.files_read_count == self.rows


def partition_integrity(
    connection: duckdb.DuckDBPyConnection, tables: TableNames, key: str
) -> PartitionIntegrity:
    row = connection.execute(
        f"""
        SELECT count(*), count(DISTINCT rec_no), min(rec_no), max(rec_no),
               (SELECT read_count FROM {tables.files} WHERE key = $key)
        FROM {tables.reads}
        WHERE key = $key
        """,
        {"key": key},
    ).fetchone()
    assert row is not None
    return PartitionIntegrity(*row)
