"""Shared fixtures: a test instance, a local store's path, a generated BAM, the real files ingested
once under each catalog, a throw-away Postgres server and fresh lakes on it.

Constants and helpers live in ``bam_assets_tests.helpers``.
"""

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from bam_assets.orchestration.settings import IngestSettings
from bam_assets.reading.synthetic_bam import write_synthetic_bam
from bam_assets_tests.helpers import REAL_DATA, REAL_FILES, ingest_files, settings_for
from bam_assets_tests.postgres import PostgresCluster, PostgresUnavailable


@pytest.fixture
def instance():
    with dg.instance_for_test() as test_instance:
        yield test_instance


@pytest.fixture
def database(tmp_path: Path) -> Path:
    return tmp_path / "reads.sqlite"


@pytest.fixture(scope="session")
def synthetic_bam(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 20k-read generated BAM (fixed seed), shared by the tests that only read it."""
    return write_synthetic_bam(tmp_path_factory.mktemp("synthetic") / "synthetic.bam", 20_000)


@pytest.fixture(scope="session")
def real_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every real file, ingested once into one local store. Tests only read it (copy it with
    ``helpers.copy_store`` to write)."""
    database = tmp_path_factory.mktemp("real") / "reads.sqlite"
    ingest_files(settings_for(REAL_DATA, database), REAL_FILES)
    return database


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    """A throw-away Postgres server for the session, its password in ``PGPASSWORD`` (where libpq
    and so DuckDB and the processes the tests start find it). Without Postgres's binaries the lake
    tests skip; where CI sets ``BAM_ASSETS_REQUIRE_POSTGRES`` they fail."""
    try:
        cluster = PostgresCluster().__enter__()
    except PostgresUnavailable as error:
        if os.environ.get("BAM_ASSETS_REQUIRE_POSTGRES"):
            raise AssertionError(f"{error} (BAM_ASSETS_REQUIRE_POSTGRES is set)") from error
        pytest.skip(str(error))
    saved = {name: os.environ.get(name) for name in cluster.env()}
    os.environ.update(cluster.env())
    try:
        yield cluster
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        cluster.__exit__()


def new_lake(postgres: PostgresCluster, folder: Path) -> dict:
    """The store settings of a new, empty lake: its own catalog database and data folder."""
    catalog = postgres.create_database(f"lake_{uuid.uuid4().hex[:12]}")
    data = folder / "lake"
    data.mkdir(parents=True)
    return {"backend": "postgres", "lake": {"catalog": catalog, "data_path": str(data)}}


@pytest.fixture
def lake(postgres: PostgresCluster, tmp_path: Path) -> dict:
    """Store settings (``settings_for(..., store=lake)``) of a fresh lake."""
    return new_lake(postgres, tmp_path)


@pytest.fixture(scope="session")
def real_lake(
    postgres: PostgresCluster, tmp_path_factory: pytest.TempPathFactory
) -> IngestSettings:
    """Every real file, ingested once into one lake. Tests only read it."""
    root = tmp_path_factory.mktemp("real_lake")
    settings = settings_for(REAL_DATA, root / "unused.sqlite", store=new_lake(postgres, root))
    return ingest_files(settings, REAL_FILES)


@pytest.fixture(params=["local", "postgres"])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> dict:
    """Store settings (``settings_for(..., store=any_store)``) of a new, empty store under each
    catalog: a local catalog file, or a Postgres catalog (its own database) and a data folder."""
    if request.param == "postgres":
        return new_lake(request.getfixturevalue("postgres"), tmp_path)
    return {"backend": "local", "database": str(tmp_path / "store" / "bam_assets.sqlite")}


@pytest.fixture(params=["local", "postgres"])
def real_store(request: pytest.FixtureRequest) -> IngestSettings:
    """The real files as stored under each catalog: the same tests run on both."""
    if request.param == "postgres":
        return request.getfixturevalue("real_lake")
    return settings_for(REAL_DATA, request.getfixturevalue("real_database"))
