"""``view``'s selection as SQL over the reads table, in samtools' terms.

A record overlaps a region as htslib's index iterator decides (hts.c ``hts_itr_next``: it starts
at or before the region's end and its ``bam_endpos`` is past the region's start), where a record
that is unmapped or has no reference-consuming CIGAR operation spans one base: in the reads
table, ``pos <= end AND coalesce(end_pos, pos) >= start`` (both 1-based and closed). The region
``*`` is the records without a reference (``rname = '*'``). The filters follow ``process_aln`` in
samtools' sam_view.c.

Plain SQL over ``tables``, so any store whose session runs DuckDB SQL can run it. Every query
names one partition (``key``) and a range of ``rec_no``, and DuckDB skips the row groups whose
min/max of those columns cannot match. With regions, a first query finds the rec_no span of the
records that overlap them, with conditions on ``rname``, ``pos`` and ``end_pos`` that skip row
groups too (in a coordinate-sorted partition all but the few holding the regions); the count and
the records are then read from that span only. A BED file's intervals, merged as samtools merges
them, are matched with an ASOF join (each record against the last interval starting at or before
its end), so thousands of intervals cost a sort, not a comparison per record and interval.
"""

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

import duckdb
import pyarrow as pa

from bam_assets.model.regions import UNPLACED, Region
from bam_assets.model.selection import ReadFilters, Selection, SelectionError
from bam_assets.model.tables import TableNames

# The last reference base a record covers, as the index iterator counts it (bam_endpos).
_READ_END = "coalesce(end_pos, pos)"

# Whether the RG:Z value is among $groups; records without an RG tag pass -r and -R
# (sam_view.c, process_aln).
_READ_GROUP = (
    "(NOT regexp_matches(tags, '(^|\\t)RG:') "
    "OR {negation}list_contains(${groups}, regexp_extract(tags, '(?:^|\\t)RG:Z:([^\\t]*)', 1)))"
)


@dataclass(frozen=True)
class SelectionQuery:
    """The selected records of partition ``$key`` with ``rec_no`` in ``[$first, $stop)``:
    ``from_sql`` is a subquery (``FROM ...``) with every column of the reads table, unordered;
    ``parameters`` are its values apart from ``key``, ``first`` and ``stop``.

    With regions, ``span_sql`` (values ``span_parameters`` and ``key``) gives the first and last
    rec_no of the records that overlap any of them: a range that holds every selected record,
    found with conditions DuckDB checks against each row group's min/max."""

    from_sql: str
    parameters: dict[str, Any]
    where: str | None = None
    span_sql: str | None = None
    span_parameters: dict[str, Any] = field(default_factory=dict)


def _regions_sql(
    regions: Sequence[Region], tables: TableNames, parameters: dict[str, Any]
) -> tuple[str, str]:
    """The overlap condition of ``regions`` (one OR) and their span query (see
    ``SelectionQuery``); ``parameters`` receives their values.

    A condition on ``coalesce(end_pos, pos)`` cannot skip a row group, so the span query asks
    for the same records as two conditions on plain columns per region (those with an
    ``end_pos``, and the one-base records without one), each able to skip row groups: in a
    coordinate-sorted file, every row group but those holding the region."""
    terms, branches = [], []
    for index, region in enumerate(regions):
        if region.rname == UNPLACED:
            terms.append(f"rname = '{UNPLACED}'")
            branches.append(f"rname = '{UNPLACED}'")
            continue
        parameters |= {
            f"rname_{index}": region.rname,
            f"start_{index}": region.start,
            f"end_{index}": region.end,
        }
        placed = f"rname = $rname_{index} AND pos <= $end_{index}"
        terms.append(f"({placed} AND {_READ_END} >= $start_{index})")
        branches += [
            f"{placed} AND end_pos >= $start_{index}",
            f"{placed} AND pos >= $start_{index} AND end_pos IS NULL",
        ]
    span = " UNION ALL ".join(
        f"SELECT rec_no FROM {tables.reads} WHERE key = $key AND {branch}" for branch in branches
    )
    return "(" + " OR ".join(terms) + ")", f"SELECT min(rec_no), max(rec_no) FROM ({span})"


def _merged(intervals: Sequence[Region]) -> list[Region]:
    """Intervals sorted by reference and start, overlapping or adjacent ones merged (samtools'
    ``bed_unify``): the union is the same, and the last interval starting at or before a
    position is then the only one that can reach it."""
    merged: list[Region] = []
    for interval in sorted(intervals, key=lambda i: (i.rname, i.start, i.end)):
        last = merged[-1] if merged else None
        if last and last.rname == interval.rname and interval.start <= last.end + 1:
            merged[-1] = Region(last.rname, last.start, max(last.end, interval.end))
        else:
            merged.append(interval)
    return merged


