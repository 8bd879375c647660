"""``samtools flagstat`` computed in SQL is byte-identical to samtools' on every real file."""

import pysam
import pytest

from bam_assets.stats.flagstat import flagstat
from bam_assets.stats.samtools_text import flagstat_text
from bam_assets_tests.helpers import REAL_DATA, REAL_FILES, read_session, samtools_input


@pytest.mark.parametrize("name", REAL_FILES)
def test_flagstat_is_byte_identical_to_samtools(real_database, name):
    with read_session(real_database) as session:
        stats = flagstat(session.connection, session.tables, name)
    expected = pysam.flagstat(*samtools_input(REAL_DATA / name))
    assert flagstat_text(stats) == expected
    assert stats.inconsistencies() == []
