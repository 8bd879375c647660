"""What ``samtools stats`` computes in file order: ``is sorted``, and, for coordinate-sorted files
only, the coverage distribution (COV) and the GC-depth bins (GCD).

stats.c, collect_stats: records that are mapped, not secondary and have SEQ (supplementary,
duplicate and QC-failed ones included) are compared with the previous one in file order; the
same reference and a smaller position mean the file is not sorted, and COV and GCD are then not
printed. A change of reference flushes the coverage buffer and starts a GC-depth bin, so every
run of one reference (chr1, chr2, chr1 are three runs) is handled on its own.
"""

import re
from dataclasses import dataclass

import duckdb
import numpy as np

from bam_assets.model.tables import TableNames
from bam_assets.stats.records import records_sql

f32 = np.float32

# stats.c, stats_init: the coverage histogram spans 1..1000 in steps of 1 ([<1], 1..1000,
# [1000<]); GC-depth bins hold reads within 20 kb of a bin's first read; the buffers start at
# 300 bases (nbases) and the coverage ring holds 5 reads' worth.
COVERAGE_MIN, COVERAGE_MAX, COVERAGE_STEP = 1, 1000, 1
COVERAGE_BINS = 3 + (COVERAGE_MAX - COVERAGE_MIN) // COVERAGE_STEP
GC_DEPTH_BIN_SIZE = 20_000
INITIAL_BASES = 300


# The records that reach the sort check, in file order, with what GCD needs: gc_count counts
# only for original first/last fragments (collect_orig_read_stats sets the bin's GC; others add
# 0), and `run` numbers the runs of one reference.
_ORDERED_SQL = """
    WITH c AS (
        SELECT rec_no, rname, pos,
               CASE WHEN NOT is_supplementary AND read_order IN (1, 2) THEN gc_count ELSE 0 END
                   AS gc_count,
               seq_len
        FROM ({records})
        WHERE NOT is_secondary AND NOT is_unmapped AND seq_len > 0
    ),
    w AS (
        SELECT *, lag(rname) OVER (ORDER BY rec_no) AS previous_rname,
                  lag(pos) OVER (ORDER BY rec_no) AS previous_pos
        FROM c
    )
    SELECT sum(CASE WHEN previous_rname IS DISTINCT FROM rname THEN 1 ELSE 0 END)
               OVER (ORDER BY rec_no ROWS UNBOUNDED PRECEDING) AS run,
           pos - 1 AS pos0, gc_count, seq_len,
           coalesce(previous_rname = rname AND pos < previous_pos, false) AS unsorted_step
    FROM w
    ORDER BY rec_no
"""


@dataclass(frozen=True)
class OrderedRecords:
    """The sort-checked records in file order: reference run, 0-based position, GC count and
    SEQ length."""

    is_sorted: bool
    run: np.ndarray
    pos0: np.ndarray
    gc_count: np.ndarray
    seq_length: np.ndarray


# The same check without the records: whether any sort-checked record follows one on the same
# reference with a larger position.
_IS_SORTED_SQL = """
    SELECT NOT coalesce(bool_or(rname = previous_rname AND pos < previous_pos), false)
    FROM (
        SELECT rname, pos, lag(rname) OVER (ORDER BY rec_no) AS previous_rname,
               lag(pos) OVER (ORDER BY rec_no) AS previous_pos
        FROM ({records})
        WHERE NOT is_secondary AND NOT is_unmapped AND seq_len > 0
    )
"""


def is_sorted(connection: duckdb.DuckDBPyConnection, tables: TableNames, key: str) -> bool:
    """``SN is sorted``: whether samtools stats finds the file sorted by coordinate."""
    row = connection.execute(_IS_SORTED_SQL.format(records=records_sql(tables)), {"key": key})
    return bool(row.fetchone()[0])


def ordered_records(
    connection: duckdb.DuckDBPyConnection, tables: TableNames, key: str
) -> OrderedRecords:
    table = connection.sql(
        _ORDERED_SQL.format(records=records_sql(tables)), params={"key": key}
    ).to_arrow_table()

    def column(name: str) -> np.ndarray:
        return table.column(name).to_numpy().astype(np.int64)

    unsorted = table.column("unsorted_step").to_numpy()
    return OrderedRecords(
        is_sorted=not bool(unsorted.any()),
        run=column("run"),
        pos0=column("pos0"),
        gc_count=column("gc_count"),
        seq_length=column("seq_len"),
    )


