"""The commands that read the store: ``view``, ``list``, and samtools' ``flagstat``, ``idxstats``
and ``stats`` computed by SQL over the stored reads."""

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bam_assets.model.sam_bytes import bytes_from_text
from bam_assets.orchestration.resources import StoreResource
from bam_assets.orchestration.settings import StoreSettings
from bam_assets.stats.flagstat import flagstat
from bam_assets.stats.idxstats import idxstats, reference_lengths
from bam_assets.stats.samtools_text import flagstat_text, idxstats_text, sn_lines
from bam_assets.stats.summary_numbers import summary_numbers
from bam_assets.storage.store import PartitionNotFoundError, StoreMissingError, StoreSession


@contextmanager
def _read_session(arguments: argparse.Namespace) -> Iterator[StoreSession]:
    """A read-only session on the store of ``--db``, with every CPU and DuckDB's own memory
    limit (reads are short and parallel)."""
    store = StoreResource(settings=StoreSettings(database=arguments.db, memory_limit=None))
    try:
        with store.session(read_only=True, all_cpus=True) as session:
            yield session
    except StoreMissingError as error:
        raise SystemExit(f"{error}: run 'bam-assets ingest PATH' first.") from error


def _key_for(session: StoreSession, file_or_key: str) -> str:
    """The partition key of a stored key or of an ingested file's path."""
    if Path(file_or_key).is_file():
        file_or_key = str(Path(file_or_key).absolute())
    try:
        return session.find_key(file_or_key)
    except PartitionNotFoundError as error:
        raise SystemExit(str(error)) from error


def view(arguments: argparse.Namespace) -> int:
    """The stored text as samtools printed it: escaped bytes are written back as the bytes."""
    with _read_session(arguments) as session:
        key = _key_for(session, arguments.file_or_key)
        out = sys.stdout.buffer
        if arguments.header:
            out.write(bytes_from_text(session.header_text(key)))
        for lines in session.iter_sam_lines(key):
            out.write(bytes_from_text("\n".join(lines.to_pylist()) + "\n"))
    return 0


def summary(arguments: argparse.Namespace) -> int:
    """flagstat / idxstats / stats: samtools' text, computed by SQL over the stored reads."""
    with _read_session(arguments) as session:
        key = _key_for(session, arguments.file_or_key)
        if arguments.command == "flagstat":
            text = flagstat_text(flagstat(session.connection, session.tables, key))
        elif arguments.command == "idxstats":
            rows = idxstats(
                session.connection,
                session.tables,
                key,
                session.file_row(key)[0],
                session.references(key),
                reference_lengths(arguments.reference),
            )
            text = idxstats_text(rows)
        else:
            numbers = summary_numbers(
                session.connection, session.tables, key, max_insert_size=arguments.insert_size
            )
            text = sn_lines(numbers)
    sys.stdout.buffer.write(bytes_from_text(text))  # contig names may hold escaped bytes
    return 0


def list_files(arguments: argparse.Namespace) -> int:
    with _read_session(arguments) as session:
        for stored in session.list_files():
            sys.stdout.write(
                f"{stored.key}\t{stored.format}\t{stored.read_count} reads\t{stored.path}\n"
            )
    return 0
