"""Where a lake's catalog lives, and how to open it: the only place the two catalogs differ.

A lake is a DuckLake: a catalog database (which Parquet files make up which table at which
snapshot) and a data path (the folder of the files). The catalog is either

- ``LocalCatalog``: a SQLite file beside its data folder (``<file>.files``), the zero-set-up
  default for one machine. SQLite in WAL mode: readers never wait for a writer nor a writer for
  readers, and writers take turns only for the moment of a commit (docs/lake.md has the
  measurements against a DuckDB catalog file, which one process at a time may open to write);
- ``PostgresCatalog``: a Postgres database (a libpq DSN) for many processes on many machines,
  the data path a folder every machine mounts at the same absolute path.

Both plug the same four things into one code path: the ``ATTACH`` form, what to check or create
before opening, how a new lake records its identity, and a lock per partition key that a write
of that key holds from before its transaction begins until after it commits.

DuckDB by itself accepts much that loses data: it creates a missing data path, writes into an
empty folder where an unmounted share should be, and reports a permission problem as "Failed to
create directory … No such file or directory". ``preflight`` refuses each case first, in words.
"""

import fcntl
import hashlib
import logging
import re
import sqlite3
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from bam_assets.storage.errors import StoreConfigError, StoreMissingError
from bam_assets.storage.extensions import load_statements
from bam_assets.storage.previous_release import refuse_previous_release
from bam_assets.storage.retry import retry
from bam_assets.storage.sql import sql_literal

# The name a client attaches the lake as (sessions of this process attach it as lake_<n>).
ALIAS = "lake"
# The DuckLake format this duckdb's ducklake extension reads (and creates), by duckdb minor.
_FORMATS = {"1.5": "1.0"}
# Written into the data path by the process that registers the lake, and its id kept in the
# catalog database: a data path without it is not this lake's (an unmounted share, a typo).
MARKER_FILE = ".bam-assets-lake"
IDENTITY_TABLE = "bam_assets_lake"
# Processes attaching a catalog that has no DuckLake yet all create its tables; all but one fail
# with this and succeed when they try again.
_INIT_RACE = re.compile(r"Failed to initialize DuckLake|database is locked", re.IGNORECASE)
_PASSWORD = re.compile(r"(^|\s)password\s*=|://[^/@\s]*:[^/@\s]*@", re.IGNORECASE)
# Advisory locks of bam-assets in a Postgres catalog: (this class, a 31-bit hash of the key).
_LOCK_CLASS = 0x62616D  # "bam"


def current_lake(connection: duckdb.DuckDBPyConnection) -> str:
    """The name the lake in use on ``connection`` is attached as."""
    return connection.execute("SELECT current_database()").fetchone()[0]


def words(error: BaseException) -> str:
    return " ".join(str(error).split())


class KeyLockHeld(Exception):
    """Another writer holds the lock of the partition key (tried again until the deadline)."""


def _key_hash(key: str, bits: int) -> int:
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big") >> (
        64 - bits
    )


class Catalog(ABC):
    """Where a lake's catalog lives (one of the two plug-ins below)."""

    #: DuckDB's extension and ATTACH type of the catalog database.
    kind: str
    extensions: tuple[str, ...]

    @property
    @abstractmethod
    def target(self) -> str:
        """What ``ATTACH`` takes after ``<kind>:``: a file path or a DSN."""

    @property
    def ducklake_uri(self) -> str:
        return f"ducklake:{self.kind}:{self.target}"

    @abstractmethod
    def default_data_path(self) -> Path | None:
        """The data folder when none is configured (None: one must be)."""

    @abstractmethod
    def prepare(self, write: bool) -> None:
        """Checks (and for a writer of a new local lake, creates) what must exist before the
        catalog is attached."""

    @abstractmethod
    def register(self, connection: duckdb.DuckDBPyConnection, alias: str) -> str:
        """Records a new lake's id in the catalog database (attached as ``alias``); of processes
        racing, the first wins and every one returns its id."""

    @abstractmethod
    def attach_options(self, data_dir: Path, read_only: bool) -> str:
        """The options of the lake's ``ATTACH``."""

    #: Whether the data path is wherever the catalog says (Postgres: every machine mounts it at
    #: one path, which is checked) or follows the catalog file (local: moving the folder moves
    #: the store).
    data_path_is_stored = True

    @abstractmethod
    @contextmanager
    def key_lock(
        self,
        connection: duckdb.DuckDBPyConnection,
        key: str,
        timeout_seconds: float,
        log: logging.Logger,
    ) -> Iterator[None]:
        """Holds the lock of partition ``key`` against every other writer of this catalog; gives
        up with StoreBusyError after ``timeout_seconds``."""


