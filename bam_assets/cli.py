"""``bam-assets``: ingest, list and regenerate alignment files from the command line.

A thin layer: ``ingest`` materializes the same ``reads`` asset the Dagster UI runs, in process,
against the instance at ``$DAGSTER_HOME`` (or the project's ``.dagster_home``); the other commands
read the DuckDB file through ``duckdb_store``.
"""

import argparse
import fcntl
import os
import shutil
import socket
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from bam_assets import duckdb_store
from bam_assets.alignment_files import DEFAULT_PATTERNS, find_alignment_files
from bam_assets.ingest_definitions import build_reads_asset
from bam_assets.ingest_settings import IngestSettings
from bam_assets.partition_keys import partition_key_for
from bam_assets.project_paths import (
    PROJECT_INSTANCE_CONFIG,
    default_dagster_home,
    default_database,
)

# Each run the CLI starts carries host:pid, so a later ingest can tell a killed one from a live one.
_CLI_PROCESS_TAG = "bam_assets/cli_process"


@dataclass(frozen=True)
class _IngestTarget:
    key: str
    root: Path
    path: Path


def _targets(path_argument: str) -> list[_IngestTarget]:
    path = Path(path_argument).absolute()
    if path.is_dir():
        return [_IngestTarget(f.key, f.root, f.path) for f in find_alignment_files([path])]
    return [_IngestTarget(partition_key_for(path.name), path.parent, path)]