def gc_depth_lines(records: OrderedRecords, average_read_length: np.float32) -> list[str]:
    """GCD lines: collect_stats' GC-depth bins without a reference, output_stats' percentiles.

    A bin starts at the first read of a reference run and at every read more than 20 kb past the
    bin's first read; it counts reads (depth) and sums ``(float)gc_count / seq_len`` in C float,
    in file order. Bin 0 is never used (igcd is incremented first). output_stats rounds bins
    0..igcd-1 to whole percents (rint), sorts all igcd+1 bins (the last one still holding its raw
    sum) and prints groups of equal GC over the first igcd of them.
    """
    n = len(records.pos0)
    if n == 0:
        return []
    fraction = records.gc_count.astype(f32) / records.seq_length.astype(f32)
    starts = []
    run_bounds = np.flatnonzero(np.diff(records.run)) + 1
    run_starts, run_ends = np.concatenate(([0], run_bounds)), np.concatenate((run_bounds, [n]))
    for first, last in zip(run_starts, run_ends, strict=True):
        positions = records.pos0[first:last]
        i = 0
        while i < len(positions):
            starts.append(first + i)
            # The next bin starts at the first read more than 20 kb past this bin's first.
            i = int(np.searchsorted(positions, positions[i] + GC_DEPTH_BIN_SIZE, side="right"))
    starts.append(n)
    bins = len(starts) - 1
    depth = np.zeros(bins + 1, np.uint32)
    gc = np.zeros(bins + 1, f32)
    for k in range(bins):
        first, last = starts[k], starts[k + 1]
        depth[k + 1] = last - first
        gc[k + 1] = np.cumsum(fraction[first:last], dtype=f32)[-1]  # sequential float additions
    for k in range(bins):  # bins 0..igcd-1: rint(100. * gc / depth), double math, stored as float
        if depth[k]:
            gc[k] = f32(np.rint(100.0 * float(gc[k]) / int(depth[k])))
    order = np.lexsort((depth, gc))
    gc, depth = gc[order], depth[order]
    lines = []
    i = 0
    while i < bins:
        value = gc[i]
        size = 0
        while i + size < bins and abs(float(gc[i + size]) - float(value)) < 0.1:
            size += 1
        group = depth[i : i + size]
        percentiles = [
            f32(f32(_gcd_percentile(group, size, p) * average_read_length) / f32(GC_DEPTH_BIN_SIZE))
            for p in (10, 25, 50, 75, 90)
        ]
        lines.append(
            f"GCD\t{float(value):.1f}\t{(i + size + 1) * 100.0 / (bins + 1):.3f}\t"
            + "\t".join(f"{float(v):.3f}" for v in percentiles)
        )
        i += size
    return lines


def _gcd_percentile(depth: np.ndarray, n: int, p: int) -> np.float32:
    """stats.c, gcd_percentile: float arithmetic over uint32 depths."""
    x = f32(f32(f32(p) * f32(n + 1)) / f32(100))
    k = int(x)
    if k <= 0:
        return f32(depth[0])
    if k >= n:
        return f32(depth[n - 1])
    d = f32(x - f32(k))
    return f32(f32(depth[k - 1]) + f32(d * f32(int(depth[k]) - int(depth[k - 1]))))