def predicate_sql(connection: duckdb.DuckDBPyConnection, where: str) -> str:
    """``where`` as DuckDB renders it back after parsing it as one expression and nothing else
    (no second statement, FROM, alias, ``*``, GROUP BY, ORDER BY or LIMIT): the text that reaches
    the query is DuckDB's own, so it cannot close a parenthesis or start a statement.

    Raises ``SelectionError`` with DuckDB's reason. Whether it names real columns and is a
    predicate is checked when the query binds."""
    statement = f"SELECT {where}\n"
    try:
        if len(duckdb.extract_statements(statement)) != 1:
            raise SelectionError(f"--where {where!r} is more than one SQL statement")
    except duckdb.ParserException as error:
        raise SelectionError(f"--where {where!r} is not one SQL expression: {error}") from error
    parsed = json.loads(
        connection.execute("SELECT json_serialize_sql($sql)", {"sql": statement}).fetchone()[0]
    )
    node = parsed["statements"][0]["node"] if not parsed.get("error") else {}
    expressions = node.get("select_list", [])
    if not (
        node.get("type") == "SELECT_NODE"
        and node["from_table"]["type"] == "EMPTY"
        and len(expressions) == 1
        and not expressions[0].get("alias")
        and expressions[0].get("class") != "STAR"
        and node.get("where_clause") is None
        and not node.get("group_expressions")
        and not node.get("group_sets")
        and node.get("having") is None
        and node.get("qualify") is None
        and node.get("sample") is None
        and not node.get("modifiers")
        and not node["cte_map"]["map"]
    ):
        raise SelectionError(
            f"--where {where!r} is not one SQL expression: give a predicate on the reads "
            "columns, e.g. \"mapq >= 30 AND NOT is_duplicate\" (no ';', FROM, AS, ORDER BY "
            "or LIMIT)"
        )
    rendered = connection.execute(
        "SELECT json_deserialize_sql($json)", {"json": json.dumps(parsed)}
    ).fetchone()[0]
    return rendered.removeprefix("SELECT ")


def _filters_sql(filters: ReadFilters, parameters: dict[str, Any]) -> list[str]:
    conditions = []
    if filters.require_flags:
        parameters["require_flags"] = filters.require_flags
        conditions.append("flag & $require_flags = $require_flags")
    if filters.exclude_flags:
        parameters["exclude_flags"] = filters.exclude_flags
        conditions.append("flag & $exclude_flags = 0")
    if filters.exclude_all_flags:
        parameters["exclude_all_flags"] = filters.exclude_all_flags
        conditions.append("flag & $exclude_all_flags <> $exclude_all_flags")
    if filters.min_mapq:
        parameters["min_mapq"] = filters.min_mapq
        conditions.append("mapq >= $min_mapq")
    if filters.read_groups is not None:
        parameters["read_groups"] = sorted(filters.read_groups)
        conditions.append(_READ_GROUP.format(negation="", groups="read_groups"))
    if filters.excluded_read_groups:
        parameters["excluded_read_groups"] = sorted(filters.excluded_read_groups)
        conditions.append(_READ_GROUP.format(negation="NOT ", groups="excluded_read_groups"))
    return conditions


def selection_query(
    connection: duckdb.DuckDBPyConnection, tables: TableNames, selection: Selection
) -> SelectionQuery:
    """The SQL of ``selection``; raises ``SelectionError`` for a ``where`` that is not one
    expression."""
    parameters: dict[str, Any] = {}
    conditions = ["key = $key", "rec_no >= $first", "rec_no < $stop"]
    span_sql = None
    if selection.regions:
        overlap, span_sql = _regions_sql(selection.regions, tables, parameters)
        conditions.append(overlap)
    span_parameters = dict(parameters)
    conditions += _filters_sql(selection.filters, parameters)
    # The user's predicate is the whole WHERE of a query over the partition's rows already chosen.
    sql = f"(SELECT * FROM {tables.reads} WHERE {' AND '.join(conditions)}) AS reads"
    if selection.filters.where is not None:
        predicate = predicate_sql(connection, selection.filters.where)
        sql = f"(SELECT * FROM {sql} WHERE {predicate}) AS reads"
    targets = selection.filters.targets
    if targets == ():
        sql = f"(SELECT * FROM {sql} WHERE false) AS reads"  # an empty BED file keeps nothing
    elif targets is not None:
        merged = _merged(targets)
        parameters |= {
            "target_rnames": [t.rname for t in merged],
            "target_starts": [t.start for t in merged],
            "target_ends": [t.end for t in merged],
        }
        sql = f"""(
            SELECT reads.* FROM {sql}
            ASOF JOIN (
                SELECT unnest($target_rnames) AS target_rname,
                       unnest($target_starts) AS target_start,
                       unnest($target_ends) AS target_end
            ) AS targets
            ON reads.rname = targets.target_rname AND {_READ_END} >= targets.target_start
            WHERE reads.pos <= targets.target_end
        ) AS reads"""
    return SelectionQuery(sql, parameters, selection.filters.where, span_sql, span_parameters)