def _instance() -> dg.DagsterInstance:
    """The Dagster instance at ``$DAGSTER_HOME`` (default: the project's ``.dagster_home``).

    Creating a fresh home's SQLite storage is not safe for two processes at once ("table
    secondary_indexes already exists"), so concurrent ``bam-assets ingest`` processes take turns
    through a lock file while the instance is created.
    """
    home = default_dagster_home()
    home.mkdir(parents=True, exist_ok=True)
    os.environ["DAGSTER_HOME"] = str(home)
    with (home / ".bam_assets_instance.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (home / "dagster.yaml").exists() and PROJECT_INSTANCE_CONFIG.exists():
            shutil.copyfile(PROJECT_INSTANCE_CONFIG, home / "dagster.yaml")
        instance = dg.DagsterInstance.get()
        instance.get_runs_count()  # creates the run, event and schedule storage tables
    return instance


def _failure_message(result: dg.ExecuteInProcessResult) -> str:
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data.error is not None:
            error = event.step_failure_data.error
            while error.cause is not None and "Failure" not in error.cls_name:
                error = error.cause
            return error.message.strip().splitlines()[-1] if error.message else error.cls_name
    return "the run failed"


def _fail_runs_of_killed_ingests(instance: dg.DagsterInstance) -> None:
    """Marks runs of ``bam-assets ingest`` processes that no longer exist as failed.

    A killed ingest (``kill -9``, OOM) leaves its run STARTED, holding its ``duckdb_writer`` pool
    slot; with no daemon watching in-process runs, the next ingest would wait for that slot
    forever. Its database transaction was never committed, so only Dagster's bookkeeping needs
    repair.
    """
    statuses = [dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED]
    for run in instance.get_runs(dg.RunsFilter(statuses=statuses)):
        owner = run.tags.get(_CLI_PROCESS_TAG, "")
        host, _, pid = owner.rpartition(":")
        if host != socket.gethostname() or not pid.isdigit() or _process_exists(int(pid)):
            continue
        instance.report_run_failed(run, f"The bam-assets ingest process {pid} is gone.")
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _ingest_one(
    instance: dg.DagsterInstance, target: _IngestTarget, arguments: argparse.Namespace
) -> bool:
    """Registers and materializes one file; prints its line; returns whether it succeeded."""
    settings = IngestSettings(
        roots=[str(target.root)],
        database=arguments.db,
        patterns=[*DEFAULT_PATTERNS, target.path.name],
        reference=arguments.reference,
        format_options=arguments.input_fmt_option,
    )
    if not instance.has_dynamic_partition(settings.partitions_name, target.key):
        instance.add_dynamic_partitions(settings.partitions_name, [target.key])
    result = dg.materialize(
        [build_reads_asset(settings)],
        partition_key=target.key,
        instance=instance,
        resources={
            settings.sources_key: settings.sources(),
            settings.io_manager_key: settings.io_manager(),
        },
        run_config={"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}},
        tags={_CLI_PROCESS_TAG: f"{socket.gethostname()}:{os.getpid()}"},
        raise_on_error=False,
    )
    if not result.success:
        sys.stderr.write(f"FAILED {target.path}: {_failure_message(result)}\n")
        return False
    metadata = result.asset_materializations_for_node("reads")[0].metadata
    sys.stdout.write(
        f"{target.key}\t{metadata['dagster/partition_row_count'].value} reads\t"
        f"{metadata['seconds'].value:.2f} s\n"
    )
    return True


def _ingest(arguments: argparse.Namespace) -> int:
    instance = _instance()
    _fail_runs_of_killed_ingests(instance)
    failed = 0
    for path_argument in arguments.paths:
        path = Path(path_argument)
        if not os.path.lexists(path):
            sys.stderr.write(f"FAILED {path_argument}: no such file or directory\n")
            failed += 1
            continue
        targets = _targets(path_argument)
        if not targets:
            patterns = ", ".join(DEFAULT_PATTERNS)
            sys.stderr.write(f"FAILED {path}: no alignment files ({patterns}) in this folder\n")
            failed += 1
        failed += sum(not _ingest_one(instance, target, arguments) for target in targets)
    return 1 if failed else 0


def _store(arguments: argparse.Namespace) -> duckdb_store.StoreConfig:
    if not Path(arguments.db).exists():
        raise SystemExit(f"No database at {arguments.db}: run 'bam-assets ingest PATH' first.")
    return duckdb_store.StoreConfig(database=arguments.db)


def _key_for(connection, config: duckdb_store.StoreConfig, file_or_key: str) -> str:
    """The partition key of a stored key or of an ingested file's path."""
    if Path(file_or_key).is_file():
        file_or_key = str(Path(file_or_key).absolute())
    try:
        return duckdb_store.find_key(connection, config, file_or_key)
    except KeyError as error:
        raise SystemExit(error.args[0]) from error


def _view(arguments: argparse.Namespace) -> int:
    config = _store(arguments)
    with duckdb_store.connect(config, read_only=True) as connection:
        key = _key_for(connection, config, arguments.file_or_key)
        out = sys.stdout
        if arguments.header:
            out.write(duckdb_store.header_text(connection, config, key))
        for lines in duckdb_store.iter_sam_lines(connection, config, key):
            out.write("\n".join(lines.to_pylist()))
            out.write("\n")
    return 0


def _summary(arguments: argparse.Namespace) -> int:
    """flagstat / idxstats / stats: samtools' text, computed by SQL over the stored reads."""
    from bam_assets import read_stats_sql, samtools_text

    config = _store(arguments)
    with duckdb_store.connect(config, read_only=True) as connection:
        key = _key_for(connection, config, arguments.file_or_key)
        if arguments.command == "flagstat":
            text = samtools_text.flagstat_text(read_stats_sql.flagstat(connection, config, key))
        elif arguments.command == "idxstats":
            lengths = read_stats_sql.reference_lengths(arguments.reference)
            rows = read_stats_sql.idxstats(connection, config, key, lengths)
            text = samtools_text.idxstats_text(rows)
        else:
            numbers = read_stats_sql.summary_numbers(
                connection, config, key, max_insert_size=arguments.insert_size
            )
            text = samtools_text.sn_lines(numbers)
    sys.stdout.write(text)
    return 0


def _list(arguments: argparse.Namespace) -> int:
    config = _store(arguments)
    with duckdb_store.connect(config, read_only=True) as connection:
        for stored in duckdb_store.list_files(connection, config):
            sys.stdout.write(
                f"{stored.key}\t{stored.format}\t{stored.read_count} reads\t{stored.path}\n"
            )
    return 0


def _parser() -> argparse.ArgumentParser:
    database = argparse.ArgumentParser(add_help=False)
    database.add_argument(
        "--db",
        default=default_database(),
        help="DuckDB file (default: $BAM_ASSETS_DB, else data/bam_assets.duckdb in the project)",
    )
    parser = argparse.ArgumentParser(prog="bam-assets", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    ingest = commands.add_parser(
        "ingest", parents=[database], help="ingest files or folders through Dagster"
    )
    ingest.add_argument("paths", nargs="+", metavar="PATH", help="alignment file or folder")
    ingest.add_argument("--reference", help="FASTA reference for CRAM files")
    ingest.add_argument(
        "--input-fmt-option",
        action="append",
        default=[],
        metavar="OPT",
        help="htslib input format option, as samtools' (e.g. decode_md=0)",
    )
    ingest.set_defaults(run=_ingest)

    view = commands.add_parser(
        "view",
        parents=[database],
        add_help=False,
        help="print stored records as 'samtools view --no-PG' would",
    )
    view.add_argument("file_or_key", metavar="FILE_OR_KEY")
    view.add_argument("-h", dest="header", action="store_true", help="print the header first")
    view.add_argument("--help", action="help", help="show this help message and exit")
    view.set_defaults(run=_view)

    for name, summary_help in (
        ("flagstat", "print 'samtools flagstat' output computed in DuckDB"),
        ("idxstats", "print 'samtools idxstats' output computed in DuckDB"),
        ("stats", "print the SN lines of 'samtools stats' computed in DuckDB"),
    ):
        summary = commands.add_parser(name, parents=[database], help=summary_help)
        summary.add_argument("file_or_key", metavar="FILE_OR_KEY")
        if name == "idxstats":
            summary.add_argument(
                "--reference", help="FASTA (with .fai) of a CRAM: its lengths replace @SQ LN"
            )
        if name == "stats":
            summary.add_argument(
                "-i", "--insert-size", type=int, default=8000, help="maximum insert size [8000]"
            )
        summary.set_defaults(run=_summary)

    listing = commands.add_parser("list", parents=[database], help="list ingested files")
    listing.set_defaults(run=_list)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    try:
        return arguments.run(arguments)
    except BrokenPipeError:
        sys.stderr.close()
        return 0
    except duckdb_store.DatabaseBusyError as error:
        sys.stderr.write(f"{error}\n")
        return 1
