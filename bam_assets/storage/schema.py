"""The tables of the embedded store and the tag macros, created if missing and checked if old.

The logical columns come from ``model.reads_schema``; what is physical is decided here: the flag
columns are virtual (computed from ``flag`` on read), and SEQ and QUAL are stored uncompressed.
"""

import duckdb

from bam_assets.model.reads_schema import READS_COLUMNS
from bam_assets.model.sam import FLAG_BITS
from bam_assets.model.tables import TableNames
from bam_assets.storage.store import OutdatedSchemaError

# seq and qual are stored uncompressed: DuckDB's string compression of random bases and qualities
# saved 35% of the file but took 40% of the ingest's CPU time.
_UNCOMPRESSED = {"seq", "qual"}


def _reads_column_sql(name: str, sql_type: str, nullable: bool) -> str:
    if name in FLAG_BITS:
        return f"{name} BOOLEAN GENERATED ALWAYS AS ((flag & {FLAG_BITS[name]}) <> 0) VIRTUAL"
    compression = " USING COMPRESSION uncompressed" if name in _UNCOMPRESSED else ""
    return f"{name} {sql_type}{compression}{'' if nullable else ' NOT NULL'}"


def reads_table_sql(table: str) -> str:
    columns = ",\n    ".join(
        _reads_column_sql(c.name, c.sql_type, c.nullable) for c in READS_COLUMNS
    )
    return f"CREATE TABLE IF NOT EXISTS {table} (\n    {columns}\n)"


def files_table_sql(table: str) -> str:
    return f"""
        CREATE TABLE IF NOT EXISTS {table} (
            key VARCHAR PRIMARY KEY,
            path VARCHAR NOT NULL,
            format VARCHAR NOT NULL,
            size_bytes BIGINT NOT NULL,
            mtime TIMESTAMPTZ NOT NULL,
            fingerprint VARCHAR NOT NULL,
            header_text VARCHAR NOT NULL,
            reference_names VARCHAR[] NOT NULL,
            reference_lengths BIGINT[] NOT NULL,
            read_count BIGINT NOT NULL,
            ingested_at TIMESTAMPTZ NOT NULL,
            ingest_seconds DOUBLE NOT NULL
        )
    """


# Reaching tags in the SAM text of the optional fields ('NM:i:0<TAB>MD:Z:100'). RE2 reads '\t'
# as a tab; tag names are two letters or digits, so they are safe inside a pattern.
TAG_MACROS = (
    # Every tag as {tag, type, value}, in file order.
    """CREATE MACRO IF NOT EXISTS sam_tags(tags) AS list_transform(
        list_filter(string_split(tags, chr(9)), lambda t: t <> ''),
        lambda t: {'tag': t[1:2], 'type': t[4:4], 'value': t[6:]})""",
    # The value text of one tag, NULL when the record does not have it.
    """CREATE MACRO IF NOT EXISTS sam_tag(tags, name) AS
        CASE WHEN regexp_matches(tags, '(^|\t)' || name || ':[AifZHB]:')
             THEN regexp_extract(tags, '(?:^|\t)' || name || ':[AifZHB]:([^\t]*)', 1) END""",
    # One integer (type i) or float (type f) tag as a number.
    """CREATE MACRO IF NOT EXISTS sam_tag_int(tags, name) AS
        TRY_CAST(regexp_extract(tags, '(?:^|\t)' || name || ':i:([^\t]*)', 1) AS BIGINT)""",
    """CREATE MACRO IF NOT EXISTS sam_tag_float(tags, name) AS
        TRY_CAST(regexp_extract(tags, '(?:^|\t)' || name || ':f:([^\t]*)', 1) AS DOUBLE)""",
)

_READS_COLUMNS_ADDED_LAST = ("qual_sum", "gc_count", "ref_id", "next_ref_id", "nm")
_FILES_COLUMNS_ADDED_LAST = ("reference_names", "reference_lengths")


def ensure_schema(connection: duckdb.DuckDBPyConnection, tables: TableNames, location: str) -> None:
    """Creates the reads and files tables and the tag macros if they do not exist yet; refuses,
    in words, tables made by an earlier bam-assets with other columns."""
    if table_exists(connection, tables.files):
        _check_columns(connection, tables.files, _FILES_COLUMNS_ADDED_LAST, location)
    if table_exists(connection, tables.reads):
        _check_columns(connection, tables.reads, _READS_COLUMNS_ADDED_LAST, location)
    else:
        connection.execute(reads_table_sql(tables.reads))
        for column in READS_COLUMNS:
            connection.execute(
                f"COMMENT ON COLUMN {tables.reads}.{column.name} IS "
                f"'{column.description.replace(chr(39), chr(39) * 2)}'"
            )
    connection.execute(files_table_sql(tables.files))
    for macro in TAG_MACROS:
        connection.execute(macro)


def table_names(connection: duckdb.DuckDBPyConnection) -> list[str]:
    """The tables of the current database and schema."""
    return [
        row[0]
        for row in connection.execute(
            "SELECT table_name FROM duckdb_tables() "
            "WHERE database_name = current_database() AND schema_name = current_schema()"
        ).fetchall()
    ]


def table_exists(connection: duckdb.DuckDBPyConnection, table: str) -> bool:
    return table in table_names(connection)


def _check_columns(
    connection: duckdb.DuckDBPyConnection, table: str, expected: tuple[str, ...], location: str
) -> None:
    """``CREATE TABLE IF NOT EXISTS`` keeps an older table as it is, and the first INSERT would then
    fail with a binder error that names neither the cause nor the remedy."""
    present = {
        row[0]
        for row in connection.execute(
            "SELECT column_name FROM duckdb_columns() WHERE table_name = ? "
            "AND database_name = current_database() AND schema_name = current_schema()",
            [table],
        ).fetchall()
    }
    missing = [column for column in expected if column not in present]
    if missing:
        raise OutdatedSchemaError(
            f"DuckDB database {location}: table {table} was created by an "
            f"earlier bam-assets and lacks the columns {', '.join(missing)}. Ingest into a new "
            "database file (or drop the table) and re-ingest the files."
        )


def check_side_table(
    connection: duckdb.DuckDBPyConnection, tables: TableNames, table: str, location: str
) -> None:
    """Refuses to add a side table to reads filled without it: the partitions already stored
    would have no rows in it, and their summaries would silently be empty."""
    if table_exists(connection, table):
        return
    if connection.execute(f"SELECT count(*) FROM {tables.reads}").fetchone()[0]:
        raise OutdatedSchemaError(
            f"DuckDB database {location}: table {tables.reads} was filled by an "
            f"earlier bam-assets, without the table {table}. Ingest into a new "
            "database file (or drop the table) and re-ingest the files."
        )