# A record as ``samtools view`` prints it: the 11 fields and the optional ones, tab-separated.
_SAM_LINE = """concat_ws(chr(9), qname, flag, rname, pos, mapq, cigar, rnext, pnext, tlen, seq,
                         qual, nullif(tags, ''))"""

# Text of the records sorted at once: the selected records are read in windows of rec_no, each
# holding about this much SAM text when they spread evenly, so a whole-file view never sorts the
# partition in memory. DuckDB's sort takes several times the text: a whole-file view of 200k
# 150-bp reads peaked 150 MB above the interpreter with 16 MB windows, 300 MB with 64 MB.
_WINDOW_BYTES = 16 << 20
# SAM text per byte of the source file, for sizing the windows: BGZF-compressed BAM and CRAM
# records expand about 3 to 4 times (SAM files 1 time).
_TEXT_PER_FILE_BYTE = 4


def _bounds(
    connection: duckdb.DuckDBPyConnection, query: SelectionQuery, key: str
) -> tuple[int, int, int]:
    """(count, first rec_no, last rec_no) of the selected records. This query also binds and
    runs a ``where`` predicate over every candidate record, so its errors come before any
    output."""
    first, stop = 0, 1 << 62
    if query.span_sql is not None:
        span = connection.execute(query.span_sql, {**query.span_parameters, "key": key})
        first, last = span.fetchone()
        if first is None:
            return 0, 0, 0
        stop = last + 1
    parameters = {**query.parameters, "key": key, "first": first, "stop": stop}
    try:
        count, first, last = connection.execute(
            f"SELECT count(*), min(rec_no), max(rec_no) FROM {query.from_sql}", parameters
        ).fetchone()
    except (duckdb.ProgrammingError, duckdb.DataError) as error:
        if query.where is None:
            raise
        # Binding and running the predicate: an unknown column or function, an aggregate, a
        # failed cast. DuckDB's first lines say what; the rest quotes the generated SQL.
        reason = str(error).split("\n\nLINE ")[0]
        raise SelectionError(f"--where {query.where!r}: {reason}") from error
    return count, first or 0, last or 0


def count_selected(
    connection: duckdb.DuckDBPyConnection, tables: TableNames, key: str, selection: Selection
) -> int:
    """``samtools view -c``: the number of records of ``key`` that ``selection`` keeps."""
    return _bounds(connection, selection_query(connection, tables, selection), key)[0]


def _window_records(connection: duckdb.DuckDBPyConnection, tables: TableNames, key: str) -> int:
    """How many records of ``key`` make about ``_WINDOW_BYTES`` of SAM text."""
    size_bytes, read_count = connection.execute(
        f"SELECT size_bytes, read_count FROM {tables.files} WHERE key = $key", {"key": key}
    ).fetchone()
    text_per_record = max(1, size_bytes * _TEXT_PER_FILE_BYTE // max(read_count, 1))
    return max(1_000, _WINDOW_BYTES // text_per_record)


def selected_lines(
    connection: duckdb.DuckDBPyConnection,
    tables: TableNames,
    key: str,
    selection: Selection,
    batch_rows: int,
) -> Iterator[pa.Array]:
    """The SAM lines of the selected records of ``key`` in file order, as Arrow string arrays of
    at most ``batch_rows``. Raises ``SelectionError`` now, before any line, for a selection that
    cannot run.

    The rec_no range of the selected records is cut into as many equal windows as it takes to
    hold about ``_window_records`` each; each window is one query sorted by rec_no.
    """
    query = selection_query(connection, tables, selection)
    count, first, last = _bounds(connection, query, key)
    if not count:
        return iter(())
    windows = -(-count // _window_records(connection, tables, key))
    bounds = [first + (last + 1 - first) * index // windows for index in range(windows + 1)]
    return _windows(connection, query, key, list(pairwise(bounds)), batch_rows)


def _windows(
    connection: duckdb.DuckDBPyConnection,
    query: SelectionQuery,
    key: str,
    windows: list[tuple[int, int]],
    batch_rows: int,
) -> Iterator[pa.Array]:
    for first, stop in windows:
        result = connection.sql(
            f"SELECT {_SAM_LINE} AS line FROM {query.from_sql} ORDER BY rec_no",
            params={**query.parameters, "key": key, "first": first, "stop": stop},
        )
        for batch in result.to_arrow_reader(batch_rows):
            yield batch.column(0)