# COV without the ring buffer's artefacts: every M/=/X block of the sort-checked records adds 1 to
# each position it covers, and a position counts once, with its depth. A sweep of +1/-1 events
# per block, with a running sum per reference run. Exact while no read reaches 300 bases (the
# buffers are then reallocated) and no reference span reaches 1500 (the ring wraps); otherwise
# ``_replayed_coverage`` replays the buffer.
_COVERAGE_SQL = """
    WITH c AS (
        SELECT rec_no, rname, pos, cigar FROM ({records})
        WHERE NOT is_secondary AND NOT is_unmapped AND seq_len > 0
    ),
    runs AS (
        SELECT *, sum(CASE WHEN previous IS DISTINCT FROM rname THEN 1 ELSE 0 END)
                      OVER (ORDER BY rec_no ROWS UNBOUNDED PRECEDING) AS run
        FROM (SELECT *, lag(rname) OVER (ORDER BY rec_no) AS previous FROM c)
    ),
    -- one-operation CIGARs (nM): one block; others: unnest the operations
    simple AS (
        SELECT run, pos - 1 AS b, pos - 1 + CAST(cigar[:-2] AS BIGINT) AS e
        FROM runs WHERE regexp_full_match(cigar, '\\d+[M=X]')
    ),
    ops AS (
        SELECT rec_no, run, pos, i, CAST(op[:-2] AS BIGINT) AS len, op[-1:] AS code
        FROM (SELECT rec_no, run, pos, unnest(ops) AS op, generate_subscripts(ops, 1) AS i
              FROM (SELECT rec_no, run, pos, regexp_extract_all(cigar, '\\d+[MIDNSHP=XB]') AS ops
                    FROM runs WHERE NOT regexp_full_match(cigar, '\\d+[M=X]')))
    ),
    blocks AS (
        -- start = pos - 1 + the reference length of the previous operations (M D N = X)
        SELECT run, b, b + len AS e FROM (
            SELECT run, code, len,
                   pos - 1 + coalesce(sum(CASE WHEN code IN ('M', 'D', 'N', '=', 'X') THEN len END)
                       OVER (PARTITION BY rec_no ORDER BY i
                             ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS b
            FROM ops
        ) WHERE code IN ('M', '=', 'X') AND len > 0
    ),
    events AS (
        SELECT run, b AS p, 1 AS d FROM simple UNION ALL SELECT run, e, -1 FROM simple
        UNION ALL SELECT run, b, 1 FROM blocks UNION ALL SELECT run, e, -1 FROM blocks
    ),
    steps AS (SELECT run, p, sum(d) AS d FROM events GROUP BY run, p),
    depth AS (
        SELECT sum(d) OVER (PARTITION BY run ORDER BY p) AS depth,
               lead(p) OVER (PARTITION BY run ORDER BY p) - p AS width
        FROM steps
    )
    SELECT least(depth, $top) AS depth, sum(width) AS positions
    FROM depth WHERE depth > 0
    GROUP BY 1
"""

# Whether the sweep is exact: the longest read (unclipped) and the longest reference span.
_COVERAGE_LIMITS_SQL = """
    SELECT coalesce(max(read_len) FILTER (NOT is_secondary AND seq_len > 0), 0),
           coalesce(max(end_pos - pos + 1)
                    FILTER (NOT is_secondary AND seq_len > 0 AND NOT is_unmapped), 0)
    FROM ({records})
"""


def coverage_lines(
    connection: duckdb.DuckDBPyConnection, tables: TableNames, key: str
) -> list[str]:
    """COV lines: how many positions have each depth (stats.c, round_buffer_flush)."""
    records = records_sql(tables)
    limits = connection.execute(_COVERAGE_LIMITS_SQL.format(records=records), {"key": key})
    longest_read, longest_span = limits.fetchone()
    if longest_read >= INITIAL_BASES or longest_span >= 5 * INITIAL_BASES:
        histogram = _replayed_coverage(connection, tables, key)
    else:
        histogram = np.zeros(COVERAGE_BINS, np.int64)
        rows = connection.execute(
            _COVERAGE_SQL.format(records=records), {"key": key, "top": COVERAGE_MAX + 1}
        ).fetchall()
        for depth, positions in rows:
            histogram[_coverage_index(int(depth))] += int(positions)
    return _coverage_text(histogram)


def _coverage_index(depth: int) -> int:
    if depth < COVERAGE_MIN:
        return 0
    if depth > COVERAGE_MAX:
        return COVERAGE_BINS - 1
    return 1 + (depth - COVERAGE_MIN) // COVERAGE_STEP


def _coverage_text(histogram: np.ndarray) -> list[str]:
    """output_stats' COV lines: ``[<1]``, ``[lo-hi]`` and ``[1000<]``, non-zero bins only."""
    lines = []
    if histogram[0]:
        lines.append(f"COV\t[<{COVERAGE_MIN}]\t{COVERAGE_MIN - 1}\t{histogram[0]}")
    for i in range(1, COVERAGE_BINS - 1):
        if histogram[i]:
            low = COVERAGE_MIN + (i - 1) * COVERAGE_STEP
            high = COVERAGE_MIN + i * COVERAGE_STEP - 1
            lines.append(f"COV\t[{low}-{high}]\t{high}\t{histogram[i]}")
    if histogram[-1]:
        top = COVERAGE_MIN + (COVERAGE_BINS - 2) * COVERAGE_STEP - 1
        lines.append(f"COV\t[{top}<]\t{top}\t{histogram[-1]}")
    return lines


def _c_modulo(a: int, b: int) -> int:
    """C's ``%``: the result has the sign of the dividend."""
    r = abs(a) % b
    return -r if a < 0 else r


