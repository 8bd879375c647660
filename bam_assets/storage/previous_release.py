"""Recognising a store of the previous release: one DuckDB file (by default
``data/bam_assets.duckdb``) holding a ``reads`` table, which this release does not open but
moves with ``bam-assets migrate``."""

from pathlib import Path

import duckdb

from bam_assets.storage.errors import PreviousReleaseStoreError

# A DuckDB database file says "DUCK" at byte 8 of its header.
_DUCKDB_MAGIC = (8, b"DUCK")


def is_duckdb_file(path: Path) -> bool:
    offset, magic = _DUCKDB_MAGIC
    try:
        with path.open("rb") as handle:
            return handle.read(offset + len(magic))[offset:] == magic
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return False


def reads_tables(path: Path) -> list[str]:
    """The ``reads`` tables (of every named instance: ``<prefix>reads`` beside a
    ``<prefix>files``) of a DuckDB file of the previous release."""
    with duckdb.connect(str(path), read_only=True) as connection:
        tables = {
            row[0]
            for row in connection.execute(
                "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main'"
            ).fetchall()
        }
    return sorted(
        table
        for table in tables
        if table.endswith("reads") and f"{table.removesuffix('reads')}files" in tables
    )


def refuse_previous_release(catalog: Path) -> None:
    """Raises PreviousReleaseStoreError, naming the command that moves it, when ``catalog`` is a
    DuckDB file of the previous release, or when it does not exist yet and the previous release's
    file of the same name (``.duckdb``) does beside it."""
    if catalog.exists():
        if is_duckdb_file(catalog):
            target = catalog.with_suffix(".sqlite")
            raise PreviousReleaseStoreError(_words(catalog, target))
        return
    sibling = catalog.with_suffix(".duckdb")
    if is_duckdb_file(sibling):
        raise PreviousReleaseStoreError(_words(sibling, catalog))


def _words(old: Path, new: Path) -> str:
    try:
        tables = reads_tables(old)
    except duckdb.Error as error:
        tables, why = [], f" (it could not be opened: {' '.join(str(error).split())})"
    else:
        why = ""
    if not tables and not why:
        return (
            f"{old} is a DuckDB database without a reads table, not a bam-assets store: give "
            "--db the catalog file of a store (or a new path)"
        )
    return (
        f"{old} is a store of an earlier bam-assets (one DuckDB file with a reads table){why}. "
        "This release keeps reads in a DuckLake (a catalog file beside a folder of Parquet "
        f"files) and does not write the old file. Move it with: bam-assets migrate {old} {new}"
        f" (then use --db {new}; the old file is left as it was)"
    )
