"""Shared fixtures: a test instance, a DuckDB path, a generated BAM, the real files ingested once.

Constants and helpers live in ``bam_assets_tests.helpers``.
"""

from pathlib import Path

import dagster as dg
import pytest

from bam_assets.reading.synthetic_bam import write_synthetic_bam
from bam_assets_tests.helpers import REAL_DATA, REAL_FILES, ingest_files, settings_for


@pytest.fixture
def instance():
    with dg.instance_for_test() as test_instance:
        yield test_instance


@pytest.fixture
def database(tmp_path: Path) -> Path:
    return tmp_path / "reads.duckdb"


@pytest.fixture(scope="session")
def synthetic_bam(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 20k-read generated BAM (fixed seed), shared by the tests that only read it."""
    return write_synthetic_bam(tmp_path_factory.mktemp("synthetic") / "synthetic.bam", 20_000)


@pytest.fixture(scope="session")
def real_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every real file, ingested once into one DuckDB file. Tests only read it (copy it to
    write)."""
    database = tmp_path_factory.mktemp("real") / "reads.duckdb"
    ingest_files(settings_for(REAL_DATA, database), REAL_FILES)
    return database
