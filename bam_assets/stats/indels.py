"""``samtools stats`` ID and IC lines: indel lengths and indels per cycle (stats.c,
count_indels), in SQL."""

import duckdb

from bam_assets.model.tables import TableNames
from bam_assets.stats.records import records_sql

# stats.c, count_indels on every mapped, non-secondary record with SEQ. icycle advances over M, I,
# S, = and X (not D, N, H, P); an insertion's cycle is icycle (forward strand) or
# l_qseq - icycle - len (reverse); a deletion's icycle - 1 or l_qseq - icycle - 1 ("meaningless"
# negative ones are dropped from both ID and IC). Indels longer than nindels (300, never grown)
# are left out of ID; IC counts first and last fragments only. Only records with I or D are
# split into their operations.
_INDEL_SQL = """
    WITH r AS (
        SELECT rec_no, is_reverse, seq_len, read_order,
               regexp_extract_all(cigar, '\\d+[MIDNSHP=XB]') AS ops
        FROM ({records})
        WHERE NOT is_secondary AND seq_len > 0 AND NOT is_unmapped
              AND regexp_matches(cigar, '[ID]')
    ),
    o AS (
        SELECT rec_no, is_reverse, seq_len, read_order, i,
               CAST(op[:-2] AS BIGINT) AS len, op[-1:] AS code
        FROM (SELECT *, unnest(ops) AS op, generate_subscripts(ops, 1) AS i FROM r)
    ),
    c AS (
        SELECT *, coalesce(sum(CASE WHEN code IN ('M', 'I', 'S', '=', 'X') THEN len END)
                      OVER (PARTITION BY rec_no ORDER BY i
                            ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS icycle
        FROM o
    )
    SELECT code, len, read_order,
           CASE WHEN code = 'I' THEN
                    CASE WHEN NOT is_reverse THEN icycle ELSE seq_len - icycle - len END
                ELSE CASE WHEN NOT is_reverse THEN icycle - 1 ELSE seq_len - icycle - 1 END
           END AS cycle_index,
           count(*) AS n
    FROM c
    WHERE code IN ('I', 'D') AND len > 0
    GROUP BY ALL
"""

MAX_INDEL_LENGTH = 300  # stats->nindels


def indel_lines(
    connection: duckdb.DuckDBPyConnection, tables: TableNames, key: str
) -> tuple[list[str], list[str]]:
    """(ID lines, IC lines) as output_stats prints them."""
    rows = connection.execute(_INDEL_SQL.format(records=records_sql(tables)), {"key": key})
    insertions: dict[int, int] = {}
    deletions: dict[int, int] = {}
    cycles: dict[int, list[int]] = {}
    for code, length, order, index, n in rows.fetchall():
        if code == "D" and index < 0:
            continue
        if length <= MAX_INDEL_LENGTH:
            target = insertions if code == "I" else deletions
            target[length] = target.get(length, 0) + n
        if order in (1, 2):
            column = (0 if order == 1 else 1) + (0 if code == "I" else 2)
            cycles.setdefault(index, [0, 0, 0, 0])[column] += n
    ids = [
        f"ID\t{length}\t{insertions.get(length, 0)}\t{deletions.get(length, 0)}"
        for length in sorted(set(insertions) | set(deletions))
    ]
    ics = [f"IC\t{index + 1}\t" + "\t".join(map(str, cycles[index])) for index in sorted(cycles)]
    return ids, ics
