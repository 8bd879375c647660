"""The commands that read the store: ``view``, ``list``, samtools' ``flagstat``, ``idxstats`` and
``stats`` computed over the stored reads, and the ``multiqc`` folder of all three."""

import argparse
import operator
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from functools import reduce
from pathlib import Path

from bam_assets.model.regions import RegionError
from bam_assets.model.sam_bytes import bytes_from_text
from bam_assets.model.selection import ReadFilters, SelectionError, parse_flags
from bam_assets.orchestration.export import count, export
from bam_assets.orchestration.multiqc_export import export_multiqc_folder
from bam_assets.orchestration.resources import StoreResource
from bam_assets.orchestration.settings import store_settings
from bam_assets.reading.bed import read_bed
from bam_assets.reading.export import OutputError
from bam_assets.stats.flagstat import flagstat
from bam_assets.stats.idxstats import idxstats, reference_lengths
from bam_assets.stats.samtools_stats import stats_text
from bam_assets.stats.samtools_text import flagstat_text, idxstats_text, sn_lines
from bam_assets.stats.sorted_sections import is_sorted
from bam_assets.stats.summary_numbers import DEFAULT_MAX_INSERT_SIZE, summary_numbers
from bam_assets.storage.store import PartitionNotFoundError, StoreMissingError, StoreSession


def _store(arguments: argparse.Namespace, bounded: bool = False) -> StoreResource:
    """The store of ``--db`` or ``--lake``, read with every CPU and DuckDB's own memory limit
    (the statistics' queries are short and parallel), or, ``bounded``, with the store's
    ``memory_limit`` (64MB): ``view`` streams every record of a partition, and with DuckDB's
    own limit (80% of the machine) a whole-file view of 2.9M reads peaked at 1.3 GB instead of
    430 MB, as fast."""
    overrides = {} if bounded else {"memory_limit": None}
    return StoreResource(settings=store_settings(arguments.backend, arguments.db, **overrides))


@contextmanager
def _read_session(arguments: argparse.Namespace) -> Iterator[StoreSession]:
    """A read-only session on the store of ``--db`` or ``--lake``."""
    try:
        with _store(arguments).session(read_only=True, all_cpus=True) as session:
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


def _read_group_file(path: str) -> frozenset[str]:
    """The read group names of a file, separated by white space (as samtools reads them)."""
    try:
        return frozenset(Path(path).read_text().split())
    except OSError as error:
        raise SelectionError(f"cannot read the read group file: {error}") from error


def _filters(arguments: argparse.Namespace) -> ReadFilters:
    """``view``'s filter options as samtools reads them (flags given twice add up)."""
    read_groups = frozenset(arguments.read_groups) if arguments.read_groups else None
    excluded = frozenset()
    if arguments.read_group_file and arguments.read_group_file.startswith("^"):
        if read_groups is not None:
            raise SelectionError("-r and -R ^FILE cannot be mixed (keep some, or drop some)")
        excluded = _read_group_file(arguments.read_group_file[1:])
    elif arguments.read_group_file:
        read_groups = (read_groups or frozenset()) | _read_group_file(arguments.read_group_file)
    flags = {
        name: reduce(operator.or_, map(parse_flags, getattr(arguments, name)), 0)
        for name in ("require_flags", "exclude_flags", "exclude_all_flags")
    }
    return ReadFilters(
        **flags,
        min_mapq=arguments.min_mapq,
        targets=read_bed(arguments.bed) if arguments.bed else None,
        read_groups=read_groups,
        excluded_read_groups=excluded,
        where=arguments.where,
    )


def view(arguments: argparse.Namespace) -> int:
    """``samtools view``: regions, filters, counts, and SAM/BAM/CRAM out; any bad option stops
    it with a message before anything is written."""
    with _read_session(arguments) as session:
        key = _key_for(session, arguments.file_or_key)
    store = _store(arguments, bounded=True)
    try:
        filters = _filters(arguments)
        if arguments.count:
            counted = f"{count(store, key, arguments.regions, filters)}\n"
            if not arguments.output:
                sys.stdout.write(counted)
                return 0
            try:
                Path(arguments.output).write_text(counted)
            except OSError as error:
                raise OutputError(f"cannot write {arguments.output}: {error.strerror}") from error
            return 0
        export(
            store,
            key,
            arguments.regions,
            arguments.output,
            filters=filters,
            file_format=arguments.file_format,
            with_header=arguments.with_header,
            header_only=arguments.header_only,
            reference=arguments.reference,
            threads=arguments.threads,
        )
    except (SelectionError, RegionError, OutputError) as error:
        raise SystemExit(f"bam-assets view: {error}") from error
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
        elif arguments.sn:
            numbers = summary_numbers(
                session.connection, session.tables, key, max_insert_size=arguments.insert_size
            )
            text = sn_lines(numbers, is_sorted(session.connection, session.tables, key))
        else:
            path = next(f.path for f in session.list_files() if f.key == key)
            # samtools prints its arguments in the third line
            size = arguments.insert_size
            options = "" if size == DEFAULT_MAX_INSERT_SIZE else f"-i {size} "
            text = stats_text(
                session.connection,
                session.tables,
                key,
                path,
                command_line=f"stats {options}{path}",
                max_insert_size=size,
            )
    sys.stdout.buffer.write(bytes_from_text(text))  # contig names may hold escaped bytes
    return 0


def multiqc(arguments: argparse.Namespace) -> int:
    """Writes ``<sample>.stats``, ``.flagstat`` and ``.idxstats`` of every stored file (or of the
    ones named) into a folder, for ``multiqc DIR``; unchanged partitions are not written again."""
    folder = Path(arguments.folder)
    with _read_session(arguments) as session:
        keys = [_key_for(session, name) for name in arguments.file_or_key] or None
        result = export_multiqc_folder(
            session,
            folder,
            reference_lengths(arguments.reference),
            keys,
            progress=lambda line: sys.stderr.write(line + "\n"),
        )
    for key, sample in sorted(result.samples.items()):
        sys.stdout.write(f"{key}\t{folder / sample}.stats\n")
    return 0


def list_files(arguments: argparse.Namespace) -> int:
    with _read_session(arguments) as session:
        for stored in session.list_files():
            sys.stdout.write(
                f"{stored.key}\t{stored.format}\t{stored.read_count} reads\t{stored.path}\n"
            )
    return 0