class _RoundBuffer:
    """stats.c's round_buffer_t, with its artefacts: the last slot is not flushed on a jump or a
    new reference, and realloc_buffers copies the pending depths with byte counts (a memcpy of n
    bytes for n ints)."""

    def __init__(self, size: int):
        self.pos, self.start, self.size = 0, 0, size
        self.buffer = np.zeros(size, np.int32)
        self.histogram = np.zeros(COVERAGE_BINS, np.int64)

    def _index(self, pos: int) -> int:
        return _c_modulo(self.start + _c_modulo(pos - self.pos, self.size), self.size)

    def _count(self, first: int, last: int) -> None:
        chunk = self.buffer[first:last]
        values = chunk[chunk != 0].astype(np.int64)
        if len(values):
            index = np.where(
                values > COVERAGE_MAX,
                COVERAGE_BINS - 1,
                1 + (values - COVERAGE_MIN) // COVERAGE_STEP,
            )
            index = np.where(values < COVERAGE_MIN, 0, index)
            self.histogram += np.bincount(index, minlength=COVERAGE_BINS)
        chunk[:] = 0

    def flush(self, pos: int) -> None:
        """round_buffer_flush: counts the positions before ``pos`` (-1: all)."""
        if pos == self.pos:
            return
        new_pos = pos
        if pos == -1 or pos - self.pos >= self.size:
            pos = self.pos + self.size - 1
        if pos < self.pos:
            raise ValueError("samtools: Expected coordinates in ascending order")
        first, last = self.start, self._index(pos - 1)
        if first > last:
            self._count(first, self.size)
            first = 0
        self._count(first, last + 1)
        self.start = 0 if new_pos == -1 else self._index(pos)
        self.pos = new_pos

    def insert(self, begin: int, end: int) -> None:
        """round_buffer_insert_read over [begin, end)."""
        if end - begin > self.size:
            raise ValueError("samtools: The read length too big")
        if begin < self.pos:
            raise ValueError("samtools: The reads are not sorted")
        first, last = self._index(begin), self._index(end)
        if first > last:
            self.buffer[first : self.size] += 1
            first = 0
        if last > first:
            self.buffer[first:last] += 1

    def reallocate(self, read_length: int) -> None:
        """The coverage part of realloc_buffers."""
        new = np.zeros(read_length * 5, np.int32)
        n = self.size - self.start
        target, source = new.view(np.uint8), self.buffer.view(np.uint8)
        target[:n] = source[self.start * 4 : self.start * 4 + n]  # memcpy(rbuffer, buffer+start, n)
        if self.start > 1:  # memcpy(rbuffer+n, buffer, start)
            target[n * 4 : n * 4 + self.start] = source[: self.start]
        self.buffer, self.start, self.size = new, 0, read_length * 5


_CIGAR_OPERATION = re.compile(r"(\d+)([MIDNSHP=XB])")

# collect_stats' buffer work in file order: every non-secondary record with SEQ may grow the
# buffers (its unclipped length); mapped ones are inserted block by block.
_REPLAY_SQL = """
    SELECT read_len, is_unmapped, rname, pos - 1, cigar
    FROM ({records})
    WHERE NOT is_secondary AND seq_len > 0
    ORDER BY rec_no
"""


def _replayed_coverage(
    connection: duckdb.DuckDBPyConnection, tables: TableNames, key: str
) -> np.ndarray:
    """collect_stats replayed in file order (only the coverage buffer): used when reads reach
    300 bases (realloc_buffers replaces the buffer) or span 1500 (the ring wraps)."""
    rows = connection.execute(_REPLAY_SQL.format(records=records_sql(tables)), {"key": key})
    nbases = INITIAL_BASES
    ring = _RoundBuffer(INITIAL_BASES * 5)
    reference, last_pos = None, None
    for read_length, unmapped, rname, pos, cigar in rows.fetchall():
        if read_length >= nbases:
            nbases = 2 * (1 + read_length - nbases) + nbases
            ring.reallocate(read_length)
        if unmapped:
            continue
        if reference == rname and pos < last_pos:
            return np.zeros(COVERAGE_BINS, np.int64)  # not sorted: COV is not printed
        last_pos = pos
        if reference != rname:
            ring.flush(-1)
            reference = rname
        ring.flush(pos)
        position = pos
        for length, operation in _CIGAR_OPERATION.findall(cigar):
            length = int(length)
            if operation in "M=X":
                ring.insert(position, position + length)
            if operation in "MDN=X":
                position += length
    ring.flush(-1)
    return ring.histogram
