"""The store: the operations the assets, checks, jobs and CLI need from wherever reads are kept.

A ``Store`` opens sessions; a ``StoreSession`` replaces or deletes one partition atomically (the
reads, the side tables that ride along with them, the files row), writes derived tables keyed by
partition, and reads. ``lake.Lake`` implements them over a DuckLake, whichever catalog it has;
``config.open_store`` builds it.

SQL values always travel as parameters; table names come from ``TableNames`` (validated).
"""

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import duckdb
import pyarrow as pa

from bam_assets.model.selection import ALL_RECORDS, Selection
from bam_assets.model.source_stream import SourceFile
from bam_assets.model.tables import TableNames, TableSpec
from bam_assets.storage.errors import (  # noqa: F401  (the interface's errors, re-exported)
    OutdatedSchemaError,
    PartitionNotFoundError,
    PreviousReleaseStoreError,
    StoreBusyError,
    StoreConfigError,
    StoreMissingError,
    StoreWriteError,
)
from bam_assets.storage.selection import count_selected, selected_lines


class SideTable(Protocol):
    """Rows derived from a partition's batches while they stream in (e.g. the quality per cycle),
    stored in ``table`` in the same transaction as the reads."""

    table: TableSpec

    def observe(self, batch: pa.RecordBatch) -> None: ...

    def rows(self) -> pa.Table: ...


@dataclass(frozen=True)
class WriteResult:
    read_count: int
    seconds: float


@dataclass(frozen=True)
class StoredFile:
    """One row of the files table."""

    key: str
    path: str
    format: str
    size_bytes: int
    read_count: int
    ingested_at: datetime


class StoreSession(ABC):
    """One open connection to the store. ``connection`` runs the statistics' read-only SQL over
    ``tables``; every write goes through the methods."""

    connection: duckdb.DuckDBPyConnection
    tables: TableNames
    location: str

    @abstractmethod
    def replace_partition(
        self,
        source: SourceFile,
        batches: pa.RecordBatchReader,
        side_tables: Sequence[SideTable] = (),
        on_batch: Callable[[int, float], None] | None = None,
    ) -> WriteResult:
        """Replaces the partition ``source.key`` with ``batches`` (and the rows of each side table
        and the files row), atomically: readers see the old partition or the new one, and any
        error leaves the old one. ``on_batch(read_count, seconds)`` follows progress."""

    @abstractmethod
    def delete_partition(self, key: str) -> None:
        """Removes a partition's rows from every table of the instance keyed by partition (reads,
        files, side tables, summaries), atomically."""

    @abstractmethod
    def replace_partition_rows(
        self, spec: TableSpec, key: str, select_sql: str, parameters: dict[str, Any]
    ) -> int:
        """Creates ``spec``'s table if needed and replaces the rows of ``key`` with those of
        ``select_sql`` (its first column is the key, ``$key``); returns the rows stored."""

    @abstractmethod
    def replace_table(self, spec: TableSpec, select_sql: str) -> None:
        """Replaces the whole of ``spec``'s table with the rows of ``select_sql``."""

    def list_files(self) -> list[StoredFile]:
        rows = self.connection.execute(
            f"SELECT key, path, format, size_bytes, read_count, ingested_at "
            f"FROM {self.tables.files} ORDER BY key"
        ).fetchall()
        return [StoredFile(*row) for row in rows]

    def find_key(self, key_or_path: str) -> str:
        """The partition key stored for a key or for a source file path."""
        rows = self.connection.execute(
            f"SELECT key FROM {self.tables.files} WHERE key = ? OR path = ? ORDER BY key = ? DESC",
            [key_or_path, key_or_path, key_or_path],
        ).fetchall()
        if not rows:
            raise PartitionNotFoundError(
                f"No ingested file has key or path {key_or_path!r} in {self.location}"
            )
        return rows[0][0]

    def keys_for_path(self, path: str) -> list[str]:
        """Every partition key stored for the source file ``path``."""
        rows = self.connection.execute(
            f"SELECT key FROM {self.tables.files} WHERE path = ? ORDER BY key", [path]
        ).fetchall()
        return [row[0] for row in rows]

    def file_row(self, key: str) -> tuple[str, str]:
        """The stored format and header text of partition ``key``."""
        rows = self.connection.execute(
            f"SELECT format, header_text FROM {self.tables.files} WHERE key = ?", [key]
        ).fetchall()
        if not rows:
            raise PartitionNotFoundError(f"No ingested file has key {key!r} in {self.location}")
        return rows[0]

    def references(self, key: str) -> list[tuple[str, int]]:
        """(name, length) of the references of partition ``key``, in the order its reads'
        ``ref_id`` counts them."""
        rows = self.connection.execute(
            f"SELECT reference_names, reference_lengths FROM {self.tables.files} WHERE key = ?",
            [key],
        ).fetchall()
        if not rows:
            raise PartitionNotFoundError(f"No ingested file has key {key!r} in {self.location}")
        names, lengths = rows[0]
        return list(zip(names, lengths, strict=True))

    def header_text(self, key: str) -> str:
        """The header as ``samtools view -H --no-PG`` printed it at ingest."""
        return self.file_row(key)[1]

    def iter_sam_lines(
        self, key: str, selection: Selection = ALL_RECORDS, batch_rows: int = 50_000
    ) -> Iterator[pa.Array]:
        """Yields the records of partition ``key`` that ``selection`` keeps (every record by
        default) as SAM text lines (Arrow string arrays), in file order, each record once. Raises
        ``SelectionError`` before the first line for a selection that cannot run."""
        return selected_lines(self.connection, self.tables, key, selection, batch_rows)

    def count_reads(self, key: str, selection: Selection = ALL_RECORDS) -> int:
        """The number of records of partition ``key`` that ``selection`` keeps
        (``samtools view -c``)."""
        return count_selected(self.connection, self.tables, key, selection)


class Store(ABC):
    """Where one ingest instance keeps its reads."""

    tables: TableNames
    location: str

    @abstractmethod
    def session(self, read_only: bool = False) -> AbstractContextManager[StoreSession]:
        """Opens the store; a writable session first creates or checks the schema."""