class LocalCatalog(Catalog):
    """A SQLite catalog file; its data folder is ``<file>.files`` beside it and its partition
    locks are files in ``<file>.locks``."""

    kind = "sqlite"
    extensions = ("sqlite_scanner", "ducklake")
    data_path_is_stored = False

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).absolute()

    @property
    def target(self) -> str:
        return str(self.path)

    def default_data_path(self) -> Path:
        return Path(f"{self.path}.files")

    def prepare(self, write: bool) -> None:
        refuse_previous_release(self.path)
        if not write:
            if not self.path.is_file():
                raise StoreMissingError(f"No store at {self.path}")
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.default_data_path().mkdir(exist_ok=True)
            new = not self.path.exists() or self.path.stat().st_size == 0
        except OSError as error:
            raise StoreConfigError(f"Cannot create the store {self.path}: {error}") from error
        if new:
            with self._sqlite() as database:
                # WAL, which the file keeps: readers and writers never wait for each other.
                database.execute("PRAGMA journal_mode=WAL")

    @contextmanager
    def _sqlite(self) -> Iterator[sqlite3.Connection]:
        try:
            database = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        except sqlite3.Error as error:
            raise StoreConfigError(f"Cannot create the store {self.path}: {error}") from error
        try:
            yield database
        except sqlite3.Error as error:
            raise StoreConfigError(f"Cannot create the store {self.path}: {error}") from error
        finally:
            database.close()

    def register(self, connection: duckdb.DuckDBPyConnection, alias: str) -> str:
        # One transaction that SQLite lets one process run at a time: of processes racing, the
        # first inserts its id and every one reads it back.
        with self._sqlite() as database:
            database.execute("BEGIN IMMEDIATE")
            database.execute(
                f"CREATE TABLE IF NOT EXISTS {IDENTITY_TABLE} (one INTEGER PRIMARY KEY "
                "CHECK (one = 1), lake_id TEXT NOT NULL, created_at TEXT NOT NULL)"
            )
            database.execute(
                f"INSERT OR IGNORE INTO {IDENTITY_TABLE} VALUES (1, ?, datetime('now'))",
                [uuid.uuid4().hex],
            )
            (lake_id,) = database.execute(f"SELECT lake_id FROM {IDENTITY_TABLE}").fetchone()
            database.execute("COMMIT")
        return lake_id

    def attach_options(self, data_dir: Path, read_only: bool) -> str:
        data = f"DATA_PATH {sql_literal(f'{data_dir}/')}, OVERRIDE_DATA_PATH true"
        return f"READ_ONLY, {data}" if read_only else data

    @contextmanager
    def key_lock(
        self,
        connection: duckdb.DuckDBPyConnection,
        key: str,
        timeout_seconds: float,
        log: logging.Logger,
    ) -> Iterator[None]:
        # flock, held by the open file: released when the process ends however it ends. Keys
        # share 256 lock files; two keys of one file only take turns.
        folder = Path(f"{self.path}.locks")
        folder.mkdir(exist_ok=True)
        with (folder / f"{_key_hash(key, 8):02x}").open("a") as handle:

            def attempt() -> None:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError as error:
                    raise KeyLockHeld(f"another writer of {key} holds its lock") from error

            retry(
                f"Locking partition {key}",
                attempt,
                lambda error: isinstance(error, KeyLockHeld),
                timeout_seconds,
                log,
            )
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def __str__(self) -> str:
        return str(self.path)


