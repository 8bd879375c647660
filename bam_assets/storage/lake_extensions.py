"""DuckDB's ducklake and postgres extensions, loaded from their PyPI packages, never downloaded.

DuckDB installs extensions from its own servers (``INSTALL``, or automatically on first use).
Here they come from the packages ``duckdb-extension-ducklake`` and
``duckdb-extension-postgres-scanner`` (the ``lake`` extra), which ship DuckDB's signed binaries as
``duckdb_extension_<name>/extensions/v<duckdb version>/<name>.duckdb_extension``, one release per
DuckDB version. Automatic installing and loading stay off and each file is LOADed by its path, so
signature checks stay on and nothing reaches the network.
"""

import importlib.util
from pathlib import Path

import duckdb

from bam_assets.storage.store import StoreConfigError

# Extension name -> (PyPI distribution, the package that holds its binary). postgres_scanner first:
# ATTACH 'ducklake:postgres:…' needs it.
EXTENSIONS = {
    "postgres_scanner": ("duckdb-extension-postgres-scanner", "duckdb_extension_postgres_scanner"),
    "ducklake": ("duckdb-extension-ducklake", "duckdb_extension_ducklake"),
}

# Every connection to a lake: never download an extension, never load one implicitly.
OFFLINE = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}


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
            f"The DuckDB extension {name} is not installed: pip install {wanted} "
            "(or the project's 'lake' extra)"
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


def load_extensions(connection: duckdb.DuckDBPyConnection) -> None:
    """LOADs both extensions into ``connection`` from their files."""
    for name in EXTENSIONS:
        path = extension_path(name)
        try:
            connection.execute(f"LOAD '{str(path).replace(chr(39), chr(39) * 2)}'")
        except duckdb.Error as error:
            raise StoreConfigError(f"DuckDB could not load {path}: {error}") from error
