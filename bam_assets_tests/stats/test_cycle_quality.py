"""Quality per cycle summed while reads stream in (``CycleQuality``), on hand-built Arrow batches
with known answers, and the C kernel (``_cycle_sums.add``) refusing buffers that break the Arrow
layout instead of reading outside them."""

import numpy as np
import pyarrow as pa
import pytest

from bam_assets.model.sam_bytes import text_from_bytes
from bam_assets.stats import _cycle_sums
from bam_assets.stats.cycle_quality import CYCLE_QUALITY_TABLE, CycleQuality

PAIRED, REVERSE, READ1, READ2 = 0x1, 0x10, 0x40, 0x80
SECONDARY, SUPPLEMENTARY = 0x100, 0x800


def phred(*values: int) -> str:
    return "".join(chr(33 + value) for value in values)


# (flag, SEQ, QUAL) and what each contributes.
RECORDS = [
    (0, "ACGT", phred(31, 32, 33, 34)),  # unpaired, forward: a first fragment
    (PAIRED | READ1 | REVERSE, "AC", phred(0, 20)),  # first, reverse: read back to front
    (PAIRED | READ2, "ACG", phred(10, 10, 10)),  # last fragment, forward
    (PAIRED | READ2 | REVERSE, "ACGTA", phred(0, 2, 4, 6, 8)),  # last, reverse
    (SECONDARY, "ACGTACGT", phred(*[40] * 8)),  # skipped: secondary
    (PAIRED | READ1 | SUPPLEMENTARY, "ACGTAC", phred(*[40] * 6)),  # skipped: supplementary
    (0, "*", "*"),  # skipped: no SEQ
    (PAIRED | READ1, "GG", "*"),  # first, no QUAL: 255 per base
    (PAIRED, "ACGT", phred(40, 40, 40, 40)),  # skipped: paired, neither read1 nor read2
    (PAIRED | READ1 | READ2, "ACGT", phred(40, 40, 40, 40)),  # skipped: both read1 and read2
]

EXPECTED = [
    # fragment, cycle, bases, quality_sum
    (1, 1, 3, 31 + 20 + 255),
    (1, 2, 3, 32 + 0 + 255),
    (1, 3, 1, 33),
    (1, 4, 1, 34),
    (2, 1, 2, 10 + 8),
    (2, 2, 2, 10 + 6),
    (2, 3, 2, 10 + 4),
    (2, 4, 1, 2),
    (2, 5, 1, 0),
]


def batch(records=RECORDS, qual_sums: list[int | None] | None = None) -> pa.RecordBatch:
    """The columns CycleQuality reads; ``qual_sum`` as the reader fills it unless given."""
    flags, seqs, quals = zip(*records, strict=True)
    if qual_sums is None:
        qual_sums = [None if q == "*" else sum(ord(c) - 33 for c in q) for q in quals]
    return pa.record_batch(
        {
            "flag": pa.array(flags, pa.int32()),
            "seq": pa.array(seqs, pa.string()),
            "qual": pa.array(quals, pa.string()),
            "qual_sum": pa.array(qual_sums, pa.int64()),
        }
    )


def rows(cycles: CycleQuality) -> list[tuple[int, int, int, int]]:
    table = cycles.rows()
    assert table.column_names == ["fragment", "cycle", "bases", "quality_sum"]
    return list(zip(*(column.to_pylist() for column in table.columns), strict=True))


def test_first_and_last_fragments_sum_by_sequencing_cycle():
    cycles = CycleQuality()
    cycles.observe(batch())
    assert rows(cycles) == EXPECTED


def test_batches_add_up_and_sliced_batches_read_their_own_records():
    whole = batch()
    cycles = CycleQuality()
    cycles.observe(whole.slice(0, 3))  # offsets of a slice start where the slice starts
    cycles.observe(whole.slice(3, 4))
    cycles.observe(whole.slice(7))
    assert rows(cycles) == EXPECTED


def test_a_longer_read_in_a_later_batch_grows_the_cycles():
    cycles = CycleQuality()
    cycles.observe(batch())
    # longer than any SEQ of the first batch, secondary ones included
    cycles.observe(batch([(0, "ACGTACGTAC", phred(*range(1, 11)))]))
    first = [row for row in rows(cycles) if row[0] == 1]
    assert first == [
        (1, 1, 4, 31 + 20 + 255 + 1),
        (1, 2, 4, 32 + 0 + 255 + 2),
        (1, 3, 2, 33 + 3),
        (1, 4, 2, 34 + 4),
        *((1, cycle, 1, cycle) for cycle in range(5, 11)),
    ]
    assert [row for row in rows(cycles) if row[0] == 2] == EXPECTED[4:]


def test_nothing_observed_or_only_skipped_records_give_no_rows():
    assert rows(CycleQuality()) == []
    cycles = CycleQuality()
    cycles.observe(batch(RECORDS[4:7]))
    assert rows(cycles) == []


def test_qualities_are_the_bytes_samtools_stats_counts():
    """htslib prints byte q as (q + 33) & 0xff: 0xff after the first base prints ' ', Phred 95
    and more print above 0x7f (stored escaped, model.sam_bytes); a one-base read of Phred 9
    prints '*', and its qual_sum holds the 9."""
    cycles = CycleQuality()
    records = [
        (0, "ACG", phred(30) + " " + phred(30)),  # 30, 0xff, 30
        (0, "AC", text_from_bytes(bytes([33 + 95, 33 + 100]))),  # escaped bytes 0x80, 0x85
        (0, "A", "*"),  # Phred 9
        (0, "A", "*"),  # no QUAL (0xff)
    ]
    cycles.observe(batch(records, qual_sums=[315, 195, 9, None]))
    assert rows(cycles) == [
        (1, 1, 4, 30 + 95 + 9 + 255),
        (1, 2, 2, 255 + 100),
        (1, 3, 1, 30),
    ]


