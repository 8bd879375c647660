"""Where a DuckLake is and how to open it: a Postgres catalog (a libpq DSN) and a data path (a
folder every machine mounts at the same absolute path), checked before anything is written.

DuckDB by itself accepts much that loses data: it creates a missing data path, writes into an
empty folder where an unmounted share should be, and reports a permission problem as "Failed to
create directory … No such file or directory". ``preflight`` refuses each case first, in words.
"""

import os
import random
import re
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb

from bam_assets.storage.connection import duckdb_config
from bam_assets.storage.lake_extensions import OFFLINE, load_extensions
from bam_assets.storage.store import StoreConfigError, StoreMissingError

ALIAS = "lake"
# The DuckLake format this duckdb's ducklake extension reads (and creates), by duckdb minor.
_FORMATS = {"1.5": "1.0"}
# Written into the data path by the process that registers the lake, and its id kept in the
# catalog database: a data path without it is not this lake's (an unmounted share, a typo).
MARKER_FILE = ".bam-assets-lake"
_IDENTITY_TABLE = "bam_assets_lake"
_PASSWORD = re.compile(r"(^|\s)password\s*=|://[^/@\s]*:[^/@\s]*@", re.IGNORECASE)
# Processes attaching a catalog that has no DuckLake yet all create its tables; all but one fail
# with this and succeed when they retry.
_INIT_RACE = re.compile(r"Failed to initialize DuckLake", re.IGNORECASE)


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _words(error: BaseException) -> str:
    return " ".join(str(error).split())


@dataclass(frozen=True)
class LakeLocation:
    """A lake: ``catalog``, the libpq DSN of its Postgres database (the password comes from
    libpq's ``PGPASSWORD`` or ``~/.pgpass``, never from the DSN, which DuckDB shows in
    ``duckdb_databases()`` and logs carry), and ``data_path``, the folder of its Parquet files."""

    catalog: str
    data_path: str

    def check(self) -> None:
        """Refuses a location without a catalog or a data path, or with a password in the DSN."""
        if not self.catalog or not self.data_path:
            raise StoreConfigError(
                "The DuckLake store needs a catalog and a data path: set "
                "BAM_ASSETS_LAKE_CATALOG and BAM_ASSETS_LAKE_DATA_PATH (or store.lake.catalog "
                "and store.lake.data_path)"
            )
        if _PASSWORD.search(self.catalog):
            raise StoreConfigError(
                "The DuckLake catalog DSN holds a password: give it in PGPASSWORD or ~/.pgpass "
                "instead (DuckDB shows the DSN to every query of duckdb_databases())"
            )

    @property
    def dsn(self) -> str:
        """The catalog DSN, with a connect timeout: a host that drops packets would otherwise
        hang every session for libpq's default of forever."""
        if "=" in self.catalog and "connect_timeout" not in self.catalog:
            return f"{self.catalog} connect_timeout=10"
        return self.catalog

    @property
    def data_dir(self) -> Path:
        return Path(self.data_path).absolute()

    @property
    def stored_data_path(self) -> str:
        """The data path as DuckLake stores and compares it: absolute, with a trailing slash."""
        return f"{self.data_dir}/"

    def __str__(self) -> str:
        return f"DuckLake {self.catalog} (data {self.data_dir})"


