"""The commands that read the store print what samtools prints (view -h, flagstat, idxstats,
stats), from the embedded file and from the lake alike."""

import pysam
import pytest

from bam_assets.cli.main import main
from bam_assets.stats.flagstat import flagstat
from bam_assets_tests.helpers import (
    CRAM_REFERENCE,
    REAL_DATA,
    REAL_FILES,
    cli_bytes,
    cli_store_arguments,
    copy_store,
    read_session,
    samtools_input,
    samtools_view,
)

PAIRED = "umitools_paired.bam"


def samtools_arguments(name: str) -> list[str]:
    return samtools_input(REAL_DATA / name)


def cli_output(*argv: str) -> str:
    return cli_bytes(*argv).decode()


@pytest.mark.parametrize("name", REAL_FILES)
def test_cli_view_flagstat_and_idxstats_are_byte_identical(real_store, monkeypatch, name):
    store = cli_store_arguments(real_store, monkeypatch)
    assert cli_output("view", "-h", name, *store) == samtools_view(REAL_DATA / name, "-h")
    assert cli_output("flagstat", name, *store) == pysam.flagstat(*samtools_arguments(name))
    assert cli_output(
        "idxstats", name, "--reference", str(CRAM_REFERENCE), *store
    ) == pysam.idxstats(*samtools_arguments(name))


@pytest.mark.parametrize("name", REAL_FILES)
def test_cli_stats_prints_what_samtools_stats_prints(real_store, monkeypatch, name):
    arguments = samtools_arguments(name)
    expected = pysam.stats(*arguments)
    store = cli_store_arguments(real_store, monkeypatch)
    by_path = cli_output("stats", str(REAL_DATA / name), *store)
    if name.endswith(".cram"):  # samtools prints its arguments, the CRAM's options too
        by_path = by_path.replace(f"stats {REAL_DATA / name}", "stats " + " ".join(arguments))
    assert by_path == expected
    assert cli_output("stats", name, "--sn", *store).splitlines() == [
        line for line in expected.splitlines() if line.startswith("SN\t")
    ]


def test_cli_resolves_missing_key(real_database):
    with pytest.raises(SystemExit):
        main(["flagstat", "no-such-file.bam", "--db", str(real_database)])


def test_cli_reads_a_copy_without_summary_tables(real_database, tmp_path):
    copy = tmp_path / "copy.sqlite"
    copy_store(real_database, copy)
    with read_session(copy) as session:
        assert flagstat(session.connection, session.tables, PAIRED).total == (8451, 0)
