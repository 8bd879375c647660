"""``samtools flagstat`` computed in SQL is byte-identical to samtools' on every real file."""

from pathlib import Path

import pysam
import pytest

from bam_assets.orchestration.settings import ReadingSettings
from bam_assets.stats.flagstat import flagstat
from bam_assets.stats.samtools_text import flagstat_text
from bam_assets_tests import hostile
from bam_assets_tests.helpers import (
    REAL_DATA,
    REAL_FILES,
    ingest_directly,
    read_session,
    samtools_input,
)


@pytest.mark.parametrize("name", REAL_FILES)
def test_flagstat_is_byte_identical_to_samtools(real_database, name):
    with read_session(real_database) as session:
        stats = flagstat(session.connection, session.tables, name)
    expected = pysam.flagstat(*samtools_input(REAL_DATA / name))
    assert flagstat_text(stats) == expected
    assert stats.inconsistencies() == []


def test_a_cram_of_every_flag_counts_the_flags_samtools_view_prints(tmp_path: Path):
    """Decision: not samtools flagstat's numbers for this CRAM, but those of the records
    ``samtools view`` prints.

    The CRAM holds every one of the 4096 FLAG values; CRAM's decoder rebuilds mate flags, and
    ``samtools view`` prints 0x1 on 3072 records. ``samtools flagstat`` decodes CRAM with
    ``required_fields=SAM_FLAG``, which skips that rebuilding: it counts 256 + 256 paired reads
    where the records ``samtools view`` prints, converted to BAM, give 384 + 384. Every
    statistic of a partition is computed from the one set of records ``view`` regenerates, so
    they agree with each other and with samtools on the BAM; emulating the partial decode would
    mean decoding every CRAM twice for an artefact (docs/statistics.md)."""
    path = hostile.CASES["all-flags-cram"].build(tmp_path)
    reference = str(tmp_path / "all-flags-cram.fa")
    ingest_directly(path, "flags", tmp_path / "db", ReadingSettings(reference=reference))
    with read_session(tmp_path / "db") as session:
        ours = flagstat_text(flagstat(session.connection, session.tables, "flags"))
    as_bam = tmp_path / "as.bam"
    pysam.view("-b", "-o", str(as_bam), "--reference", reference, str(path), catch_stdout=False)
    assert ours == pysam.flagstat(str(as_bam))
    assert "384 + 384 paired in sequencing" in ours
    on_the_cram = pysam.flagstat("--input-fmt-option", f"reference={reference}", str(path))
    assert "256 + 256 paired in sequencing" in on_the_cram
