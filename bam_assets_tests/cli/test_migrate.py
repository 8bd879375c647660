"""A store of the previous release is recognised and refused in words naming the command that
moves it, and ``bam-assets migrate OLD NEW`` moves every partition, its side rows and files row
and the summary tables, verified by row counts, into either catalog; the old file is only read.

``bam_assets_tests/data/previous_release.duckdb.gz`` was made by the release before the store
became a DuckLake (commit 6c80235, duckdb 1.5.5), from the bundled example files:

    git worktree add ../base 6c80235 && cd ../base && make setup
    DAGSTER_HOME=/tmp/home .venv/bin/bam-assets ingest bam_assets/example_data --db /tmp/old.duckdb
    # then the summarize_reads job for each of the three partitions and
    # refresh_read_stats_overview, through build_instance_definitions, on the same database
    gzip -9 /tmp/old.duckdb
"""

import gzip
import hashlib
import shutil
from pathlib import Path

import duckdb
import pytest

from bam_assets.cli.main import main
from bam_assets.orchestration.project_paths import EXAMPLE_DATA_DIR
from bam_assets_tests.helpers import cli_bytes, samtools_view, store_connection

FIXTURE = Path(__file__).resolve().parents[1] / "data" / "previous_release.duckdb.gz"
KEYS = ["synthetic_by_name.bam", "synthetic_paired.bam", "unaligned.sam"]


@pytest.fixture
def old_store(tmp_path: Path) -> Path:
    """The previous release's store where it kept it: ``data/bam_assets.duckdb``."""
    path = tmp_path / "data" / "bam_assets.duckdb"
    path.parent.mkdir()
    with gzip.open(FIXTURE) as source, path.open("wb") as target:
        shutil.copyfileobj(source, target)
    return path


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_previous_release_store_is_refused_in_words_naming_the_command(old_store, capsys):
    before = digest(old_store)
    new_default = old_store.with_suffix(".sqlite")
    for database in (old_store, new_default):
        assert main(["list", "--db", str(database)]) == 1
        message = capsys.readouterr().err
        assert f"{old_store} is a store of an earlier bam-assets" in message
        assert f"bam-assets migrate {old_store} {new_default}" in message
    assert digest(old_store) == before
    assert not new_default.exists()


def rows_per_key(connection, tables: list[str]) -> dict[str, list[tuple]]:
    return {
        table: connection.execute(
            f"SELECT key, count(*) FROM {table} GROUP BY key ORDER BY key"
        ).fetchall()
        for table in tables
    }


def test_migrate_moves_every_partition_and_summary_verified_by_row_counts(
    old_store, any_store, tmp_path, monkeypatch, capsys
):
    before = digest(old_store)
    with duckdb.connect(str(old_store), read_only=True) as old:
        tables = [
            row[0]
            for row in old.execute(
                "SELECT table_name FROM duckdb_tables() ORDER BY table_name"
            ).fetchall()
        ]
        old_rows = rows_per_key(old, tables)
        old_flagstat = old.execute("SELECT * FROM read_stats_flagstat ORDER BY ALL").fetchall()
        old_files = old.execute("SELECT * FROM files ORDER BY key").fetchall()
    assert {"reads", "files", "reads_cycle_quality", "read_stats_overview"} <= set(tables)

    if any_store["backend"] == "postgres":
        monkeypatch.setenv("BAM_ASSETS_LAKE_CATALOG", any_store["lake"]["catalog"])
        monkeypatch.setenv("BAM_ASSETS_LAKE_DATA_PATH", any_store["lake"]["data_path"])
        target, store_arguments = ["--lake"], ["--lake"]
    else:
        target = [any_store["database"]]
        store_arguments = ["--db", any_store["database"]]
    assert main(["migrate", str(old_store), *target]) == 0
    printed = capsys.readouterr()
    assert "every table's rows per partition match" in printed.err
    assert {line.split("\t")[0] for line in printed.out.splitlines()} == set(tables)

    assert digest(old_store) == before
    with store_connection_of(any_store) as new:
        assert rows_per_key(new, tables) == old_rows
        assert new.execute("SELECT * FROM read_stats_flagstat ORDER BY ALL").fetchall() == (
            old_flagstat
        )
        assert new.execute("SELECT * FROM files ORDER BY key").fetchall() == old_files
    for key in KEYS:
        assert cli_bytes("view", "-h", key, *store_arguments).decode() == samtools_view(
            EXAMPLE_DATA_DIR / key, "-h"
        )
    # run again: each partition is replaced whole, nothing doubles
    assert main(["migrate", str(old_store), *target]) == 0
    with store_connection_of(any_store) as new:
        assert rows_per_key(new, tables) == old_rows


def store_connection_of(store: dict):
    from bam_assets.orchestration.settings import IngestSettings, StoreSettings

    return store_connection(IngestSettings(store=StoreSettings(**store)))
