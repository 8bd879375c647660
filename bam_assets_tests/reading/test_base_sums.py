"""Per-read base sums on Arrow buffers: offsets of sliced arrays, absent values, empty strings."""

import pyarrow as pa

from bam_assets.reading.base_sums import gc_counts, quality_sums


def test_quality_sums_are_phred_sums_and_null_for_an_absent_qual():
    qual = pa.array(["II5", "*", "!", "**"])
    assert quality_sums(qual).to_pylist() == [40 + 40 + 20, None, 0, 18]


def test_gc_counts_count_only_upper_case_c_and_g():
    seq = pa.array(["ACGT", "*", "SSNN=", "GGGCCC", "A"])
    assert gc_counts(seq).to_pylist() == [2, None, 0, 6, 0]


def test_sliced_arrays_and_empty_strings():
    qual = pa.array(["I", "", "+++", "II", ""])[1:]
    assert quality_sums(qual).to_pylist() == [0, 30, 80, 0]
    seq = pa.array(["CC", "", "GAC", ""])[1:3]
    assert gc_counts(seq).to_pylist() == [0, 2]
    assert gc_counts(pa.array([""] * 3)).to_pylist() == [0, 0, 0]
