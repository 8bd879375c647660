"""``samtools idxstats`` computed in SQL is byte-identical to samtools' on every real file."""

import pysam
import pytest

from bam_assets.stats.idxstats import idxstats, reference_lengths
from bam_assets.stats.samtools_text import idxstats_text
from bam_assets_tests.helpers import (
    CRAM_REFERENCE,
    REAL_DATA,
    REAL_FILES,
    read_session,
    samtools_input,
)


@pytest.mark.parametrize("name", REAL_FILES)
def test_idxstats_is_byte_identical_to_samtools(real_database, name):
    lengths = reference_lengths(str(CRAM_REFERENCE))
    with read_session(real_database) as session:
        file_format, references = session.file_row(name)[0], session.references(name)
        rows = idxstats(session.connection, session.tables, name, file_format, references, lengths)
    expected = pysam.idxstats(*samtools_input(REAL_DATA / name))
    assert idxstats_text(rows) == expected