@contextmanager
def connect(
    lake: LakeLocation, read_only: bool, threads: int | None, memory_limit: str | None
) -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory DuckDB with the lake attached as ``lake`` and in use, so that table names need
    no prefix, once ``preflight`` found nothing wrong; read-only sessions refuse every write."""
    config = {
        **OFFLINE,
        **duckdb_config(threads, memory_limit),
        # An in-memory database spills into ./.tmp by default; one folder per process.
        "temp_directory": str(Path(tempfile.gettempdir()) / f"bam-assets-spill-{os.getpid()}"),
    }
    connection = duckdb.connect(":memory:", config=config)
    try:
        connection.execute("SET enable_progress_bar = false")
        load_extensions(connection)
        preflight(connection, lake, write=not read_only)
        options = "READ_ONLY" if read_only else f"DATA_PATH {_literal(lake.stored_data_path)}"
        attach = f"ATTACH {_literal('ducklake:postgres:' + lake.dsn)} AS {ALIAS} ({options})"
        deadline = time.monotonic() + 60
        while True:
            try:
                connection.execute(attach)
                break
            except duckdb.Error as error:
                if not _INIT_RACE.search(str(error)) or time.monotonic() > deadline:
                    raise StoreConfigError(f"Cannot open {lake}: {_words(error)}") from error
                time.sleep(0.2 + random.random() * 0.3)
        connection.execute(f"USE {ALIAS}")
        yield connection
    finally:
        connection.close()


def preflight(connection: duckdb.DuckDBPyConnection, lake: LakeLocation, write: bool) -> None:
    """Checks, in this order, what using the lake needs and raises StoreConfigError naming the
    first cause (StoreMissingError for reading a lake that was never written):

    the catalog database (reachable, the password accepted, the database
    there: a plain Postgres ATTACH, so that a wrong DSN never creates a lake); the DuckLake format
    (this extension's, not an older or newer lake's); the data path (the one the catalog names,
    an existing folder holding this lake's marker file); for a writer, that it may write there.
    A writer registering a new lake records its id in the catalog database and the marker file.
    """
    lake.check()
    with _catalog_database(connection, lake, read_only=not write) as catalog:
        tables = {
            row[0]
            for row in catalog.execute(
                "SELECT table_name FROM duckdb_tables() WHERE database_name = 'catalog'"
            ).fetchall()
        }
        if "ducklake_metadata" in tables:
            _check_format_and_path(catalog, lake)
        lake_id = (
            catalog.execute(f"SELECT lake_id FROM catalog.{_IDENTITY_TABLE}").fetchone()
            if _IDENTITY_TABLE in tables
            else None
        )
        if lake_id is None and not write:
            raise StoreMissingError(f"No lake has been written at {lake}")
        data = lake.data_dir
        if not data.is_dir():
            raise StoreConfigError(
                f"The DuckLake data path {data} does not exist or is not a folder (DuckDB would "
                "create it and write there): create it, or mount the shared folder"
            )
        marker = data / MARKER_FILE
        found = marker.read_text().strip() if marker.is_file() else None
        if write:
            _check_writable(data)
        if lake_id is None:
            lake_id = _register(catalog)
            if found is None:
                marker.write_text(f"{lake_id[0]}\n")
                found = lake_id[0]
        if found != lake_id[0]:
            raise StoreConfigError(
                f"The DuckLake data path {data} is not this lake's: {marker} "
                + ("is missing" if found is None else f"names lake {found}")
                + f", the catalog names lake {lake_id[0]} (an unmounted share or another path "
                "on this machine? every machine must mount the data at the same path)"
            )


@contextmanager
def _catalog_database(
    connection: duckdb.DuckDBPyConnection, lake: LakeLocation, read_only: bool
) -> Iterator[duckdb.DuckDBPyConnection]:
    """The catalog's Postgres database attached as ``catalog`` (not as a lake), then detached."""
    try:
        connection.execute(
            f"ATTACH {_literal(lake.dsn)} AS catalog "
            f"(TYPE postgres{', READ_ONLY' if read_only else ''})"
        )
    except duckdb.Error as error:
        raise StoreConfigError(
            f"Cannot connect to the DuckLake catalog database {lake.catalog}: {_words(error)}"
        ) from error
    try:
        yield connection
    finally:
        connection.execute("DETACH catalog")


def _check_format_and_path(catalog: duckdb.DuckDBPyConnection, lake: LakeLocation) -> None:
    metadata = dict(
        catalog.execute(
            "SELECT key, value FROM catalog.ducklake_metadata WHERE scope IS NULL"
        ).fetchall()
    )
    minor = ".".join(duckdb.__version__.split(".")[:2])
    supported = _FORMATS.get(minor)
    version = metadata.get("version")
    if supported is not None and version != supported:
        raise StoreConfigError(
            f"The lake in {lake.catalog} has DuckLake format {version}; duckdb {duckdb.__version__}"
            f" reads format {supported}. Use the duckdb release that wrote it, or migrate the "
            "lake on purpose (ATTACH … (AUTOMATIC_MIGRATION)) after a backup of the catalog"
        )
    stored = metadata.get("data_path")
    if stored is not None and stored != lake.stored_data_path:
        raise StoreConfigError(
            f"The lake in {lake.catalog} keeps its files in {stored}, not in "
            f"{lake.stored_data_path}: mount the data at the same path on every machine"
        )


def _check_writable(data: Path) -> None:
    probe = data / f".bam-assets-probe-{uuid.uuid4().hex}"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise StoreConfigError(f"The DuckLake data path {data} is not writable: {error}") from error


def _register(catalog: duckdb.DuckDBPyConnection) -> tuple[str]:
    """Records a new lake id in the catalog database; of processes racing, the first wins and
    every one returns its id."""
    statement = (
        f"CREATE TABLE IF NOT EXISTS {_IDENTITY_TABLE} (one boolean PRIMARY KEY DEFAULT true "
        "CHECK (one), lake_id text NOT NULL, created_at timestamptz NOT NULL DEFAULT now()); "
        f"INSERT INTO {_IDENTITY_TABLE} (lake_id) VALUES ('{uuid.uuid4().hex}') "
        "ON CONFLICT DO NOTHING"
    )
    for attempt in range(5):
        try:
            catalog.execute("CALL postgres_execute('catalog', ?)", [statement])
            break
        except duckdb.Error as error:
            # Two first CREATE TABLE IF NOT EXISTS at once: Postgres lets one win, the other
            # fails on its type name and finds the table when it tries again.
            if "duplicate key" not in str(error) or attempt == 4:
                raise
            time.sleep(0.1)
    catalog.execute("CALL pg_clear_cache()")
    row = catalog.execute(f"SELECT lake_id FROM catalog.{_IDENTITY_TABLE}").fetchone()
    assert row is not None
    return row
