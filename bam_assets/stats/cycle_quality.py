"""Quality per sequencing cycle, summed while the reads stream into DuckDB.

``samtools stats`` reports, for each cycle of the original first and last fragments, how many
bases there are and their quality sum (FFQ/LFQ). Grouping every base by cycle in SQL took longer
than the ingest itself (150 million bases per million 150-bp reads); summed here, batch by batch,
it costs a few hundredths of a second per million reads, and the summary reads a small table.
"""

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from bam_assets.model.sam_bytes import escaped_rows, unescape_utf8
from bam_assets.model.tables import TableSpec
from bam_assets.stats import _cycle_sums
from bam_assets.util.arrow_numpy import int64_values, numpy_array

CYCLE_QUALITY_TABLE = TableSpec(
    "reads_cycle_quality",
    """fragment TINYINT NOT NULL,     -- 1: first fragments (and unpaired reads), 2: last
    cycle BIGINT NOT NULL,         -- 1-based, in sequencing order
    bases BIGINT NOT NULL,
    quality_sum BIGINT NOT NULL    -- of the bytes; a missing QUAL counts 255 per base""",
)


class CycleQuality:
    """Bases and quality sums per (fragment, cycle) over the batches it has seen.

    A side table of the reads: the store calls ``observe`` on each batch on its way in and writes
    ``rows()`` into ``CYCLE_QUALITY_TABLE`` in the same transaction as the reads.
    """

    table = CYCLE_QUALITY_TABLE

    def __init__(self) -> None:
        self._reads = np.zeros((2, 0), np.int64)  # [fragment, n - 1]: fragments of n bases
        self._sums = np.zeros((2, 0), np.int64)  # [fragment, cycle - 1]: base qualities

    def observe(self, batch: pa.RecordBatch) -> None:
        flag = batch.column("flag")
        seq = batch.column("seq")
        qual = _quality_bytes(batch.column("qual"))
        seq_offsets = _offsets(seq)
        if len(seq_offsets) > 1:
            self._grow(int(np.diff(seq_offsets).max()))
        _cycle_sums.add(
            np.frombuffer(flag.buffers()[1], np.int32, len(flag), flag.offset * 4),
            seq_offsets,
            seq.buffers()[2] or b"",
            _offsets(qual),
            qual.buffers()[2] or b"",
            int64_values(pc.fill_null(batch.column("qual_sum"), -1)),
            self._reads,
            self._sums,
        )

    def rows(self) -> pa.Table:
        """``fragment`` (1 first, 2 last), 1-based ``cycle``, ``bases`` and ``quality_sum`` for
        every cycle with bases."""
        # A cycle has one base from every fragment at least that long.
        bases = np.cumsum(self._reads[:, ::-1], axis=1)[:, ::-1]
        fragment, cycle = np.nonzero(bases)
        return pa.Table.from_arrays(
            [
                numpy_array(fragment.astype(np.int64) + 1),
                numpy_array(cycle.astype(np.int64) + 1),
                numpy_array(bases[fragment, cycle]),
                numpy_array(self._sums[fragment, cycle]),
            ],
            names=["fragment", "cycle", "bases", "quality_sum"],
        )

    def _grow(self, cycles: int) -> None:
        if cycles <= self._sums.shape[1]:
            return
        reads = np.zeros((2, cycles), np.int64)
        sums = np.zeros((2, cycles), np.int64)
        reads[:, : self._reads.shape[1]] = self._reads
        sums[:, : self._sums.shape[1]] = self._sums
        self._reads, self._sums = reads, sums


def _quality_bytes(qual: pa.StringArray) -> pa.Array:
    """The QUAL column with its escaped bytes (``model.sam_bytes``) turned back into bytes, so
    that each base is one byte again (rare: only QUALs of Phred 95 and more have them)."""
    data = np.frombuffer(qual.buffers()[2] or b"", np.uint8)
    offsets = _offsets(qual).astype(np.int64)
    if not len(escaped_rows(data[offsets[0] : offsets[-1]], offsets - offsets[0])):
        return qual
    values = qual.view(pa.binary()).to_pylist()
    return pa.array([None if v is None else unescape_utf8(v) for v in values], pa.binary())


def _offsets(column: pa.Array) -> np.ndarray:
    """The string column's int32 offsets (the values' buffer positions), sliced to the column."""
    return np.frombuffer(column.buffers()[1], np.int32, len(column) + 1, column.offset * 4)