def test_a_qual_printed_as_a_star_counts_255_per_base_even_if_only_its_first_byte_is_0xff():
    """Decision: htslib prints '*' as soon as the first byte is 0xff, so the other bytes are
    not in the stored text; samtools stats counts them. htslib's own writers store a missing
    QUAL as all 0xff, so per cycle this counts 255 per base, as for a missing QUAL; the SN
    average quality stays exact (qual_sum holds the bytes' sum, 345 here)."""
    cycles = CycleQuality()
    cycles.observe(batch([(0, "ACGT", "*")], qual_sums=[255 + 30 * 3]))
    assert rows(cycles) == [(1, cycle, 1, 255) for cycle in range(1, 5)]


def test_the_side_table_is_declared_by_the_class():
    assert CycleQuality.table is CYCLE_QUALITY_TABLE
    assert CYCLE_QUALITY_TABLE.name == "reads_cycle_quality"


def buffers(capacity: int = 8) -> tuple[np.ndarray, np.ndarray]:
    return np.zeros((2, capacity), np.int64), np.zeros((2, capacity), np.int64)


def offsets(*values: int) -> np.ndarray:
    return np.array(values, np.int32)


def flags(*values: int) -> np.ndarray:
    return np.array(values, np.int32)


def sums_of(*values: int) -> np.ndarray:
    return np.array(values, np.int64)


def test_the_kernel_adds_what_a_valid_batch_holds():
    reads, sums = buffers()
    _cycle_sums.add(flags(0), offsets(0, 2), b"AC", offsets(0, 2), b"!+", sums_of(10), reads, sums)
    assert reads[0].tolist() == [0, 1, 0, 0, 0, 0, 0, 0]
    assert sums[0, :2].tolist() == [0, 10] and not sums[1].any()


@pytest.mark.parametrize(
    ("seq_offsets", "qual_offsets"),
    [
        (offsets(0, 40), offsets(0, 4)),  # SEQ ends beyond its 4 bytes
        (offsets(0, 4), offsets(0, 1 << 30)),  # QUAL ends far beyond its buffer
        (offsets(-8, 4), offsets(0, 4)),  # starts before the buffer
        (offsets(3, 1), offsets(0, 4)),  # runs backwards
    ],
    ids=["seq-past-end", "qual-past-end", "negative", "decreasing"],
)
def test_the_kernel_refuses_offsets_outside_their_buffer(seq_offsets, qual_offsets):
    reads, sums = buffers()
    with pytest.raises(ValueError, match="outside its string buffer"):
        _cycle_sums.add(
            flags(0), seq_offsets, b"ACGT", qual_offsets, b"IIII", sums_of(40), reads, sums
        )
    assert not reads.any() and not sums.any()


@pytest.mark.parametrize(
    ("flag", "seq_offsets", "qual_offsets"),
    [
        (flags(0, 0), offsets(0, 2), offsets(0, 2, 4)),  # two records, one SEQ offset pair
        (flags(0, 0), offsets(0, 2, 4), offsets(0, 2)),  # two records, one QUAL offset pair
        (np.zeros(5, np.uint8), offsets(0, 2), offsets(0, 2)),  # not whole int32 flags
        (flags(0), offsets(0, 2), offsets(0, 2)),  # one record, two quality sums
    ],
    ids=["seq-offsets", "qual-offsets", "flag-bytes", "qual-sums"],
)
def test_the_kernel_refuses_offsets_for_another_number_of_records(flag, seq_offsets, qual_offsets):
    reads, sums = buffers()
    with pytest.raises(ValueError, match="same number of records"):
        _cycle_sums.add(
            flag, seq_offsets, b"ACGT", qual_offsets, b"IIII", sums_of(1, 2), reads, sums
        )


@pytest.mark.parametrize(
    ("reads", "sums"),
    [
        (np.zeros((2, 4), np.int64), np.zeros((2, 8), np.int64)),
        (np.zeros(3, np.int64), np.zeros(3, np.int64)),
    ],
    ids=["different-sizes", "not-two-rows"],
)
def test_the_kernel_refuses_sum_buffers_of_other_shapes(reads, sums):
    with pytest.raises(ValueError, match="int64\\[2\\]\\[capacity\\]"):
        _cycle_sums.add(
            flags(0), offsets(0, 4), b"ACGT", offsets(0, 4), b"IIII", sums_of(160), reads, sums
        )


def test_the_kernel_refuses_a_sequence_longer_than_its_capacity_and_a_short_qual():
    reads, sums = buffers(capacity=2)
    with pytest.raises(ValueError, match="longer than the cycle capacity"):
        _cycle_sums.add(
            flags(0), offsets(0, 4), b"ACGT", offsets(0, 4), b"IIII", sums_of(160), reads, sums
        )
    reads, sums = buffers()
    with pytest.raises(ValueError, match="QUAL is not as long as its SEQ"):
        _cycle_sums.add(
            flags(0), offsets(0, 4), b"ACGT", offsets(0, 3), b"III", sums_of(120), reads, sums
        )
