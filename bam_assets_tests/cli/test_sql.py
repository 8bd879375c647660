"""Opening the store from any DuckDB client is one step, under either catalog: ``bam-assets
sql`` runs a query (or a script on standard input) on the store attached read-only, ``bam-assets
sql --setup`` prints what a plain DuckDB client types (the extension files' paths, the ATTACH),
and ``bam_assets.connect()`` gives the same connection in Python. Each finds the tables, the
flag columns, the column comments and the ``sam_tag()`` macros."""

import io
import subprocess
import sys

import duckdb
import pysam
import pytest

import bam_assets
from bam_assets.cli.main import main
from bam_assets_tests.helpers import (
    REAL_DATA,
    cli_bytes,
    cli_store_arguments,
    materialize_partition,
    settings_for,
)

PAIRED = "umitools_paired.bam"
QUERY = (
    "SELECT count(*), sum(sam_tag_int(tags, 'NM')), count(*) FILTER (WHERE is_paired), "
    "count(*) FILTER (WHERE is_unmapped) FROM reads WHERE key = 'umitools_paired.bam'"
)


@pytest.fixture
def stored(any_store, instance, monkeypatch) -> list[str]:
    """The paired file in a new store of each catalog; the CLI options that select it."""
    settings = settings_for(REAL_DATA, "", store=any_store)
    materialize_partition(settings, PAIRED, instance)
    return cli_store_arguments(settings, monkeypatch)


def expected_row() -> tuple:
    nm = sum(
        record.get_tag("NM")
        for record in pysam.AlignmentFile(str(REAL_DATA / PAIRED)).fetch(until_eof=True)
        if record.has_tag("NM")
    )
    unmapped = int(pysam.view("-c", "-f", "4", str(REAL_DATA / PAIRED)).strip())
    return (8451, nm, 8451, unmapped)


def test_a_plain_duckdb_client_opens_the_store_with_the_printed_setup(stored):
    """What docs/lake.md tells a user of any DuckDB client to type, run in a connection that knows
    nothing of bam-assets."""
    setup = cli_bytes("sql", "--setup", *stored).decode()
    assert "autoinstall_known_extensions = false" in setup and "(READ_ONLY" in setup
    connection = duckdb.connect()
    connection.execute(setup)
    assert connection.execute(QUERY).fetchone() == expected_row()
    columns = connection.execute(
        "SELECT column_name, comment FROM duckdb_columns() WHERE database_name = 'lake' "
        "AND table_name = 'reads' ORDER BY column_index"
    ).fetchall()
    assert [name for name, _ in columns][:3] == ["key", "rec_no", "qname"]
    assert "is_supplementary" in dict(columns) and all(comment for _, comment in columns)
    with pytest.raises(duckdb.Error, match="read-only"):
        connection.execute("DELETE FROM reads")


def test_sql_runs_a_query_and_a_script_and_says_what_failed(stored, monkeypatch, capsys):
    printed = cli_bytes("sql", QUERY, *stored).decode().splitlines()
    assert printed[1].split("\t") == [str(value) for value in expected_row()]
    monkeypatch.setattr(
        sys, "stdin", io.StringIO("SELECT 1 AS one;\nSELECT count(*) AS n FROM files;")
    )
    assert cli_bytes("sql", *stored).decode() == "one\n1\nn\n1\n"
    assert main(["sql", "SELECT * FROM no_such_table", *stored]) == 1
    assert "no_such_table" in capsys.readouterr().err


def test_bam_assets_connect_in_python(stored):
    lake = stored == ["--lake"]
    connection = bam_assets.connect(None if lake else stored[1], lake=lake)
    try:
        assert connection.execute(QUERY).fetchone() == expected_row()
    finally:
        connection.close()


def test_sql_through_the_console_script(stored):
    result = subprocess.run(
        [sys.executable, "-m", "bam_assets", "sql", "SELECT count(*) AS n FROM files", *stored],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (result.returncode, result.stdout) == (0, "n\n1\n"), result.stderr
