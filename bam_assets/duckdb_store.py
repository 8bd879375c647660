"""DuckDB storage: connection settings, schema, partition writes and reads. The only module that
talks to DuckDB (the SQL for statistics lives in ``read_stats_sql``).

Layout (see the README for every column):
- ``reads``: one row per alignment record, SAM fields as SAM prints them (``pos``/``pnext``
  1-based, 0 meaning none; ``*`` kept for absent strings), the optional fields as SAM prints them
  (one tab-separated string; macros reach one tag or all of them as structs), derived columns.
- ``files``: one row per partition: path, format, size, mtime, fingerprint, header, read count.

Values always travel as parameters; table names come from validated configuration only.
"""

import logging
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pyarrow as pa

from bam_assets.available_cpus import available_cpus
from bam_assets.cycle_quality import CycleQuality
from bam_assets.source_stream import SourceFile

logger = logging.getLogger(__name__)

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# SAM flag bits, named as in the SAM specification (section 1.4).
FLAG_COLUMNS = {
    "is_paired": 0x1,
    "is_proper_pair": 0x2,
    "is_unmapped": 0x4,
    "is_mate_unmapped": 0x8,
    "is_reverse": 0x10,
    "is_mate_reverse": 0x20,
    "is_read1": 0x40,
    "is_read2": 0x80,
    "is_secondary": 0x100,
    "is_qcfail": 0x200,
    "is_duplicate": 0x400,
    "is_supplementary": 0x800,
}


class DatabaseBusyError(RuntimeError):
    """Another process held the DuckDB write lock for longer than we were willing to wait."""


_DISK_FULL = re.compile(r"no space left|file too large|disk (is )?full|quota", re.IGNORECASE)


class DatabaseWriteError(RuntimeError):
    """DuckDB could not write the database file (disk full, file size limit, I/O error).

    Raised after the transaction was rolled back, so nothing of the failed write is visible.
    """

    def __init__(self, database: str, error: BaseException):
        cause = (
            "the disk is full or a file size limit was reached"
            if _DISK_FULL.search(str(error))
            else "an I/O error occurred"
        )
        super().__init__(f"Cannot write to DuckDB database {database}: {cause} ({error})")
        self.database = database


@dataclass(frozen=True)
class StoreConfig:
    """Where the database is and how DuckDB may use the machine."""

    database: str
    reads_table: str = "reads"
    files_table: str = "files"
    threads: int | None = None
    memory_limit: str | None = None
    lock_timeout_seconds: float = 120.0

    @property
    def cycle_table(self) -> str:
        """Bases and quality sums per sequencing cycle of each partition, written at ingest."""
        return f"{self.reads_table}_cycle_quality"

    def __post_init__(self) -> None:
        for name in (self.reads_table, self.files_table):
            if not _IDENTIFIER.match(name):
                raise ValueError(f"Invalid table name {name!r}: use letters, digits and _ only")


@dataclass(frozen=True)
class StoredFile:
    """One row of the files table."""

    key: str
    path: str
    format: str
    size_bytes: int
    read_count: int
    ingested_at: datetime


# What DuckDB (2.0.1) says when another process holds the file:
# 'IO Error: Could not set lock on file "x.duckdb": Conflicting lock is held in … (PID 123)'.
_LOCK_CONFLICT = re.compile(r"could not set lock on file|conflicting lock is held", re.IGNORECASE)


def _is_lock_conflict(error: duckdb.Error) -> bool:
    """True only for another process's lock: other IO errors (a corrupt block) are not retried."""
    return _LOCK_CONFLICT.search(str(error)) is not None


