"""Past findings of the fuzzer and of the hostile files, replayed with the normal build: for every
saved input (``fuzz/findings``, in the fuzzer's input format), the ingest's bulk decoder and
htslib's formatter give the same rows, or both refuse the file (``differential.check``)."""

from pathlib import Path

import pysam
import pytest

from bam_assets_tests.differential import check

FINDINGS = sorted((Path(__file__).resolve().parents[2] / "fuzz" / "findings").iterdir())


@pytest.fixture(autouse=True)
def quiet_htslib():
    """htslib prints a line for every damaged input; the refusals are checked, not read."""
    previous = pysam.set_verbosity(0)
    yield
    pysam.set_verbosity(previous)


@pytest.mark.parametrize("path", FINDINGS, ids=[path.name for path in FINDINGS])
def test_a_past_finding_reads_the_same_both_ways_or_is_refused_both_ways(
    path: Path, tmp_path: Path
):
    check(path.read_bytes(), tmp_path)


def test_the_findings_are_there():
    assert len(FINDINGS) >= 32
