"""The complete ``samtools stats`` text computed from the stored reads is byte-identical to what
samtools prints, on every real file, the generated 20k-read BAM and the generated corner cases."""

from pathlib import Path

import pysam
import pytest

from bam_assets.stats.samtools_stats import stats_text
from bam_assets_tests.helpers import (
    REAL_DATA,
    REAL_FILES,
    ingest_files,
    read_session,
    samtools_input,
    settings_for,
)
from bam_assets_tests.stats.corner_cases import write_corner_cases


def ours(database: Path, key: str, command_line: str | None = None) -> str:
    with read_session(database) as session:
        (path,) = session.connection.execute(
            "SELECT path FROM files WHERE key = ?", [key]
        ).fetchone()
        return stats_text(session.connection, session.tables, key, path, command_line)


@pytest.fixture(scope="module")
def corner_cases(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    root = tmp_path_factory.mktemp("corner_cases")
    paths = write_corner_cases(root / "files")
    database = root / "reads.sqlite"
    ingest_files(settings_for(root / "files", database), [path.name for path in paths])
    return database, paths


@pytest.mark.parametrize("name", REAL_FILES)
def test_stats_text_equals_samtools_stats(real_database, name):
    arguments = samtools_input(REAL_DATA / name)
    # samtools prints its own arguments in the third line; a CRAM was read with options.
    command_line = "stats " + " ".join(arguments) if name.endswith(".cram") else None
    assert ours(real_database, name, command_line) == pysam.stats(*arguments)


def test_stats_text_of_the_generated_bam(synthetic):
    database, path = synthetic
    assert ours(database, path.name) == pysam.stats(str(path))


def test_stats_text_of_the_corner_cases(corner_cases):
    database, paths = corner_cases
    for path in paths:
        expected = pysam.stats(str(path))
        assert ours(database, path.name) == expected, path.name
    # The corners are reached: barcodes, the coverage of a sorted file, an unsorted file.
    sorted_runs = ours(database, "corner_sorted_runs.bam")
    assert "\nBCC1\t" in sorted_runs and "\nCOV\t" in sorted_runs and "\nGCD\t" in sorted_runs
    assert "SN\tis sorted:\t0" in ours(database, "corner_unsorted.sam")
