"""``samtools flagstat``: the counters of bam_stat.c, computed in SQL."""

from dataclasses import dataclass, fields
from typing import Any

import duckdb

from bam_assets.model.tables import TableNames, TableSpec
from bam_assets.stats.records import records_sql

FLAGSTAT_TABLE = TableSpec(
    "read_stats_flagstat", "ordinal INTEGER, category VARCHAR, qc_passed BIGINT, qc_failed BIGINT"
)

FLAGSTAT_CATEGORIES = (
    "total",
    "primary",
    "secondary",
    "supplementary",
    "duplicates",
    "primary_duplicates",
    "mapped",
    "primary_mapped",
    "paired",
    "read1",
    "read2",
    "properly_paired",
    "with_itself_and_mate_mapped",
    "singletons",
    "mate_on_different_chr",
    "mate_on_different_chr_mapq5",
)


@dataclass(frozen=True)
class Flagstat:
    """``samtools flagstat`` counters, each a (QC-passed, QC-failed) pair."""

    total: tuple[int, int]
    primary: tuple[int, int]
    secondary: tuple[int, int]
    supplementary: tuple[int, int]
    duplicates: tuple[int, int]
    primary_duplicates: tuple[int, int]
    mapped: tuple[int, int]
    primary_mapped: tuple[int, int]
    paired: tuple[int, int]
    read1: tuple[int, int]
    read2: tuple[int, int]
    properly_paired: tuple[int, int]
    with_itself_and_mate_mapped: tuple[int, int]
    singletons: tuple[int, int]
    mate_on_different_chr: tuple[int, int]
    mate_on_different_chr_mapq5: tuple[int, int]

    def rows(self) -> list[tuple[str, int, int]]:
        return [(f.name, *getattr(self, f.name)) for f in fields(self)]

    def inconsistencies(self) -> list[str]:
        """Relations that bam_stat.c's counters always satisfy; empty when all hold."""
        problems = []
        for column, label in ((0, "QC-passed"), (1, "QC-failed")):

            def v(name: str, column: int = column) -> int:
                return getattr(self, name)[column]

            if v("primary") + v("secondary") + v("supplementary") != v("total"):
                problems.append(f"{label}: primary + secondary + supplementary != total")
            if v("read1") + v("read2") > 2 * v("paired") or v("paired") > v("primary"):
                problems.append(f"{label}: paired reads exceed primary reads")
            if v("primary_mapped") > v("mapped") or v("mapped") > v("total"):
                problems.append(f"{label}: mapped counts exceed their totals")
            if v("primary_duplicates") > v("duplicates"):
                problems.append(f"{label}: primary duplicates exceed duplicates")
            if v("properly_paired") > v("paired") or v("with_itself_and_mate_mapped") > v("paired"):
                problems.append(f"{label}: pair counts exceed paired reads")
            if v("mate_on_different_chr_mapq5") > v("mate_on_different_chr"):
                problems.append(f"{label}: mapQ>=5 subset exceeds its set")
        return problems


# bam_stat.c, flagstat_loop: every record counts in total, mapped and duplicates; the pairing
# counters look only at primary records (neither secondary nor supplementary) with 0x1 set.
_FLAGSTAT_SQL = """
    WITH r AS ({records}),
    p AS (SELECT *, NOT is_secondary AND NOT is_supplementary AS is_primary FROM r)
    SELECT is_qcfail,
        count(*),
        count(*) FILTER (is_primary),
        count(*) FILTER (is_secondary),
        count(*) FILTER (NOT is_secondary AND is_supplementary),
        count(*) FILTER (is_duplicate),
        count(*) FILTER (is_primary AND is_duplicate),
        count(*) FILTER (NOT is_unmapped),
        count(*) FILTER (is_primary AND NOT is_unmapped),
        count(*) FILTER (is_primary AND is_paired),
        count(*) FILTER (is_primary AND is_paired AND is_read1),
        count(*) FILTER (is_primary AND is_paired AND is_read2),
        count(*) FILTER (is_primary AND is_paired AND is_proper_pair AND NOT is_unmapped),
        count(*) FILTER (is_primary AND is_paired AND NOT is_unmapped AND NOT is_mate_unmapped),
        count(*) FILTER (is_primary AND is_paired AND is_mate_unmapped AND NOT is_unmapped),
        count(*) FILTER (is_primary AND is_paired AND NOT is_unmapped AND NOT is_mate_unmapped
                         AND next_ref_id <> ref_id),
        count(*) FILTER (is_primary AND is_paired AND NOT is_unmapped AND NOT is_mate_unmapped
                         AND next_ref_id <> ref_id AND mapq >= 5)
    FROM p
    GROUP BY is_qcfail
"""


def flagstat(connection: duckdb.DuckDBPyConnection, tables: TableNames, key: str) -> Flagstat:
    """The partition's ``samtools flagstat`` counters."""
    rows = connection.execute(
        _FLAGSTAT_SQL.format(records=records_sql(tables)), {"key": key}
    ).fetchall()
    counts = {bool(row[0]): row[1:] for row in rows}
    passed = counts.get(False, (0,) * len(FLAGSTAT_CATEGORIES))
    failed = counts.get(True, (0,) * len(FLAGSTAT_CATEGORIES))
    return Flagstat(*[(int(p), int(f)) for p, f in zip(passed, failed, strict=True)])


def flagstat_rows(stats: Flagstat) -> tuple[str, dict[str, Any]]:
    """The rows of ``FLAGSTAT_TABLE`` for ``stats`` (one per category, in samtools order), as
    a SELECT and its parameters."""
    rows = stats.rows()
    return (
        "SELECT $key, unnest(range(len($names))) + 1, unnest($names), unnest($passed), "
        "unnest($failed)",
        {
            "names": [r[0] for r in rows],
            "passed": [r[1] for r in rows],
            "failed": [r[2] for r in rows],
        },
    )
