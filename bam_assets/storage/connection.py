"""Opening the embedded DuckDB file: the machine settings, and waiting while another process
holds its write lock."""

import logging
import re
import time
from pathlib import Path

import duckdb

from bam_assets.storage.store import StoreBusyError
from bam_assets.util.cpus import available_cpus

# What DuckDB says when another process holds the file:
# 'IO Error: Could not set lock on file "x.duckdb": Conflicting lock is held in … (PID 123)'.
_LOCK_CONFLICT = re.compile(r"could not set lock on file|conflicting lock is held", re.IGNORECASE)


def _is_lock_conflict(error: duckdb.Error) -> bool:
    """True only for another process's lock: other IO errors (a corrupt block) are not retried."""
    return _LOCK_CONFLICT.search(str(error)) is not None


def duckdb_config(threads: int | None, memory_limit: str | None) -> dict[str, str | int | bool]:
    """DuckDB's settings for a process of this machine; ``threads`` None means every CPU it may
    use, ``memory_limit`` None DuckDB's default."""
    # DuckDB sizes its thread pool by the host's CPUs; pinned to fewer (taskset, a cpuset), the
    # extra threads only contend: 6.0 s instead of 4.5 s of CPU per million reads on one CPU.
    settings: dict[str, str | int | bool] = {"threads": threads or available_cpus()}
    if memory_limit:
        settings["memory_limit"] = memory_limit
    return settings


def connect(
    database: str,
    read_only: bool,
    threads: int | None,
    memory_limit: str | None,
    lock_timeout_seconds: float,
    log: logging.Logger,
) -> duckdb.DuckDBPyConnection:
    """Opens ``database``, waiting with backoff while another process holds its write lock.

    DuckDB lets one process write a file at a time. Rather than failing on a raw lock error, a
    writer or reader waits up to ``lock_timeout_seconds`` and then raises StoreBusyError saying
    which file was busy. ``threads`` None means every CPU this process may use.
    """
    settings = duckdb_config(threads, memory_limit)
    if not read_only and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + lock_timeout_seconds
    delay = 0.05
    while True:
        try:
            return duckdb.connect(database, read_only=read_only, config=settings)
        except (duckdb.IOException, duckdb.ConnectionException) as error:
            if not _is_lock_conflict(error):
                raise
            if time.monotonic() >= deadline:
                raise StoreBusyError(
                    f"DuckDB database {database} stayed locked by another process for "
                    f"{lock_timeout_seconds:.0f} s: {error}"
                ) from error
            log.info("Database %s is locked; retrying in %.2f s", database, delay)
            time.sleep(delay)
            delay = min(delay * 2, 2.0)
