"""``samtools idxstats``: mapped and unmapped records per contig (bam_index.c), in SQL."""

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from bam_assets.model.tables import TableNames, TableSpec

IDXSTATS_TABLE = TableSpec(
    "read_stats_idxstats",
    "ordinal INTEGER, contig VARCHAR, length BIGINT, mapped BIGINT, unmapped BIGINT",
)


@dataclass(frozen=True)
class IdxstatsRow:
    """One ``samtools idxstats`` line; ``name`` is ``*`` for unplaced reads."""

    name: str
    length: int
    mapped: int
    unmapped: int


# bam_index.c (idxstats without an index, and the index's pseudo-bins): all records count,
# including secondary and supplementary, per reference id (core.tid: two contigs may share a
# name, or be named '*'); placed records split by 0x4, unplaced (-1) go to '*'.
_IDXSTATS_SQL = """
    SELECT ref_id,
           count(*) FILTER (NOT is_unmapped) AS mapped,
           count(*) FILTER (is_unmapped) AS unmapped,
           count(*) AS records
    FROM {reads}
    WHERE key = $key
    GROUP BY ref_id
"""


def reference_lengths(reference: str | None) -> dict[str, int]:
    """Sequence lengths from a FASTA reference's ``.fai`` index (empty without one)."""
    if not reference:
        return {}
    fai = Path(f"{reference}.fai")
    if not fai.is_file():
        return {}
    lengths = {}
    for line in fai.read_text().splitlines():
        name, length, *_ = line.split("\t")
        lengths[name] = int(length)
    return lengths


def idxstats(
    connection: duckdb.DuckDBPyConnection,
    tables: TableNames,
    key: str,
    file_format: str,
    references: Sequence[tuple[str, int]],
    reference_lengths: dict[str, int] | None = None,
) -> list[IdxstatsRow]:
    """One row per reference of the file (``references``: (name, length) in the order of the
    reads' ``ref_id``, the binary list of a BAM, as samtools lists them), then ``*`` (all
    records without a reference).

    For CRAM files htslib replaces an @SQ length that disagrees with the reference's ``.fai``
    (sanitise_SQ_lines), and idxstats prints the replaced length; pass ``reference_lengths``
    (see ``reference_lengths()``) to do the same.
    """
    counts = {
        ref_id: (mapped, unmapped, records)
        for ref_id, mapped, unmapped, records in connection.execute(
            _IDXSTATS_SQL.format(reads=tables.reads), {"key": key}
        ).fetchall()
    }
    overrides = reference_lengths if file_format == "CRAM" else None
    rows = []
    for ref_id, (name, length) in enumerate(references):
        mapped, unmapped, _ = counts.get(ref_id, (0, 0, 0))
        if overrides and name in overrides:
            length = overrides[name]
        rows.append(IdxstatsRow(name, length, int(mapped), int(unmapped)))
    unplaced = counts.get(-1, (0, 0, 0))[2]
    rows.append(IdxstatsRow("*", 0, 0, int(unplaced)))
    return rows


def idxstats_rows(rows: Sequence[IdxstatsRow]) -> tuple[str, dict[str, Any]]:
    """The rows of ``IDXSTATS_TABLE`` (header order, ``*`` last), as a SELECT and its
    parameters."""
    return (
        "SELECT $key, unnest(range(len($names))) + 1, unnest($names), unnest($lengths), "
        "unnest($mapped), unnest($unmapped)",
        {
            "names": [r.name for r in rows],
            "lengths": [r.length for r in rows],
            "mapped": [r.mapped for r in rows],
            "unmapped": [r.unmapped for r in rows],
        },
    )
