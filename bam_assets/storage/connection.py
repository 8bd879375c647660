"""A DuckDB connection of this project: in memory (the store is attached to it), sized for the
machine, spilling into a folder of its own, never downloading or loading an extension by
itself."""

import os
import tempfile
from pathlib import Path

import duckdb

from bam_assets.util.cpus import available_cpus

# Every connection: never download an extension, never load one implicitly (extensions.py loads
# them from their files).
OFFLINE = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}


def duckdb_config(threads: int | None, memory_limit: str | None) -> dict[str, str | int | bool]:
    """DuckDB's settings for a process of this machine; ``threads`` None means every CPU it may
    use, ``memory_limit`` None DuckDB's default."""
    # DuckDB sizes its thread pool by the host's CPUs; pinned to fewer (taskset, a cpuset), the
    # extra threads only contend: 6.0 s instead of 4.5 s of CPU per million reads on one CPU.
    settings: dict[str, str | int | bool] = {"threads": threads or available_cpus()}
    if memory_limit:
        settings["memory_limit"] = memory_limit
    return settings


def in_memory(threads: int | None, memory_limit: str | None) -> duckdb.DuckDBPyConnection:
    """A new in-memory DuckDB with ``duckdb_config``'s settings and no progress bar."""
    config = {
        **OFFLINE,
        **duckdb_config(threads, memory_limit),
        # An in-memory database spills into ./.tmp by default; one folder per process.
        "temp_directory": str(Path(tempfile.gettempdir()) / f"bam-assets-spill-{os.getpid()}"),
    }
    connection = duckdb.connect(":memory:", config=config)
    connection.execute("SET enable_progress_bar = false")
    return connection
