"""Fixtures of the statistics tests: a generated BAM with every kind of record, ingested."""

from pathlib import Path

import pytest

from bam_assets.reading.synthetic_bam import write_synthetic_bam
from bam_assets_tests.helpers import ingest_files, settings_for


@pytest.fixture(scope="session")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(database, BAM): a generated 20k-read BAM (seed 11) with duplicates, QC failures,
    secondary and supplementary records, clipped and gapped alignments, ingested alone."""
    root = tmp_path_factory.mktemp("synthetic_stats")
    path = write_synthetic_bam(root / "synthetic_stats.bam", 20_000, seed=11)
    ingest_files(settings_for(root, root / "reads.sqlite"), [path.name])
    return root / "reads.sqlite", path
