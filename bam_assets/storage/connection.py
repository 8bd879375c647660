"""DuckDB connections of this project: in memory (the store is attached to them), sized for the
machine, spilling into a folder of their own, never downloading or loading an extension by
themselves.

The sessions of one process share one DuckDB instance (each session a connection of its own),
so that the extensions are loaded once per process, and a lake
stays attached, under a name of its own, for the next session.
"""

import itertools
import os
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb

from bam_assets.storage.extensions import OFFLINE, VERIFIED_LOADING, load_extensions
from bam_assets.storage.sql import sql_literal
from bam_assets.util.cpus import available_cpus


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
        **VERIFIED_LOADING,
        **duckdb_config(threads, memory_limit),
        # An in-memory database spills into ./.tmp by default; one folder per process.
        "temp_directory": str(Path(tempfile.gettempdir()) / f"bam-assets-spill-{os.getpid()}"),
    }
    connection = duckdb.connect(":memory:", config=config)
    connection.execute("SET enable_progress_bar = false")
    return connection


# Lakes stay attached to the shared instance between sessions, up to this many (the least
# recently used idle one is detached first): attaching costs a catalog read (30-60 ms under load)
# that every session paid; each attachment holds a catalog connection.
MAX_ATTACHED = 4


@dataclass
class _Attachment:
    alias: str
    lake_id: str
    users: int = 0


class _SharedInstance:
    """This process's DuckDB instance, the extensions it has loaded and the lakes attached to
    it, each under a name of its own."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.base = in_memory(None, None)
        # A staged file is never rewritten (each has a name of its own), so the footers read
        # once serve every later query of the process: 0.108 -> 0.091 s of CPU for a 100-kb
        # region count on 0.4M reads.
        self.base.execute("SET parquet_metadata_cache = true")
        self.loaded: set[str] = set()
        self.attached: OrderedDict[Hashable, _Attachment] = OrderedDict()

    def acquire(
        self,
        key: Hashable,
        extensions: tuple[str, ...],
        attach: Callable[[duckdb.DuckDBPyConnection, str], str],
    ) -> _Attachment:
        missing = tuple(name for name in extensions if name not in self.loaded)
        if missing:
            load_extensions(self.base, missing)
            self.loaded.update(missing)
        entry = self.attached.get(key)
        if entry is None:
            alias = f"lake_{next(_names)}"
            connection = self.base.cursor()
            try:
                lake_id = attach(connection, alias)
            except BaseException:
                _detach(self.base, alias)
                raise
            finally:
                connection.close()
            entry = self.attached[key] = _Attachment(alias, lake_id)
        entry.users += 1
        self.attached.move_to_end(key)
        idle = [k for k, e in self.attached.items() if e.users == 0]
        for old in idle[: max(0, len(self.attached) - MAX_ATTACHED)]:
            _detach(self.base, self.attached.pop(old).alias)
        return entry

    def release(self, key: Hashable, keep: bool) -> None:
        entry = self.attached.get(key)
        if entry is None:
            return
        entry.users -= 1
        if not keep and entry.users == 0:
            _detach(self.base, self.attached.pop(key).alias)


def _detach(base: duckdb.DuckDBPyConnection, alias: str) -> None:
    for name in (alias, f"{alias}_locks", f"{alias}_catalog"):
        base.execute(f"DETACH DATABASE IF EXISTS {name}")


_shared_lock = threading.Lock()
_shared: _SharedInstance | None = None
_names = itertools.count(1)


@contextmanager
def lake_connection(
    key: Hashable,
    threads: int | None,
    memory_limit: str | None,
    extensions: tuple[str, ...],
    attach: Callable[[duckdb.DuckDBPyConnection, str], str],
    check: Callable[[str], None],
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A new connection to this process's DuckDB instance with the lake ``key`` in use, attached
    by ``attach(connection, name)`` (which returns the lake's id) unless it still is (after
    ``extensions`` are loaded), and ``check(lake id)`` passed. The
    instance's threads and memory limit are set as given: they are the instance's, so the last
    session opened sets them. An error of DuckDB's in the session detaches the lake (a lost
    catalog connection is not kept); a forked child makes an instance of its own."""
    global _shared
    with _shared_lock:
        if _shared is None or _shared.pid != os.getpid():
            _shared = _SharedInstance()
        shared = _shared
        entry = shared.acquire(key, extensions, attach)
        connection = shared.base.cursor()
    alias = entry.alias
    keep = True
    try:
        check(entry.lake_id)
        connection.execute(f"SET threads = {int(threads or available_cpus())}")
        if memory_limit:
            connection.execute(f"SET memory_limit = {sql_literal(memory_limit)}")
        else:
            connection.execute("RESET memory_limit")
        connection.execute(f"USE {alias}")
        yield connection
    except duckdb.Error:
        keep = False
        raise
    finally:
        try:
            connection.execute("ROLLBACK")
        except duckdb.Error:
            pass  # no transaction was open
        connection.close()
        with _shared_lock:
            shared.release(key, keep)
