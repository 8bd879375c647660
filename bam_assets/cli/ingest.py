"""``bam-assets ingest``: materializes the same ``reads`` asset the Dagster UI runs, in process,
against the instance at ``$DAGSTER_HOME`` (or the project's ``.dagster_home``)."""

import argparse
import fcntl
import os
import re
import shutil
import socket
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from bam_assets.orchestration.definitions import ingest_resources
from bam_assets.orchestration.project_paths import PROJECT_INSTANCE_CONFIG, default_dagster_home
from bam_assets.orchestration.reads_asset import build_reads_asset
from bam_assets.orchestration.settings import IngestSettings, ReadingSettings, store_settings
from bam_assets.reading.files import DEFAULT_PATTERNS, find_alignment_files
from bam_assets.reading.partition_keys import partition_key_for

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
    """The cause of the failed step in words: the Failure's description, without the class name
    that Dagster's error text starts with (``dagster._core.definitions.events.Failure: …``)."""
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data.error is not None:
            error = event.step_failure_data.error
            while error.cause is not None and "Failure" not in error.cls_name:
                error = error.cause
            if not error.message:
                return error.cls_name
            message = " ".join(line.strip() for line in error.message.strip().splitlines())
            return re.sub(rf"^(?:\w+\.)*{re.escape(error.cls_name)}: ", "", message)
    return "the run failed"


@contextmanager
def _c_stderr_after() -> Iterator[list[str]]:
    """Holds back what C code (htslib's ``[E::…]`` lines) writes to file descriptor 2 meanwhile,
    and yields a list that receives those lines at the end, so the caller prints its own verdict
    first and htslib's details after it."""
    sys.stderr.flush()
    saved = os.dup(2)
    held: list[str] = []
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield held
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            held.extend(sink.read().decode(errors="replace").splitlines())


def _same_file_keys(settings: IngestSettings, path: str, key: str) -> list[str]:
    """Other keys under which the file at ``path`` is stored."""
    store = ingest_resources(settings)[settings.store_key]
    with store.session(read_only=True) as session:
        return [other for other in session.keys_for_path(path) if other != key]


def _fail_runs_of_killed_ingests(instance: dg.DagsterInstance) -> None:
    """Marks runs of ``bam-assets ingest`` processes that no longer exist as failed.

    A killed ingest (``kill -9``, OOM) leaves its run STARTED, holding its writer pool slot; with
    no daemon watching in-process runs, the next ingest would wait for that slot forever. Its
    database transaction was never committed, so only Dagster's bookkeeping needs repair.
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
        patterns=[*DEFAULT_PATTERNS, target.path.name],
        reading=ReadingSettings(
            reference=arguments.reference,
            format_options=arguments.input_fmt_option,
            allow_missing_eof=arguments.allow_missing_eof,
        ),
        store=store_settings(arguments.backend, arguments.db),
    )
    if not instance.has_dynamic_partition(settings.partitions_name, target.key):
        instance.add_dynamic_partitions(settings.partitions_name, [target.key])
    with _c_stderr_after() as htslib_lines:
        result = dg.materialize(
            [build_reads_asset(settings)],
            partition_key=target.key,
            instance=instance,
            resources=ingest_resources(settings),
            run_config={"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}},
            tags={_CLI_PROCESS_TAG: f"{socket.gethostname()}:{os.getpid()}"},
            raise_on_error=False,
        )
    if not result.success:
        sys.stderr.write(f"FAILED {target.path}: {_failure_message(result)}\n")
        sys.stderr.writelines(f"  {line}\n" for line in htslib_lines)
        return False
    metadata = result.asset_materializations_for_node("reads")[0].metadata
    sys.stdout.write(
        f"{target.key}\t{metadata['dagster/partition_row_count'].value} reads\t"
        f"{metadata['seconds'].value:.2f} s\n"
    )
    sys.stderr.writelines(f"{line}\n" for line in htslib_lines)
    path = str(metadata["path"].value)
    others = _same_file_keys(settings, path, target.key)
    if others:
        sys.stderr.write(
            f"warning: {path} is now stored twice, as {target.key} and as "
            f"{', '.join(others)}: keys are relative to the folder given to ingest, so ingest "
            "from the same folder each time\n"
        )
    return True


def ingest(arguments: argparse.Namespace) -> int:
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