@contextmanager
def connect(config: StoreConfig, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """Opens the database, waiting with backoff while another process holds its write lock.

    DuckDB lets one process write a file at a time. Rather than failing on a raw lock error, a
    writer or reader waits up to ``config.lock_timeout_seconds`` and then raises
    DatabaseBusyError saying which file was busy.
    """
    # DuckDB sizes its thread pool by the host's CPUs; pinned to fewer (taskset, a cpuset), the
    # extra threads only contend: 6.0 s instead of 4.5 s of CPU per million reads on one CPU.
    settings: dict[str, str | int] = {"threads": config.threads or available_cpus()}
    if config.memory_limit:
        settings["memory_limit"] = config.memory_limit
    if not read_only and config.database != ":memory:":
        Path(config.database).parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + config.lock_timeout_seconds
    delay = 0.05
    while True:
        try:
            connection = duckdb.connect(config.database, read_only=read_only, config=settings)
            break
        except (duckdb.IOException, duckdb.ConnectionException) as error:
            if not _is_lock_conflict(error):
                raise
            if time.monotonic() >= deadline:
                raise DatabaseBusyError(
                    f"DuckDB database {config.database} stayed locked by another process for "
                    f"{config.lock_timeout_seconds:.0f} s: {error}"
                ) from error
            logger.info("Database %s is locked; retrying in %.2f s", config.database, delay)
            time.sleep(delay)
            delay = min(delay * 2, 2.0)
    try:
        yield connection
    finally:
        connection.close()


def ensure_schema(connection: duckdb.DuckDBPyConnection, config: StoreConfig) -> None:
    """Creates the tables and the tag macros if they do not exist yet."""
    _check_existing_tables(connection, config)
    flag_columns = ",\n".join(
        f"{name} BOOLEAN GENERATED ALWAYS AS ((flag & {bit}) <> 0) VIRTUAL"
        for name, bit in FLAG_COLUMNS.items()
    )
    connection.execute(
        f"""
        CREATE TABLE IF NOT EXISTS {config.reads_table} (
            key VARCHAR NOT NULL,      -- partition key of the source file
            rec_no BIGINT NOT NULL,    -- 0-based ordinal of the record in its file
            qname VARCHAR NOT NULL,
            flag INTEGER NOT NULL,
            rname VARCHAR NOT NULL,    -- '*' when unplaced
            pos BIGINT NOT NULL,       -- 1-based leftmost position, 0 when unplaced
            mapq INTEGER NOT NULL,
            cigar VARCHAR NOT NULL,    -- '*' when absent
            rnext VARCHAR NOT NULL,    -- '=' same reference, '*' unknown
            pnext BIGINT NOT NULL,     -- 1-based, 0 when unavailable
            tlen BIGINT NOT NULL,
            -- seq and qual are stored uncompressed: DuckDB's string compression of random bases
            -- and qualities saved 35% of the file but took 40% of the ingest's CPU time.
            seq VARCHAR USING COMPRESSION uncompressed NOT NULL,   -- '*' when not stored
            qual VARCHAR USING COMPRESSION uncompressed NOT NULL,  -- '*' when not stored
            tags VARCHAR NOT NULL,     -- optional fields as SAM prints them, tab-separated; 
            end_pos BIGINT,            -- 1-based inclusive end (bam_endpos); NULL when unmapped
            read_length BIGINT NOT NULL,  -- query length (SEQ, else from the CIGAR)
            qual_sum BIGINT,           -- sum of the Phred base qualities; NULL when QUAL is '*'
            gc_count BIGINT,           -- C and G bases in SEQ; NULL when SEQ is '*'
            {flag_columns}
        )
        """
    )
    connection.execute(
        f"""
        CREATE TABLE IF NOT EXISTS {config.files_table} (
            key VARCHAR PRIMARY KEY,
            path VARCHAR NOT NULL,
            format VARCHAR NOT NULL,
            size_bytes BIGINT NOT NULL,
            mtime TIMESTAMPTZ NOT NULL,
            fingerprint VARCHAR NOT NULL,
            header_text VARCHAR NOT NULL,
            read_count BIGINT NOT NULL,
            ingested_at TIMESTAMPTZ NOT NULL,
            ingest_seconds DOUBLE NOT NULL
        )
        """
    )
    connection.execute(
        f"""
        CREATE TABLE IF NOT EXISTS {config.cycle_table} (
            key VARCHAR NOT NULL,
            fragment TINYINT NOT NULL,     -- 1: first fragments (and unpaired reads), 2: last
            cycle BIGINT NOT NULL,         -- 1-based, in sequencing order
            bases BIGINT NOT NULL,
            quality_sum BIGINT NOT NULL    -- a missing QUAL counts 255 per base, as in samtools
        )
        """
    )
    for macro in _TAG_MACROS:
        connection.execute(macro)


class OutdatedSchemaError(RuntimeError):
    """The reads table was created by an earlier bam-assets with other columns."""


_READS_COLUMNS_ADDED_LAST = ("qual_sum", "gc_count")


def _check_existing_tables(connection: duckdb.DuckDBPyConnection, config: StoreConfig) -> None:
    """Fails in words when an earlier bam-assets made the reads table: with other columns, or
    filled it before the per-cycle table existed (those partitions have no cycle rows, so their
    quality-per-cycle summaries would be empty)."""
    tables = {
        row[0]
        for row in connection.execute(
            "SELECT table_name FROM duckdb_tables() "
            "WHERE database_name = current_database() AND schema_name = current_schema()"
        ).fetchall()
    }
    if config.reads_table not in tables:
        return
    _check_reads_columns(connection, config)
    if config.cycle_table in tables:
        return
    if connection.execute(f"SELECT count(*) FROM {config.reads_table}").fetchone()[0]:
        raise OutdatedSchemaError(
            f"DuckDB database {config.database}: table {config.reads_table} was filled by an "
            f"earlier bam-assets, without the table {config.cycle_table}. Ingest into a new "
            "database file (or drop the table) and re-ingest the files."
        )


def _check_reads_columns(connection: duckdb.DuckDBPyConnection, config: StoreConfig) -> None:
    """Fails in words when the reads table lacks columns this version writes.

    ``CREATE TABLE IF NOT EXISTS`` keeps an older table as it is, and the first INSERT would then
    fail with a binder error that names neither the cause nor the remedy.
    """
    present = {
        row[0]
        for row in connection.execute(
            "SELECT column_name FROM duckdb_columns() WHERE table_name = ? "
            "AND database_name = current_database() AND schema_name = current_schema()",
            [config.reads_table],
        ).fetchall()
    }
    missing = [column for column in _READS_COLUMNS_ADDED_LAST if column not in present]
    if missing:
        raise OutdatedSchemaError(
            f"DuckDB database {config.database}: table {config.reads_table} was created by an "
            f"earlier bam-assets and lacks the columns {', '.join(missing)}. Ingest into a new "
            "database file (or drop the table) and re-ingest the files."
        )


# Reaching tags in the SAM text of the optional fields ('NM:i:0<TAB>MD:Z:100'). RE2 reads '\t'
# as a tab; tag names are two letters or digits, so they are safe inside a pattern.
_TAG_MACROS = (
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


# Lengths of CIGAR operations that consume the query (M, I, S, =, X), as the SAM specification
# defines them.
_QUERY_SPAN = (
    "list_sum(list_transform(regexp_extract_all(cigar, '(\\d+)[MIS=X]', 1), lambda x: x::BIGINT))"
)


def _insert_sql(config: StoreConfig) -> str:
    return f"""
        INSERT INTO {config.reads_table} (key, rec_no, qname, flag, rname, pos, mapq, cigar, rnext,
            pnext, tlen, seq, qual, tags, end_pos, read_length, qual_sum, gc_count)
        SELECT $key, rec_no, qname, flag, rname, pos, mapq, cigar, rnext, pnext, tlen, seq, qual,
            tags, end_pos,
            CASE WHEN seq <> '*' THEN length(seq) WHEN cigar = '*' THEN 0
                 ELSE coalesce({_QUERY_SPAN}, 0) END,
            qual_sum, gc_count
        FROM batch
    """


@dataclass(frozen=True)
class WriteResult:
    read_count: int
    seconds: float


class _ProgressStream:
    """Wraps a record batch stream to count rows, report progress and keep the first error.

    DuckDB consumes the stream inside one INSERT statement and turns a Python exception raised by
    the stream into its own error type; keeping the original lets the caller re-raise the real
    cause (for example the file that could not be decoded).
    """

    def __init__(
        self, batches: pa.RecordBatchReader, on_batch: Callable[[int, float], None] | None
    ):
        self.read_count = 0
        self.error: BaseException | None = None
        self.cycles = CycleQuality()
        self._started = time.monotonic()
        self._on_batch = on_batch
        self.reader = pa.RecordBatchReader.from_batches(batches.schema, self._batches(batches))

    def _batches(self, batches: pa.RecordBatchReader) -> Iterator[pa.RecordBatch]:
        try:
            for batch in batches:
                yield batch
                self.cycles.observe(batch)
                self.read_count += batch.num_rows
                if self._on_batch is not None:
                    self._on_batch(self.read_count, time.monotonic() - self._started)
        except BaseException as error:
            self.error = error
            raise


def replace_partition(
    connection: duckdb.DuckDBPyConnection,
    config: StoreConfig,
    source: SourceFile,
    batches: pa.RecordBatchReader,
    on_batch: Callable[[int, float], None] | None = None,
) -> WriteResult:
    """Replaces the partition's rows with ``batches`` in one transaction.

    The old rows are deleted, the stream is inserted by a single INSERT statement that pulls one
    batch at a time (so DuckDB writes full row groups to disk as it goes and memory stays within
    its memory_limit), the per-cycle quality sums taken from the same batches on their way in
    (``CycleQuality``) replace the partition's cycle rows, the files row is upserted, and only
    then is the transaction committed. Any error rolls everything back, so the partition's
    previous rows and all other partitions are untouched. ``on_batch(read_count, seconds)`` is
    called after each batch (progress logging).
    """
    started = time.monotonic()
    stream = _ProgressStream(batches, on_batch)
    connection.register("batch", stream.reader)
    try:
        with transaction(connection):
            connection.execute(f"DELETE FROM {config.reads_table} WHERE key = ?", [source.key])
            try:
                connection.execute(_insert_sql(config), {"key": source.key})
            except duckdb.Error:
                if stream.error is not None:
                    raise stream.error from None
                raise
            connection.execute(f"DELETE FROM {config.cycle_table} WHERE key = ?", [source.key])
            connection.register("cycles", stream.cycles.table())
            connection.execute(
                f"INSERT INTO {config.cycle_table} SELECT $key, * FROM cycles", {"key": source.key}
            )
            connection.unregister("cycles")
            seconds = time.monotonic() - started
            connection.execute(
                f"""
                INSERT OR REPLACE INTO {config.files_table} (key, path, format, size_bytes,
                    mtime, fingerprint, header_text, read_count, ingested_at, ingest_seconds)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
                [
                    source.key,
                    source.path,
                    source.format,
                    source.size_bytes,
                    source.mtime,
                    source.fingerprint,
                    source.header_text,
                    stream.read_count,
                    datetime.now(timezone.utc),
                    seconds,
                ],
            )
    except duckdb.IOException as error:
        raise DatabaseWriteError(config.database, error) from error
    finally:
        try:
            connection.unregister("batch")
        except duckdb.Error:
            logger.debug("Could not unregister the batch stream", exc_info=True)
    return WriteResult(read_count=stream.read_count, seconds=seconds)


@contextmanager
def transaction(connection: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """BEGIN … COMMIT, rolled back on any error.

    After a failed write (disk full) DuckDB may refuse even the ROLLBACK, which must not hide the
    error that is already being raised. The file itself stays consistent: DuckDB only makes a
    transaction visible at COMMIT.
    """
    connection.execute("BEGIN TRANSACTION")
    try:
        yield
        connection.execute("COMMIT")
    except BaseException:
        try:
            connection.execute("ROLLBACK")
        except duckdb.Error:
            logger.warning("ROLLBACK failed after a failed write", exc_info=True)
        raise


def delete_partition(connection: duckdb.DuckDBPyConnection, config: StoreConfig, key: str) -> None:
    """Removes a partition's reads, cycle sums and files row in one transaction."""
    with transaction(connection):
        connection.execute(f"DELETE FROM {config.reads_table} WHERE key = ?", [key])
        connection.execute(f"DELETE FROM {config.cycle_table} WHERE key = ?", [key])
        connection.execute(f"DELETE FROM {config.files_table} WHERE key = ?", [key])


def list_files(connection: duckdb.DuckDBPyConnection, config: StoreConfig) -> list[StoredFile]:
    rows = connection.execute(
        f"SELECT key, path, format, size_bytes, read_count, ingested_at "
        f"FROM {config.files_table} ORDER BY key"
    ).fetchall()
    return [StoredFile(*row) for row in rows]


def find_key(connection: duckdb.DuckDBPyConnection, config: StoreConfig, key_or_path: str) -> str:
    """Returns the partition key stored for a key or for a source file path."""
    rows = connection.execute(
        f"SELECT key FROM {config.files_table} WHERE key = ? OR path = ? ORDER BY key = ? DESC",
        [key_or_path, key_or_path, key_or_path],
    ).fetchall()
    if not rows:
        raise KeyError(f"No ingested file has key or path {key_or_path!r} in {config.database}")
    return rows[0][0]


def header_text(connection: duckdb.DuckDBPyConnection, config: StoreConfig, key: str) -> str:
    rows = connection.execute(
        f"SELECT header_text FROM {config.files_table} WHERE key = ?", [key]
    ).fetchall()
    if not rows:
        raise KeyError(f"No ingested file has key {key!r} in {config.database}")
    return rows[0][0]


def iter_sam_lines(
    connection: duckdb.DuckDBPyConnection, config: StoreConfig, key: str, batch_rows: int = 50_000
) -> Iterator[pa.Array]:
    """Yields the partition's records as SAM text lines (Arrow string arrays), in file order."""
    result = connection.sql(
        f"""
        SELECT concat_ws(chr(9), qname, flag, rname, pos, mapq, cigar, rnext, pnext, tlen, seq,
                         qual, nullif(tags, '')) AS line
        FROM {config.reads_table}
        WHERE key = ?
        ORDER BY rec_no
        """,
        params=[key],
    )
    for batch in result.to_arrow_reader(batch_rows):
        yield batch.column(0)
