"""The parts of ``samtools stats`` that look at every base: CHK, FFQ/LFQ and the base content
per cycle (GCC, GCT, FBC/FTC, LBC/LTC), summed over the stored SEQ and QUAL a batch at a time.

DuckDB has no CRC32, and grouping every base by cycle in SQL costs 27-29 s per million 150-bp
reads; numpy over Arrow batches of (qname, flag, seq, qual) costs about 6.7 s. Only the complete
``samtools stats`` text needs these numbers (the CLI and the MultiQC export ask for it); the
summaries shown in the UI use the per-cycle sums of ``cycle_quality``.
"""

import zlib
from dataclasses import dataclass

import duckdb
import numpy as np
import pyarrow as pa

from bam_assets.model.sam import (
    PAIRED,
    PHRED_OFFSET,
    READ1,
    READ2,
    REVERSE,
    SECONDARY,
    SUPPLEMENTARY,
)
from bam_assets.model.tables import TableNames

# htslib's seq_nt16_table: SEQ characters to BAM's 4-bit codes "=ACMGRSVTWYHKDBN".
_SEQ_CODE = np.full(256, 15, np.uint8)
for _code, _base in enumerate("=ACMGRSVTWYHKDBN"):
    _SEQ_CODE[ord(_base)] = _code
    _SEQ_CODE[ord(_base.lower())] = _code
# stats.c's acgtno_count_t slot of each 4-bit code: A C G T N, anything else (=, IUPAC) "other".
_ACGTNO = np.full(16, 5, np.uint8)
_ACGTNO[[1, 2, 4, 8, 15]] = [0, 1, 2, 3, 4]
_SLOT = _ACGTNO[_SEQ_CODE]  # SEQ character -> slot
_COMPLEMENT_ACGT = [3, 2, 1, 0]  # slots A C G T of the complementary bases
_COMPLEMENT = np.array([3, 2, 1, 0, 4, 5], np.int64)
# Records of one length gathered as a (records x bases) matrix; rarer lengths go one by one.
_MIN_GROUP = 32
_MISSING_QUALITY = 0xFF  # a QUAL '*' is 0xff per base in BAM, and stats.c counts it so


