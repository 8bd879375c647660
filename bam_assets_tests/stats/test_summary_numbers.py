"""The SN numbers of ``samtools stats`` agree with samtools (pysam) on every real file and on a
generated one.

Positions in the reads table are SAM's: 1-based, closed intervals.
"""

import pysam
import pytest

from bam_assets.stats.flagstat import flagstat
from bam_assets.stats.samtools_text import flagstat_text, sn_lines
from bam_assets.stats.summary_numbers import summary_numbers
from bam_assets_tests.helpers import REAL_DATA, REAL_FILES, read_session, samtools_input


def sn_fields(text: str) -> dict[str, str]:
    """SN label -> value, without 'is sorted' (it depends on record order, not records)."""
    fields = {}
    for line in text.splitlines():
        if line.startswith("SN\t") and "is sorted" not in line:
            _, label, value, *_ = line.split("\t")
            fields[label.rstrip(":")] = value
    return fields


@pytest.mark.parametrize("name", REAL_FILES)
def test_summary_numbers_match_samtools_stats_field_by_field(real_database, name):
    with read_session(real_database) as session:
        numbers = summary_numbers(session.connection, session.tables, name)
    expected = sn_fields(pysam.stats(*samtools_input(REAL_DATA / name)))
    mine = sn_fields(sn_lines(numbers))
    assert list(mine) == list(expected)
    for label, value in expected.items():
        assert mine[label] == value, label


def test_generated_file_matches_samtools(synthetic):
    database, path = synthetic
    with read_session(database) as session:
        stats = flagstat(session.connection, session.tables, path.name)
        numbers = summary_numbers(session.connection, session.tables, path.name)
    assert flagstat_text(stats) == pysam.flagstat(str(path))
    # (samtools idxstats refuses unsorted files without an index, so it is not compared here.)
    assert sn_fields(sn_lines(numbers)) == sn_fields(pysam.stats(str(path)))
    # The generator's extras really are exercised.
    assert stats.duplicates[0] and stats.secondary[0] and stats.supplementary[0]
    assert stats.total[1] > 0


def test_insert_size_cut_off_follows_samtools_option(synthetic):
    database, path = synthetic
    with read_session(database) as session:
        numbers = summary_numbers(
            session.connection, session.tables, path.name, max_insert_size=300
        )
    expected = sn_fields(pysam.stats("-i", "300", str(path)))
    mine = sn_fields(sn_lines(numbers))
    for label in ("insert size average", "insert size standard deviation", "inward oriented pairs"):
        assert mine[label] == expected[label]
