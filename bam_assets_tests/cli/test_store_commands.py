"""The commands that read the store print what samtools prints: flagstat, idxstats, stats."""

import shutil

import pysam
import pytest

from bam_assets.cli.main import main
from bam_assets.stats.flagstat import flagstat
from bam_assets_tests.helpers import (
    CRAM_REFERENCE,
    REAL_DATA,
    REAL_FILES,
    cli_bytes,
    read_session,
    samtools_input,
)

PAIRED = "umitools_paired.bam"


def samtools_arguments(name: str) -> list[str]:
    return samtools_input(REAL_DATA / name)


def cli_output(*argv: str) -> str:
    return cli_bytes(*argv).decode()


@pytest.mark.parametrize("name", REAL_FILES)
def test_cli_flagstat_and_idxstats_are_byte_identical(real_database, name):
    db = ["--db", str(real_database)]
    assert cli_output("flagstat", name, *db) == pysam.flagstat(*samtools_arguments(name))
    assert cli_output("idxstats", name, "--reference", str(CRAM_REFERENCE), *db) == pysam.idxstats(
        *samtools_arguments(name)
    )


@pytest.mark.parametrize("name", REAL_FILES)
def test_cli_stats_prints_samtools_sn_lines(real_database, name):
    expected = [
        line
        for line in pysam.stats(*samtools_arguments(name)).splitlines()
        if line.startswith("SN\t") and "is sorted" not in line
    ]
    by_path = cli_output("stats", str(REAL_DATA / name), "--db", str(real_database))
    assert by_path.splitlines() == expected


def test_cli_resolves_missing_key(real_database):
    with pytest.raises(SystemExit):
        main(["flagstat", "no-such-file.bam", "--db", str(real_database)])


def test_cli_reads_a_copy_without_summary_tables(real_database, tmp_path):
    copy = tmp_path / "copy.duckdb"
    shutil.copyfile(real_database, copy)
    with read_session(copy) as session:
        assert flagstat(session.connection, session.tables, PAIRED).total == (8451, 0)