def string_parts(column: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(int64 offsets from 0, data bytes) of an Arrow string column, sliced to the column."""
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        column = column.cast(pa.string())
    width = np.int64 if pa.types.is_large_string(column.type) else np.int32
    buffers = column.buffers()
    itemsize = np.dtype(width).itemsize
    offsets = np.frombuffer(buffers[1], width, len(column) + 1, column.offset * itemsize)
    offsets = offsets.astype(np.int64)
    data = np.frombuffer(buffers[2], np.uint8) if buffers[2] is not None else np.zeros(0, np.uint8)
    return offsets - offsets[0], data[offsets[0] : offsets[-1]]


@dataclass
class Checksums:
    """stats.c, update_checksum: CRC32 of each record's name, of its SEQ as BAM stores it and of
    its raw Phred bytes, summed modulo 2^32 (so the order of records does not matter)."""

    names: int = 0
    sequences: int = 0
    qualities: int = 0


class BaseCounts:
    """Per-base counters of ``samtools stats``, added batch by batch.

    ``quality[fragment, cycle, q]``: FFQ/LFQ (original first and last fragments, reverse-strand
    reads counted back to front). ``content[fragment, cycle, slot]``: A C G T N other per cycle
    (FBC/LBC, FTC/LTC, and GCC as their sum). ``read_oriented[cycle, slot]``: GCT, bases
    complemented on reverse-strand reads. ``max_quality``: stats->max_qual.
    """

    def __init__(self) -> None:
        self.checksums = Checksums()
        self.quality = np.zeros((2, 0, 1), np.int64)
        self.content = np.zeros((2, 0, 6), np.int64)
        self.read_oriented = np.zeros((0, 4), np.int64)
        self.max_quality = 0

    def observe(self, batch: pa.RecordBatch) -> None:
        """Adds a batch of (qname, flag, seq, qual, qual_sum) rows."""
        flag = batch.column("flag").to_numpy(zero_copy_only=False).astype(np.int64)
        seq_offsets, seq_data = string_parts(batch.column("seq"))
        qual_offsets, qual_data = string_parts(batch.column("qual"))
        seq_text_length, qual_text_length = np.diff(seq_offsets), np.diff(qual_offsets)
        # SEQ '*' is l_qseq 0.
        star = np.zeros(len(flag), bool)
        one = np.flatnonzero(seq_text_length == 1)
        star[one] = seq_data[seq_offsets[one]] == ord("*")
        seq_length = np.where(star, 0, seq_text_length)
        # The QUAL text alone is ambiguous for a one-base read of quality 9 ('*' = 33 + 9); the
        # stored qual_sum is NULL exactly when QUAL is missing.
        quality_missing = batch.column("qual_sum").is_null().to_numpy(zero_copy_only=False)
        self._add_checksums(
            batch.column("qname"),
            seq_length,
            seq_text_length,
            seq_data,
            qual_text_length,
            qual_data,
            quality_missing,
        )
        # READ_ORDER: unpaired reads are first fragments; paired ones READ1 -> 1, READ2 -> 2.
        order = np.where(
            flag & PAIRED == 0, 1, (flag & READ1 != 0).astype(np.int64) + 2 * (flag & READ2 != 0)
        )
        keep = (flag & (SECONDARY | SUPPLEMENTARY) == 0) & (seq_length > 0) & np.isin(order, (1, 2))
        reverse = flag & REVERSE != 0
        kept = np.flatnonzero(keep)
        # One (records x bases) byte matrix per length, fragment and strand.
        group = (seq_length[kept] * 2 + (order[kept] - 1)) * 2 + reverse[kept]
        groups, sizes = np.unique(group, return_counts=True)
        for value in groups[sizes >= _MIN_GROUP].tolist():
            length, fragment, is_reverse = value // 4, (value // 2) % 2, bool(value % 2)
            rows = np.zeros(len(flag), bool)
            rows[kept[group == value]] = True
            count = int(rows.sum())
            seqs = seq_data[np.repeat(rows, seq_text_length)].reshape(count, length)
            with_quality = rows & ~quality_missing
            quality_rows = int(with_quality.sum())
            quals = (
                qual_data[np.repeat(with_quality, qual_text_length)].reshape(quality_rows, length)
                if quality_rows
                else None
            )
            self._add(fragment, is_reverse, length, seqs, quals, count - quality_rows)
        few = set(groups[sizes < _MIN_GROUP].tolist())
        if few:
            for i, value in zip(kept.tolist(), group.tolist(), strict=True):
                if value not in few:
                    continue
                length, fragment, is_reverse = value // 4, (value // 2) % 2, bool(value % 2)
                seqs = seq_data[seq_offsets[i] : seq_offsets[i] + length][None, :]
                quals = None
                if not quality_missing[i]:
                    quals = qual_data[qual_offsets[i] : qual_offsets[i] + length][None, :]
                self._add(fragment, is_reverse, length, seqs, quals, int(quality_missing[i]))

    def _grow(self, length: int, quality_values: int) -> None:
        """Room for ``length`` cycles and ``quality_values`` quality values (grown geometrically
        in cycles)."""
        cycles, qualities = self.quality.shape[1], self.quality.shape[2]
        if length > cycles or quality_values > qualities:
            new_cycles = cycles if length <= cycles else max(length, 2 * cycles)
            grown = np.zeros((2, new_cycles, max(qualities, quality_values)), np.int64)
            grown[:, :cycles, :qualities] = self.quality
            self.quality = grown
        cycles = self.content.shape[1]
        if length > cycles:
            new_cycles = max(length, 2 * cycles)
            content = np.zeros((2, new_cycles, 6), np.int64)
            content[:, :cycles] = self.content
            self.content = content
            oriented = np.zeros((new_cycles, 4), np.int64)
            oriented[:cycles] = self.read_oriented
            self.read_oriented = oriented

    def _add(
        self,
        fragment: int,
        is_reverse: bool,
        length: int,
        seqs: np.ndarray,
        quals: np.ndarray | None,
        missing: int,
    ) -> None:
        """collect_orig_read_stats for records of one length, fragment and strand: ``seqs`` and
        ``quals`` are byte matrices (QUAL only of the records that have one; ``missing`` records
        have none). A stored base j of a reverse-strand read is cycle length-1-j."""
        cycle = np.arange(length, dtype=np.int64)
        if is_reverse:
            cycle = cycle[::-1]
        top = _MISSING_QUALITY if missing else 0
        if quals is not None:
            top = max(top, int(quals.max()) - PHRED_OFFSET)
        self._grow(length, top + 1)
        self.max_quality = max(self.max_quality, top)
        width = self.quality.shape[2]
        if quals is not None:
            if len(quals) == 1:  # each cycle once: no repeated (cycle, quality) pairs
                self.quality[fragment, cycle, quals[0].astype(np.int64) - PHRED_OFFSET] += 1
            else:
                index = quals + (cycle * width - PHRED_OFFSET)[None, :]
                self.quality[fragment, :length] += np.bincount(
                    index.ravel(), minlength=length * width
                ).reshape(length, width)
        if missing:
            self.quality[fragment, :length, _MISSING_QUALITY] += missing
        if len(seqs) == 1:
            slot = _SLOT[seqs[0]].astype(np.int64)
            self.content[fragment, cycle, slot] += 1
            oriented = _COMPLEMENT[slot] if is_reverse else slot
            acgt = oriented < 4
            self.read_oriented[cycle[acgt], oriented[acgt]] += 1
            return
        slots = np.bincount(
            (_SLOT[seqs] + (cycle * 6)[None, :]).ravel(), minlength=length * 6
        ).reshape(length, 6)
        self.content[fragment, :length] += slots
        # GCT: A<->T and C<->G on reverse-strand reads; N and others are not counted.
        self.read_oriented[:length] += slots[:, _COMPLEMENT_ACGT] if is_reverse else slots[:, :4]

    def _add_checksums(
        self,
        qname: pa.Array,
        seq_length: np.ndarray,
        seq_text_length: np.ndarray,
        seq_data: np.ndarray,
        qual_text_length: np.ndarray,
        qual_data: np.ndarray,
        quality_missing: np.ndarray,
    ) -> None:
        """update_checksum on every record (secondary, supplementary and unmapped ones too)."""
        mask = 0xFFFFFFFF
        crc = zlib.crc32
        name_offsets, name_data = string_parts(qname)
        names = name_data.tobytes()
        total = self.checksums.names
        bounds = name_offsets.tolist()
        for start, end in zip(bounds[:-1], bounds[1:], strict=True):
            total += crc(names[start:end])
        self.checksums.names = total & mask
        sequences, qualities = self.checksums.sequences, self.checksums.qualities
        seq_offsets = np.concatenate(([0], np.cumsum(seq_text_length)))
        qual_offsets = np.concatenate(([0], np.cumsum(qual_text_length)))
        lengths, counts = np.unique(seq_length[seq_length > 0], return_counts=True)
        for length, count in zip(lengths.tolist(), counts.tolist(), strict=True):
            rows = seq_length == length
            has_quality = ~quality_missing[rows]
            if count >= _MIN_GROUP:
                codes = _SEQ_CODE[seq_data[np.repeat(rows, seq_text_length)].reshape(count, length)]
                text = qual_data[np.repeat(rows & ~quality_missing, qual_text_length)]
                text = text.reshape(-1, length)
            else:
                index = np.flatnonzero(rows)
                codes = _SEQ_CODE[
                    np.stack([seq_data[seq_offsets[i] : seq_offsets[i] + length] for i in index])
                ]
                parts = [
                    qual_data[qual_offsets[i] : qual_offsets[i] + length]
                    for i in index[has_quality]
                ]
                text = np.stack(parts) if parts else np.zeros((0, length), np.uint8)
            # SEQ as BAM stores it: two bases a byte, high nibble first, 0-padded.
            if length & 1:
                codes = np.concatenate((codes, np.zeros((count, 1), np.uint8)), axis=1)
            packed = ((codes[:, 0::2] << 4) | codes[:, 1::2]).tobytes()
            # QUAL as BAM stores it: Phred values, 0xff each when missing.
            raw = np.full((count, length), _MISSING_QUALITY, np.uint8)
            raw[has_quality] = text - PHRED_OFFSET
            raw_bytes = raw.tobytes()
            width = (length + 1) // 2
            for r in range(count):
                sequences += crc(packed[r * width : (r + 1) * width])
                qualities += crc(raw_bytes[r * length : (r + 1) * length])
        self.checksums.sequences = sequences & mask
        self.checksums.qualities = qualities & mask


def base_counts(
    connection: duckdb.DuckDBPyConnection, tables: TableNames, key: str, batch_rows: int = 100_000
) -> BaseCounts:
    """The per-base counters of partition ``key``, read in batches of ``batch_rows``."""
    counts = BaseCounts()
    relation = connection.sql(
        f"SELECT qname, flag, seq, qual, qual_sum FROM {tables.reads} WHERE key = $key",
        params={"key": key},
    )
    for batch in relation.to_arrow_reader(batch_rows):
        counts.observe(batch)
    return counts