class PostgresCatalog(Catalog):
    """A Postgres database, named by a libpq DSN whose password comes from libpq's
    ``PGPASSWORD`` or ``~/.pgpass``, never from the DSN (DuckDB shows it in
    ``duckdb_databases()`` and logs carry it)."""

    kind = "postgres"
    extensions = ("postgres_scanner", "ducklake")

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn

    @property
    def target(self) -> str:
        """The DSN with a connect timeout: a host that drops packets would otherwise hang every
        session for libpq's default of forever."""
        if "=" in self.dsn and "connect_timeout" not in self.dsn:
            return f"{self.dsn} connect_timeout=10"
        return self.dsn

    def default_data_path(self) -> None:
        return None

    def prepare(self, write: bool) -> None:
        if not self.dsn:
            raise StoreConfigError(
                "The Postgres catalog needs a DSN: set BAM_ASSETS_LAKE_CATALOG (or "
                "store.lake.catalog)"
            )
        if _PASSWORD.search(self.dsn):
            raise StoreConfigError(
                "The DuckLake catalog DSN holds a password: give it in PGPASSWORD or ~/.pgpass "
                "instead (DuckDB shows the DSN to every query of duckdb_databases())"
            )

    def register(self, connection: duckdb.DuckDBPyConnection, alias: str) -> str:
        statement = (
            f"CREATE TABLE IF NOT EXISTS {IDENTITY_TABLE} (one boolean PRIMARY KEY DEFAULT true "
            "CHECK (one), lake_id text NOT NULL, created_at timestamptz NOT NULL DEFAULT now()); "
            f"INSERT INTO {IDENTITY_TABLE} (lake_id) VALUES ('{uuid.uuid4().hex}') "
            "ON CONFLICT DO NOTHING"
        )
        # Two first CREATE TABLE IF NOT EXISTS at once: Postgres lets one win, the other fails on
        # its type name and finds the table when it tries again.
        retry(
            "Registering the lake",
            lambda: connection.execute("CALL postgres_execute(?, ?)", [alias, statement]),
            lambda error: "duplicate key" in str(error),
            5,
            logging.getLogger(__name__),
        )
        connection.execute("CALL pg_clear_cache()")
        row = connection.execute(f"SELECT lake_id FROM {alias}.{IDENTITY_TABLE}").fetchone()
        assert row is not None
        return row[0]

    def attach_options(self, data_dir: Path, read_only: bool) -> str:
        return "READ_ONLY" if read_only else f"DATA_PATH {sql_literal(f'{data_dir}/')}"

    @contextmanager
    def key_lock(
        self,
        connection: duckdb.DuckDBPyConnection,
        key: str,
        timeout_seconds: float,
        log: logging.Logger,
    ) -> Iterator[None]:
        # pg_advisory_xact_lock in a Postgres transaction of its own (a cursor's), which Postgres
        # ends, releasing the lock, when the writer commits here or its connection drops.
        locks = f"{current_lake(connection)}_locks"
        attached = connection.execute(
            "SELECT count(*) FROM duckdb_databases() WHERE database_name = ?", [locks]
        ).fetchone()
        if not attached[0]:
            connection.execute(f"ATTACH {sql_literal(self.target)} AS {locks} (TYPE postgres)")
        query = sql_literal(
            f"SELECT pg_try_advisory_xact_lock({_LOCK_CLASS}, {_key_hash(key, 31)})"
        )
        cursor = connection.cursor()
        try:
            cursor.execute("BEGIN TRANSACTION")

            def attempt() -> None:
                row = cursor.execute(
                    f"SELECT * FROM postgres_query({sql_literal(locks)}, {query})"
                ).fetchone()
                if not row[0]:
                    raise KeyLockHeld(f"another writer of {key} holds its lock")

            retry(
                f"Locking partition {key}",
                attempt,
                lambda error: isinstance(error, KeyLockHeld),
                timeout_seconds,
                log,
            )
            yield
        finally:
            try:
                cursor.execute("ROLLBACK")
            finally:
                cursor.close()

    def __str__(self) -> str:
        return f"Postgres catalog {self.dsn}"


def catalog_of(spec: str) -> Catalog:
    """``postgres:<libpq DSN>`` names a Postgres catalog; anything else a local catalog file."""
    if spec.startswith("postgres:"):
        return PostgresCatalog(spec.removeprefix("postgres:"))
    return LocalCatalog(spec)


def attach_statement(catalog: Catalog, data_dir: Path, read_only: bool, alias: str = ALIAS) -> str:
    """The ``ATTACH`` of the lake as ``alias``, as any DuckDB client may type it."""
    options = catalog.attach_options(data_dir, read_only)
    return f"ATTACH {sql_literal(catalog.ducklake_uri)} AS {alias} ({options})"


def client_statements(catalog: Catalog, data_dir: Path) -> list[str]:
    """What a plain DuckDB client of this duckdb release types to read the lake: no downloads,
    the extensions from their files, the lake attached read-only and in use (its tables and the
    ``sam_tag()`` macros then need no prefix)."""
    return [
        "SET autoinstall_known_extensions = false",
        "SET autoload_known_extensions = false",
        *load_statements(catalog.extensions),
        attach_statement(catalog, data_dir, read_only=True),
        f"USE {ALIAS}",
    ]


def attach(
    connection: duckdb.DuckDBPyConnection,
    catalog: Catalog,
    data_dir: Path,
    read_only: bool,
    log: logging.Logger,
    alias: str = ALIAS,
) -> str:
    """Checks the lake (``preflight``) and attaches it as ``alias``, in use, so that table names
    need no prefix; a read-only attach refuses every write. The catalog's extensions must be
    loaded (``connection.lake_connection`` does it). Returns the lake's id."""
    catalog.prepare(write=not read_only)
    lake_id = preflight(connection, catalog, data_dir, not read_only, alias=f"{alias}_catalog")
    statement = attach_statement(catalog, data_dir, read_only, alias)

    def attempt() -> None:
        try:
            connection.execute(statement)
        except duckdb.Error as error:
            if _INIT_RACE.search(str(error)):
                raise
            raise StoreConfigError(f"Cannot open {catalog}: {words(error)}") from error

    retry(
        f"Opening {catalog}",
        attempt,
        lambda error: isinstance(error, duckdb.Error) and bool(_INIT_RACE.search(str(error))),
        60,
        log,
    )
    connection.execute(f"USE {alias}")
    return lake_id


