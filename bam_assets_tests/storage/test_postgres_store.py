"""The DuckLake store: the same tables, columns and macros as the embedded file, one snapshot per
partition replacement, and every bad configuration refused in words before anything is written.

Each test gets a new lake (its own catalog database on the session's throw-away Postgres server,
and its own data folder).
"""

import logging
import os
import shutil
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from bam_assets.model.tables import TableSpec
from bam_assets.orchestration.resources import StoreResource
from bam_assets.orchestration.settings import StoreSettings
from bam_assets.storage.store import StoreConfigError, StoreMissingError
from bam_assets_tests.helpers import (
    REAL_DATA,
    materialize_partition,
    settings_for,
)
from bam_assets_tests.postgres import PostgresCluster

PAIRED = "umitools_paired.bam"
NANOPORE = "mosdepth_nanopore.bam"


def store_of(lake: dict, **lake_overrides) -> StoreResource:
    settings = StoreSettings.model_validate(
        {**lake, "lake": {**lake["lake"], **lake_overrides}, "lock_timeout_seconds": 30}
    )
    return StoreResource(settings=settings)


def lake_files(lake: dict) -> list[str]:
    data = Path(lake["lake"]["data_path"])
    return sorted(str(path.relative_to(data)) for path in data.rglob("*") if path.is_file())


# Bad configuration: each case names its cause and writes nothing.


def test_an_unreachable_catalog_is_named(lake, postgres: PostgresCluster):
    closed = lake["lake"]["catalog"].replace(f"port={postgres.port}", "port=1")
    with pytest.raises(StoreConfigError, match="Cannot connect to the DuckLake catalog database"):
        with store_of(lake, catalog=closed).session():
            pass
    assert lake_files(lake) == []


def test_a_wrong_catalog_database_or_password_is_named(lake, monkeypatch):
    missing = lake["lake"]["catalog"].replace("dbname=lake_", "dbname=nosuch_")
    with pytest.raises(StoreConfigError, match='database "nosuch_.*" does not exist'):
        with store_of(lake, catalog=missing).session():
            pass
    monkeypatch.setenv("PGPASSWORD", "wrong")
    with pytest.raises(StoreConfigError, match="password authentication failed"):
        with store_of(lake).session():
            pass
    assert lake_files(lake) == []


def test_a_password_in_the_dsn_or_a_missing_setting_is_refused(lake):
    with pytest.raises(StoreConfigError, match="holds a password: give it in PGPASSWORD"):
        with store_of(lake, catalog=lake["lake"]["catalog"] + " password=secret").session():
            pass
    with pytest.raises(StoreConfigError, match="BAM_ASSETS_LAKE_DATA_PATH"):
        with store_of(lake, data_path="").session():
            pass


def test_a_missing_data_path_is_refused_instead_of_created(lake, tmp_path):
    gone = tmp_path / "not-mounted"
    with pytest.raises(StoreConfigError, match="does not exist or is not a folder"):
        with store_of(lake, data_path=str(gone)).session():
            pass
    assert not gone.exists()


def test_an_empty_mount_point_or_another_path_of_an_existing_lake_is_refused(
    lake, tmp_path, instance
):
    settings = settings_for(REAL_DATA, tmp_path / "x.sqlite", store=lake)
    materialize_partition(settings, PAIRED, instance)
    data = Path(lake["lake"]["data_path"])
    before = lake_files(lake)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    with pytest.raises(StoreConfigError, match="keeps its files in .*mount the data at the same"):
        with store_of(lake, data_path=str(elsewhere)).session():
            pass
    # the share is not mounted: the mount point is an empty folder
    mounted = tmp_path / "mounted"
    data.rename(mounted)
    data.mkdir()
    with pytest.raises(
        StoreConfigError, match=r"is not this lake's: .*\.bam-assets-lake is missing"
    ):
        with store_of(lake).session():
            pass
    assert list(data.iterdir()) == [] and list(elsewhere.iterdir()) == []
    data.rmdir()
    mounted.rename(data)
    assert lake_files(lake) == before


def test_a_read_of_a_lake_never_written_says_so(lake):
    with pytest.raises(StoreMissingError, match="No lake has been written"):
        with store_of(lake).session(read_only=True):
            pass


