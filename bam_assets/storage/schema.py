"""The one schema builder: the tables of a store and the tag macros, created if missing and
checked if old.

The logical columns come from ``model.reads_schema``. DuckLake has no generated columns, and its
tables are read by engines that cannot run DuckDB expressions, so the flag columns are real
columns written with each partition (0.7% of the bytes). SEQ and QUAL are text under the Parquet
files' zstd. The reads table inlines nothing in the catalog: each partition is one Parquet file,
which a re-ingest or a purge drops whole, whatever its size (with inlining, DuckLake records the
delete of a small file's rows in the catalog and keeps the file).
"""

from collections.abc import Callable

import duckdb

from bam_assets.model.reads_schema import READS_COLUMNS, READS_SCHEMA, Column
from bam_assets.model.sam import FLAG_BITS, QUERY_CONSUMING_OPS, cigar_length_sql
from bam_assets.model.tables import TableNames, TableSpec
from bam_assets.storage.catalogs import current_lake
from bam_assets.storage.errors import OutdatedSchemaError
from bam_assets.storage.sql import sql_literal

# zstd for what DuckLake itself writes (compaction, inserts); the staged reads files are zstd too.
PARQUET_COMPRESSION = "zstd"
# Rows of the small tables (files, cycle sums, summaries) up to this many per insert are kept in
# the catalog database ("data inlining") instead of one tiny Parquet file each.
INLINED_ROWS = 2_000


def flag_sql(name: str) -> str:
    """The value of flag column ``name`` (``is_paired``, …) computed from ``flag``."""
    return f"((flag & {FLAG_BITS[name]}) <> 0)"


def _reads_column_sql(column: Column) -> str:
    return f"{column.name} {column.sql_type}{'' if column.nullable else ' NOT NULL'}"


def reads_table_sql(table: str) -> str:
    """The reads table."""
    columns = ",\n    ".join(_reads_column_sql(column) for column in READS_COLUMNS)
    return f"CREATE TABLE IF NOT EXISTS {table} (\n    {columns}\n)"


def reads_select_sql(source: str) -> str:
    """Every stored column of the reads table from the reader's stream ``source``: the key
    (parameter ``$key``), the stream's columns, ``read_length`` (SEQ's length, else the query
    length of the CIGAR) and the flag columns."""
    stream_columns = ", ".join(READS_SCHEMA.names)
    flags = "".join(f", {flag_sql(name)} AS {name}" for name in FLAG_BITS)
    return f"""
        SELECT $key AS key, {stream_columns},
            CAST(CASE WHEN seq <> '*' THEN length(seq) WHEN cigar = '*' THEN 0
                 ELSE {cigar_length_sql(QUERY_CONSUMING_OPS)} END AS BIGINT) AS read_length{flags}
        FROM {source}
    """


def files_table_sql(table: str) -> str:
    """The files table; DuckLake has no PRIMARY KEY, so a partition's row is replaced by DELETE
    and INSERT in the partition's transaction."""
    return f"""
        CREATE TABLE IF NOT EXISTS {table} (
            key VARCHAR NOT NULL,
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


def keyed_table_sql(table: str, spec: TableSpec) -> str:
    """A table keyed by partition (a side table or a summary)."""
    return f"CREATE TABLE IF NOT EXISTS {table} (\n    key VARCHAR NOT NULL,\n    {spec.columns}\n)"


# Reaching tags in the SAM text of the optional fields ('NM:i:0<TAB>MD:Z:100'). RE2 reads '\t'
# as a tab; tag names are two letters or digits, so they are safe inside a pattern. Stored in the
# lake's catalog: a client that attached the lake finds them there (``USE lake`` or
# ``lake.sam_tag(…)``).
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


def ensure_schema(
    connection: duckdb.DuckDBPyConnection,
    tables: TableNames,
    location: str,
    in_transaction: Callable[[str, Callable[[], None]], None],
) -> None:
    """Creates the reads and files tables, their options and the tag macros unless they exist
    (no snapshot then); processes creating them at once conflict, and ``in_transaction``'s retry
    finds them. Tables made by an earlier bam-assets are refused in words."""
    check_stored_columns(connection, tables, location)
    if table_exists(connection, tables.reads) and table_exists(connection, tables.files):
        return

    def create() -> None:
        connection.execute(reads_table_sql(tables.reads))
        comment_reads_columns(connection, tables.reads)
        connection.execute(files_table_sql(tables.files))
        for macro in TAG_MACROS:
            connection.execute(macro)

    in_transaction(f"Creating the tables of {location}", create)
    in_transaction(
        f"Setting the options of {location}", lambda: set_lake_options(connection, tables)
    )


def set_lake_options(connection: duckdb.DuckDBPyConnection, tables: TableNames) -> None:
    """Options kept in the catalog, so that every writer uses them: zstd, small inserts inlined
    in the catalog, but never the reads (see the module's docstring)."""
    lake = current_lake(connection)
    connection.execute(f"CALL {lake}.set_option('parquet_compression', ?)", [PARQUET_COMPRESSION])
    connection.execute(f"CALL {lake}.set_option('data_inlining_row_limit', ?)", [INLINED_ROWS])
    connection.execute(
        f"CALL {lake}.set_option('data_inlining_row_limit', 0, table_name => ?)", [tables.reads]
    )


def comment_reads_columns(connection: duckdb.DuckDBPyConnection, table: str) -> None:
    """Stores each column's description as its comment, for any client to read."""
    for column in READS_COLUMNS:
        connection.execute(
            f"COMMENT ON COLUMN {table}.{column.name} IS {sql_literal(column.description)}"
        )


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


def check_stored_columns(
    connection: duckdb.DuckDBPyConnection, tables: TableNames, location: str
) -> None:
    """Refuses, in words, a reads or files table made by an earlier bam-assets."""
    for table, expected in (
        (tables.files, _FILES_COLUMNS_ADDED_LAST),
        (tables.reads, _READS_COLUMNS_ADDED_LAST),
    ):
        if table_exists(connection, table):
            _check_columns(connection, table, expected, location)


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
            f"The store {location}: table {table} was created by an earlier bam-assets and "
            f"lacks the columns {', '.join(missing)}. Ingest into a new store (or drop the "
            "table) and re-ingest the files."
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
            f"The store {location}: table {tables.reads} was filled by an earlier bam-assets, "
            f"without the table {table}. Ingest into a new store (or drop the table) and "
            "re-ingest the files."
        )
