"""DuckDB's ducklake, sqlite and postgres extensions, loaded from their PyPI packages, never
downloaded.

DuckDB installs extensions from its own servers (``INSTALL``, or automatically on first use).
Here they come from the packages ``duckdb-extension-ducklake``,
``duckdb-extension-sqlite-scanner`` and ``duckdb-extension-postgres-scanner``, which ship
DuckDB's signed binaries as ``duckdb_extension_<name>/extensions/v<duckdb version>/<name>
.duckdb_extension``, one release per DuckDB version. Automatic installing and loading stay off
(``connection.OFFLINE``) and each file is LOADed by its path, so nothing reaches the network.

Why the signature is checked here and not by DuckDB on every LOAD: DuckDB's check hashes the
whole binary and costs 0.25-0.33 s of CPU per extension (35-42 MB each), 0.5 s for every process
that opens a local store, more than a `bam-assets view -c` needs for the rest of its work. A
binary whose SHA-256 is one of ``SIGNED_DIGESTS`` (the pinned wheels' binaries, each verified by
DuckDB's own check: tests/storage/test_extensions.py does it again) is loaded without DuckDB
checking it again (0.03 s to hash). Any other binary (another platform's wheel, a changed file)
must first pass DuckDB's signature check in a scratch instance, so nothing unsigned is ever
loaded.
"""

import hashlib
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


# SHA-256 of each binary in the duckdb-extension-*==1.5.5 wheels for manylinux2014_x86_64, as
# their RECORD lists it; each loads with DuckDB's signature check.
SIGNED_DIGESTS = {
    "ducklake": {"e51bf9e8d933d0e83780ae096455501b542cf962569a2ce5613532d702c08302"},
    "sqlite_scanner": {"693d2bf90779df23ca5ebe0688639b9adfc11c2d55ae3466b33e28be16afaa5e"},
    "postgres_scanner": {"b1ced4cfc6311313e117c2afb3eac76508718778dde0716421503c7dbfb5605c"},
}

# Every connection: never download an extension, never load one implicitly (``load_extensions``
# loads them from their files).
OFFLINE = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}

# Connections that load extensions through ``load_extensions`` (which checks each binary's
# signature itself) are made with this setting.
VERIFIED_LOADING = {"allow_unsigned_extensions": True}


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


def check_signature(name: str, path: Path) -> None:
    """Returns when ``path`` is a binary DuckDB signed: its digest is a known signed one, or
    DuckDB's own check passes in a scratch instance; raises StoreConfigError otherwise."""
    with path.open("rb") as binary:
        digest = hashlib.file_digest(binary, "sha256").hexdigest()
    if digest in SIGNED_DIGESTS.get(name, ()):
        return
    scratch = duckdb.connect(":memory:", config=OFFLINE)
    try:
        scratch.execute(f"LOAD {sql_literal(str(path))}")
    except duckdb.Error as error:
        raise StoreConfigError(f"DuckDB refused the extension {path}: {error}") from error
    finally:
        scratch.close()


def load_extensions(connection: duckdb.DuckDBPyConnection, names: tuple[str, ...]) -> None:
    """LOADs the extensions ``names`` into ``connection`` (made with ``VERIFIED_LOADING``) from
    their files, each after ``check_signature``."""
    for name in names:
        path = extension_path(name)
        check_signature(name, path)
        statement = f"LOAD {sql_literal(str(path))}"
        try:
            connection.execute(statement)
        except duckdb.Error as error:
            raise StoreConfigError(f"DuckDB could not {statement}: {error}") from error
