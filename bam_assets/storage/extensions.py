"""DuckDB's ducklake, sqlite and postgres extensions, loaded from their PyPI packages, never
downloaded.

DuckDB installs extensions from its own servers (``INSTALL``, or automatically on first use).
Here they come from the packages ``duckdb-extension-ducklake``,
``duckdb-extension-sqlite-scanner`` and ``duckdb-extension-postgres-scanner``, which ship
DuckDB's signed binaries as ``duckdb_extension_<name>/extensions/v<duckdb version>/<name>
.duckdb_extension``, one release per DuckDB version. Automatic installing and loading stay off
(``connection.OFFLINE``) and each file is LOADed by its path, so signature checks stay on and
nothing reaches the network.
"""

import importlib.util
from pathlib import Path

import duckdb

from bam_assets.storage.errors import StoreConfigError
from bam_assets.storage.sql import sql_literal

# Extension name -> (PyPI distribution, the package that holds its binary).
EXTENSIONS = {
    "sqlite_scanner": ("duckdb-extension-sqlite-scanner", "duckdb_extension_sqlite_scanner"),
    "postgres_scanner": ("duckdb-extension-postgres-scanner", "duckdb_extension_postgres_scanner"),
    "ducklake": ("duckdb-extension-ducklake", "duckdb_extension_ducklake"),
}


def duckdb_version() -> str:
    return duckdb.__version__


def extension_path(name: str) -> Path:
    """The binary of extension ``name`` for this DuckDB, or StoreConfigError saying what to
    install."""
    distribution, package = EXTENSIONS[name]
    version = duckdb_version()
    wanted = f"'{distribution}=={version}'"
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise StoreConfigError(
            f"The DuckDB extension {name} is not installed: pip install {wanted}"
        )
    shipped = Path(next(iter(spec.submodule_search_locations))) / "extensions"
    path = shipped / f"v{version}" / f"{name}.duckdb_extension"
    if not path.is_file():
        versions = ", ".join(sorted(p.name for p in shipped.glob("v*"))) or "no binary"
        raise StoreConfigError(
            f"The installed {distribution} has {versions}, not the binary for duckdb {version} "
            f"({path}): pip install {wanted}"
        )
    return path


def load_statements(names: tuple[str, ...]) -> list[str]:
    """``LOAD '<file>'`` of each extension, as a plain DuckDB client would type it."""
    return [f"LOAD {sql_literal(str(extension_path(name)))}" for name in names]


def load_extensions(connection: duckdb.DuckDBPyConnection, names: tuple[str, ...]) -> None:
    """LOADs the extensions ``names`` into ``connection`` from their files."""
    for statement in load_statements(names):
        try:
            connection.execute(statement)
        except duckdb.Error as error:
            raise StoreConfigError(f"DuckDB could not {statement}: {error}") from error