def preflight(
    connection: duckdb.DuckDBPyConnection,
    catalog: Catalog,
    data_dir: Path,
    write: bool,
    alias: str = "catalog",
) -> str:
    """Checks, in this order, what using the lake needs and raises StoreConfigError naming the
    first cause (StoreMissingError for reading a lake that was never written):

    the catalog database (reachable, the password accepted, the database there: a plain ATTACH,
    so that a wrong DSN never creates a lake); the DuckLake format (this extension's, not an
    older or newer lake's); the data path (for a Postgres catalog the one the catalog names; an
    existing folder holding this lake's marker file); for a writer, that it may write there. A
    writer registering a new lake records its id in the catalog database and the marker file.
    Returns the lake's id.
    """
    with _catalog_database(connection, catalog, alias, read_only=not write):
        tables = {
            row[0]
            for row in connection.execute(
                "SELECT table_name FROM duckdb_tables() WHERE database_name = ?", [alias]
            ).fetchall()
        }
        if "ducklake_metadata" in tables:
            _check_format_and_path(connection, catalog, data_dir, alias)
        lake_id = (
            connection.execute(f"SELECT lake_id FROM {alias}.{IDENTITY_TABLE}").fetchone()[0]
            if IDENTITY_TABLE in tables
            else None
        )
        if lake_id is None and not write:
            raise StoreMissingError(f"No lake has been written at {catalog}")
        _check_data_dir(data_dir)
        if write:
            _check_writable(data_dir)
        if lake_id is None:
            lake_id = catalog.register(connection, alias)
            marker = data_dir / MARKER_FILE
            if not marker.is_file():
                marker.write_text(f"{lake_id}\n")
        check_data_path(data_dir, lake_id)
    return lake_id


def _check_data_dir(data_dir: Path) -> None:
    if not data_dir.is_dir():
        raise StoreConfigError(
            f"The DuckLake data path {data_dir} does not exist or is not a folder (DuckDB "
            "would create it and write there): create it, or mount the shared folder"
        )


def check_data_path(data_dir: Path, lake_id: str) -> None:
    """Refuses a data path that is not the lake's (no folder, or a marker file missing or of
    another lake: an unmounted share), as every session checks before it reads or writes."""
    _check_data_dir(data_dir)
    marker = data_dir / MARKER_FILE
    found = marker.read_text().strip() if marker.is_file() else None
    if found != lake_id:
        raise StoreConfigError(
            f"The DuckLake data path {data_dir} is not this lake's: {marker} "
            + ("is missing" if found is None else f"names lake {found}")
            + f", the catalog names lake {lake_id} (an unmounted share or another path "
            "on this machine? every machine must mount the data at the same path)"
        )


@contextmanager
def _catalog_database(
    connection: duckdb.DuckDBPyConnection, catalog: Catalog, alias: str, read_only: bool
) -> Iterator[None]:
    """The catalog's database attached as ``alias`` (not as a lake), then detached."""
    options = f"TYPE {catalog.kind}{', READ_ONLY' if read_only else ''}"
    try:
        connection.execute(f"ATTACH {sql_literal(catalog.target)} AS {alias} ({options})")
    except duckdb.Error as error:
        raise StoreConfigError(
            f"Cannot connect to the DuckLake catalog database {catalog}: {words(error)}"
        ) from error
    try:
        yield
    finally:
        connection.execute(f"DETACH {alias}")


def _check_format_and_path(
    connection: duckdb.DuckDBPyConnection, catalog: Catalog, data_dir: Path, alias: str
) -> None:
    metadata = dict(
        connection.execute(
            f"SELECT key, value FROM {alias}.ducklake_metadata WHERE scope IS NULL"
        ).fetchall()
    )
    minor = ".".join(duckdb.__version__.split(".")[:2])
    supported = _FORMATS.get(minor)
    version = metadata.get("version")
    if supported is not None and version != supported:
        raise StoreConfigError(
            f"The lake in {catalog} has DuckLake format {version}; duckdb {duckdb.__version__}"
            f" reads format {supported}. Use the duckdb release that wrote it, or migrate the "
            "lake on purpose (ATTACH … (AUTOMATIC_MIGRATION)) after a backup of the catalog"
        )
    stored = metadata.get("data_path")
    if catalog.data_path_is_stored and stored is not None and stored != f"{data_dir}/":
        raise StoreConfigError(
            f"The lake in {catalog} keeps its files in {stored}, not in "
            f"{data_dir}/: mount the data at the same path on every machine"
        )


def _check_writable(data: Path) -> None:
    probe = data / f".bam-assets-probe-{uuid.uuid4().hex}"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise StoreConfigError(f"The DuckLake data path {data} is not writable: {error}") from error