def test_a_lake_of_another_format_version_is_refused(lake, tmp_path, instance, postgres):
    """A lake written by another DuckLake release (here: the catalog's version entry changed to
    0.3, the format of duckdb 1.4's ducklake) is refused before DuckDB would migrate it, by a
    writer and a reader (new processes: a process checks a lake when it first attaches it)."""
    settings = settings_for(REAL_DATA, tmp_path / "x.sqlite", store=lake)
    materialize_partition(settings, PAIRED, instance)
    database = lake["lake"]["catalog"].split("dbname=")[1].split()[0]
    postgres.psql(
        "UPDATE ducklake_metadata SET value = '0.3' WHERE key = 'version' AND scope IS NULL",
        database,
    )
    for arguments in (["ingest", str(REAL_DATA / NANOPORE)], ["list"]):
        result = cli(arguments, lake)
        assert result.returncode == 1
        assert "has DuckLake format 0.3; duckdb 1.5.5 reads" in result.stderr
    assert postgres.psql("SELECT value FROM ducklake_metadata WHERE key = 'version'", database) == (
        "0.3\n"
    )


def cli(arguments: list[str], lake: dict, **popen) -> subprocess.CompletedProcess:
    environment = os.environ | {
        "BAM_ASSETS_LAKE_CATALOG": lake["lake"]["catalog"],
        "BAM_ASSETS_LAKE_DATA_PATH": lake["lake"]["data_path"],
        "DAGSTER_HOME": str(Path(lake["lake"]["data_path"]).parent / "dagster_home"),
        **popen.pop("env", {}),
    }
    return subprocess.run(
        [*popen.pop("prefix", []), sys.executable, "-m", "bam_assets", *arguments, "--lake"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        **popen,
    )


def test_a_data_path_without_write_permission_is_named(lake):
    """As root, the ingest runs without the capability that overrides file permissions."""
    data = Path(lake["lake"]["data_path"])
    data.chmod(0o555)
    prefix = (
        ["setpriv", "--bounding-set=-dac_override,-dac_read_search"] if os.geteuid() == 0 else []
    )
    try:
        result = cli(["ingest", str(REAL_DATA / PAIRED)], lake, prefix=prefix)
    finally:
        data.chmod(0o755)
    assert result.returncode == 1
    assert f"The DuckLake data path {data} is not writable: [Errno 13] Permission denied" in (
        result.stderr
    )
    assert lake_files(lake) == []


def test_a_missing_extension_binary_is_named(lake, tmp_path):
    """An extension package without the binary of this duckdb (a mismatched release) shadows the
    installed one."""
    shadow = tmp_path / "shadow"
    shutil.copytree(
        Path(__import__("duckdb_extension_ducklake").__file__).parent,
        shadow / "duckdb_extension_ducklake",
        ignore=shutil.ignore_patterns("*.duckdb_extension"),
    )
    result = cli(["list"], lake, env={"PYTHONPATH": str(shadow)})
    assert result.returncode == 1
    assert "not the binary for duckdb 1.5.5" in result.stderr
    assert "pip install 'duckdb-extension-ducklake==1.5.5'" in result.stderr


def test_writers_that_lose_the_race_for_a_snapshot_id_try_again(lake, caplog):
    """DuckLake retries a commit that lost the race for the next snapshot id to another writer
    ``ducklake_max_retry_count`` times (10), then fails with a Postgres duplicate key; 16 writers
    committing at once ran out of those retries. With DuckLake's own retries off, every commit
    that loses must be tried again by the store, and every partition end up written once."""
    spec = TableSpec("race_rows", "value INTEGER")
    writers, partitions = 4, 6
    store = store_of(lake)
    with store.session() as session:
        session.replace_partition_rows(spec, "setup", "SELECT $key, 0", {})
    barrier = threading.Barrier(writers)

    def write(writer: int) -> None:
        with store.session() as session:
            session.connection.execute("SET ducklake_max_retry_count = 0")
            barrier.wait()
            for index in range(partitions):
                session.replace_partition_rows(
                    spec, f"w{writer}-{index}", "SELECT $key, $value", {"value": index}
                )

    with caplog.at_level(logging.INFO), ThreadPoolExecutor(writers) as pool:
        list(pool.map(write, range(writers)))
    with store.session(read_only=True) as session:
        rows = session.connection.execute(
            "SELECT key, value FROM race_rows WHERE key <> 'setup' ORDER BY key"
        ).fetchall()
    assert rows == sorted(
        (f"w{writer}-{index}", index) for writer in range(writers) for index in range(partitions)
    )
    assert any(": busy (" in r.getMessage() for r in caplog.records)
